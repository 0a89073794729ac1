"""Detached CMS SignedData (CAdES-BES): assembly from a device signature, and verification.

The private key never reaches the server, so assembly takes signed attributes built earlier by
:func:`signing.attributes.build_signed_attributes` plus the signature the device returned, and
wraps them into a ContentInfo that ``openssl cms -verify`` accepts.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from signing.algorithms import ECDSA_SHA256, SignatureAlgorithm, algorithm_for_signature_oid
from signing.attributes import build_signed_attributes, parse_signed_attributes
from signing.errors import InvalidSignatureError, MalformedCmsError, SigningError
from signing.signer import Signer
from signing.subject import SubjectInfo

#: Longest chain walked during verification; the internal CA has two levels, and a bound
#: stops a crafted certificate loop.
_MAX_CHAIN = 8


@dataclass(frozen=True)
class VerificationResult:
    """Outcome of :func:`verify_cms`; every check is reported, none raises."""

    signer: SubjectInfo
    signer_subject: str
    serial: int
    signing_time: datetime | None
    not_before: datetime
    not_after: datetime
    #: Subjects (RFC 4514) from the signer certificate up to the trusted root.
    chain: list[str]
    chain_valid: bool
    revoked: bool
    revoked_at: datetime | None
    revocation_reason: str | None
    #: True when a CRL was given, is signed by the signer's issuer and was consulted.
    crl_checked: bool
    content_matches: bool
    signature_valid: bool
    certificate: x509.Certificate
    errors: list[str] = field(default_factory=list)

    @property
    def serial_hex(self) -> str:
        """Certificate serial as upper-case hex, the form printed on the stamp."""
        return format(self.serial, "X")

    @property
    def valid(self) -> bool:
        """True when signature, content, chain and revocation status are all good."""
        return (
            self.signature_valid and self.content_matches and self.chain_valid and not self.revoked
        )


def assemble_cms(
    signed_attrs_der: bytes,
    signature: bytes,
    signer_certificate: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    *,
    algorithm: SignatureAlgorithm = ECDSA_SHA256,
    verify: bool = True,
) -> bytes:
    """Return a detached CMS ContentInfo (DER) around ``signature``.

    ``signature`` may be raw ``r‖s`` (WebCrypto) or DER. ``chain`` holds the CA certificates
    to carry in the certificate set (at least the issuing CA, so verifiers that only have the
    root can build the path). With ``verify`` (the default) the signature is checked against
    the certificate's key first and :class:`InvalidSignatureError` is raised on mismatch, so a
    broken signature is never stored.
    """
    sig_der = algorithm.normalize_signature(signature)
    cert_der = signer_certificate.public_bytes(Encoding.DER)
    attrs = parse_signed_attributes(signed_attrs_der)
    if attrs.signing_certificate_hash is not None and not hmac.compare_digest(
        attrs.signing_certificate_hash, algorithm.digest(cert_der)
    ):
        raise InvalidSignatureError("signed attributes name a different signer certificate")
    if verify:
        spki = signer_certificate.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )
        if not algorithm.verify(spki, signed_attrs_der, sig_der):
            raise InvalidSignatureError("signature does not match the signer certificate key")

    asn1_cert = asn1_x509.Certificate.load(cert_der)
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": asn1_cert.issuer, "serial_number": asn1_cert.serial_number}
                    )
                }
            ),
            "digest_algorithm": {"algorithm": algorithm.digest_oid},
            "signed_attrs": cms.CMSAttributes.load(signed_attrs_der),
            "signature_algorithm": {"algorithm": algorithm.signature_oid},
            "signature": sig_der,
        }
    )
    # The signature covers these exact bytes; if re-encoding ever changed them (a non-DER
    # input, a library change) the CMS would silently fail to verify, so fail loudly here.
    if _signed_attrs_bytes(signer_info) != signed_attrs_der:
        raise MalformedCmsError("signed attributes are not in DER form and would change")

    certificates = [asn1_cert] + [
        asn1_x509.Certificate.load(c.public_bytes(Encoding.DER))
        for c in chain
        if c != signer_certificate
    ]
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": algorithm.digest_oid}],
            # No eContent: the signature is detached, the document lives in file storage.
            "encap_content_info": {"content_type": "data"},
            "certificates": certificates,
            "signer_infos": [signer_info],
        }
    )
    info = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
    return bytes(info.dump())


def sign_detached(
    signer: Signer,
    signer_certificate: x509.Certificate,
    *,
    content: bytes | None = None,
    digest: bytes | None = None,
    chain: Sequence[x509.Certificate] = (),
    signing_time: datetime | None = None,
) -> bytes:
    """Build attributes, have ``signer`` sign them and return the detached CMS (DER).

    This is the one-call path for keys the server can reach (PKCS#11 cloud keys, external
    services); device keys go through :func:`build_signed_attributes` and
    :func:`assemble_cms` with a round trip to the device in between.
    """
    attrs = build_signed_attributes(
        signer_certificate,
        content=content,
        digest=digest,
        signing_time=signing_time,
        algorithm=signer.algorithm,
    )
    signature = signer.sign(attrs)
    return assemble_cms(attrs, signature, signer_certificate, chain, algorithm=signer.algorithm)


def verify_cms(
    cms_der: bytes,
    content: bytes | None,
    trusted_roots: Sequence[x509.Certificate],
    crl: bytes | None = None,
    *,
    digest: bytes | None = None,
    at: datetime | None = None,
) -> VerificationResult:
    """Verify a detached CMS signature over ``content`` (or its precomputed ``digest``).

    The chain is built from the certificates in the CMS up to one of ``trusted_roots`` and
    checked for validity at ``at`` (default: now). ``crl`` is a DER or PEM CRL issued by the
    signer's issuing CA. A CAdES-BES signing time is the signer's own claim, so revocation is
    reported whatever its date relative to the signing time. Raises
    :class:`MalformedCmsError` only when the structure cannot be read at all, and
    ``ValueError`` when neither content nor digest is given for a detached signature.
    """
    when = at or datetime.now(UTC)
    errors: list[str] = []
    signed_data, signer_info = _load_signed_data(cms_der)
    certs = _certificates(signed_data)
    signer_cert = _find_signer(signer_info, certs)

    try:
        algorithm = algorithm_for_signature_oid(
            signer_info["signature_algorithm"]["algorithm"].dotted
        )
    except SigningError as exc:
        raise MalformedCmsError(str(exc)) from exc
    if _dotted_digest(signer_info["digest_algorithm"]["algorithm"].dotted) != _dotted_digest(
        algorithm.digest_oid
    ):
        raise MalformedCmsError("digest algorithm does not match the signature algorithm")
    if signer_info["signed_attrs"].native is None:
        raise MalformedCmsError("SignerInfo has no signed attributes (not CAdES)")
    signed_attrs_der = _signed_attrs_bytes(signer_info)
    attrs = parse_signed_attributes(signed_attrs_der)
    cert_der = signer_cert.public_bytes(Encoding.DER)

    signature = bytes(signer_info["signature"].native)
    try:
        # Inside CMS the signature must already be in its standard encoding; the lenient
        # raw-or-DER reading is only for what devices send to the API.
        canonical = algorithm.normalize_signature(signature) == signature
    except SigningError:
        canonical = False
    signature_valid = canonical and algorithm.verify(
        signer_cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
        signed_attrs_der,
        signature,
    )
    if not signature_valid:
        errors.append("signature does not verify with the signer certificate key")
    if attrs.signing_certificate_hash is not None and not hmac.compare_digest(
        attrs.signing_certificate_hash, algorithm.digest(cert_der)
    ):
        signature_valid = False
        errors.append("ESS signing-certificate-v2 does not match the signer certificate")
    if attrs.content_type != "data":
        signature_valid = False
        errors.append(f"content-type attribute is {attrs.content_type}, expected data")

    if content is None and digest is None:
        econtent = signed_data["encap_content_info"]["content"].native
        if econtent is None:
            raise ValueError("detached CMS: give content or digest")
        content = bytes(econtent)
    actual_digest = algorithm.digest(content) if content is not None else digest
    content_matches = actual_digest is not None and hmac.compare_digest(
        actual_digest, attrs.message_digest
    )
    if not content_matches:
        errors.append("message digest does not match the content")

    chain_certs, chain_valid = _build_chain(signer_cert, certs, trusted_roots, when, errors)

    revoked = False
    revoked_at: datetime | None = None
    reason: str | None = None
    crl_checked = False
    if crl is not None:
        issuer = chain_certs[1] if len(chain_certs) > 1 else None
        crl_checked, revoked, revoked_at, reason = _check_crl(crl, signer_cert, issuer, errors)

    return VerificationResult(
        signer=SubjectInfo.from_name(signer_cert.subject),
        signer_subject=signer_cert.subject.rfc4514_string(),
        serial=signer_cert.serial_number,
        signing_time=attrs.signing_time,
        not_before=signer_cert.not_valid_before_utc,
        not_after=signer_cert.not_valid_after_utc,
        chain=[c.subject.rfc4514_string() for c in chain_certs],
        chain_valid=chain_valid,
        revoked=revoked,
        revoked_at=revoked_at,
        revocation_reason=reason,
        crl_checked=crl_checked,
        content_matches=content_matches,
        signature_valid=signature_valid,
        certificate=signer_cert,
        errors=errors,
    )


def _dotted_digest(oid: str) -> str:
    return str(algos.DigestAlgorithmId(oid).dotted)


def _signed_attrs_bytes(signer_info: cms.SignerInfo) -> bytes:
    """The SET OF form of SignerInfo.signedAttrs: RFC 5652 §5.4 signs tag 0x31, not [0]."""
    tagged = bytes(signer_info["signed_attrs"].dump())
    return b"\x31" + tagged[1:]


def _load_signed_data(cms_der: bytes) -> tuple[cms.SignedData, cms.SignerInfo]:
    try:
        info = cms.ContentInfo.load(cms_der, strict=True)
        if info["content_type"].native != "signed_data":
            raise MalformedCmsError(f"ContentInfo holds {info['content_type'].native}")
        signed_data = info["content"]
        signer_infos = signed_data["signer_infos"]
        if len(signer_infos) != 1:
            # One document signature = one CMS; co-signatures are separate CMS files.
            raise MalformedCmsError(f"expected one SignerInfo, found {len(signer_infos)}")
        return signed_data, signer_infos[0]
    except MalformedCmsError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedCmsError(f"not a DER CMS ContentInfo: {exc}") from exc


def _certificates(signed_data: cms.SignedData) -> list[x509.Certificate]:
    result: list[x509.Certificate] = []
    for choice in signed_data["certificates"] or []:
        if choice.name == "certificate":
            result.append(x509.load_der_x509_certificate(choice.chosen.dump()))
    return result


def _find_signer(signer_info: cms.SignerInfo, certs: list[x509.Certificate]) -> x509.Certificate:
    sid = signer_info["sid"]
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            issuer = asn1_x509.Name.load(cert.issuer.public_bytes())
            if (
                sid.chosen["serial_number"].native == cert.serial_number
                and sid.chosen["issuer"] == issuer
            ):
                return cert
        elif sid.name == "subject_key_identifier":
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ski.value.digest == sid.chosen.native:
                return cert
    raise MalformedCmsError("signer certificate is not in the CMS certificate set")


def _build_chain(
    leaf: x509.Certificate,
    pool: list[x509.Certificate],
    roots: Sequence[x509.Certificate],
    when: datetime,
    errors: list[str],
) -> tuple[list[x509.Certificate], bool]:
    """Walk issuer links to a trusted root; return the path and whether it is valid."""
    chain = [leaf]
    valid = _usable_as_signer(leaf, when, errors)
    current = leaf
    for _ in range(_MAX_CHAIN):
        if current in roots:
            return chain, valid
        issuer = _find_issuer(current, list(roots)) or _find_issuer(current, pool)
        if issuer is None:
            errors.append(f"no issuer found for {current.subject.rfc4514_string()}")
            return chain, False
        if not _usable_as_ca(issuer, when, len(chain) - 1, errors):
            valid = False
        chain.append(issuer)
        if issuer in roots:
            return chain, valid
        current = issuer
    errors.append("certificate chain too long")
    return chain, False


def _find_issuer(
    cert: x509.Certificate, candidates: list[x509.Certificate]
) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate == cert or candidate.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return candidate
    return None


def _in_validity(cert: x509.Certificate, when: datetime, errors: list[str]) -> bool:
    if cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
        return True
    errors.append(f"certificate {cert.subject.rfc4514_string()} is not valid at {when:%Y-%m-%d}")
    return False


def _usable_as_signer(cert: x509.Certificate, when: datetime, errors: list[str]) -> bool:
    ok = _in_validity(cert, when, errors)
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return ok
    if not (usage.digital_signature or usage.content_commitment):
        errors.append("signer certificate key usage does not allow signatures")
        ok = False
    return ok


def _usable_as_ca(cert: x509.Certificate, when: datetime, below: int, errors: list[str]) -> bool:
    """Check CA flag, path length (``below`` = CA certificates under this one) and validity."""
    ok = _in_validity(cert, when, errors)
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        bc = None
    if bc is None or not bc.ca:
        errors.append(f"{cert.subject.rfc4514_string()} is not a CA certificate")
        return False
    if bc.path_length is not None and below > bc.path_length:
        errors.append(f"path length constraint of {cert.subject.rfc4514_string()} exceeded")
        ok = False
    return ok


def _check_crl(
    crl_bytes: bytes,
    cert: x509.Certificate,
    issuer: x509.Certificate | None,
    errors: list[str],
) -> tuple[bool, bool, datetime | None, str | None]:
    """Return (checked, revoked, revoked_at, reason) for ``cert`` against ``crl_bytes``."""
    try:
        if crl_bytes.lstrip().startswith(b"-----BEGIN"):
            crl = x509.load_pem_x509_crl(crl_bytes)
        else:
            crl = x509.load_der_x509_crl(crl_bytes)
    except ValueError:
        errors.append("CRL cannot be parsed")
        return False, False, None, None
    if crl.issuer != cert.issuer:
        errors.append("CRL is not issued by the signer certificate issuer")
        return False, False, None, None
    # An unsigned or foreign CRL could hide a revocation, so it is only trusted when the
    # issuer found in the verified chain signed it.
    if issuer is None or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        errors.append("CRL signature is not valid")
        return False, False, None, None
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is None:
        return True, False, None, None
    reason: str | None = None
    try:
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
    except x509.ExtensionNotFound:
        reason = None
    errors.append("signer certificate is revoked")
    return True, True, entry.revocation_date_utc, reason
