"""Kabinet signing: internal CA, CAdES-BES detached CMS, device and PKCS#11 keys, stamp.

Standalone: this package never imports ``backend``. Typical token-based flow::

    ca = CertificateAuthority.load_or_create(ca_dir)
    cert = ca.certify_device_key(spki_der, SubjectInfo(name, title, org))
    to_be_signed = build_signed_attributes(cert, digest=file_sha256)
    # ... device signs to_be_signed with WebCrypto ECDSA P-256/SHA-256, returns raw r‖s ...
    cms_der = assemble_cms(to_be_signed, signature, cert, ca.chain)
    result = verify_cms(cms_der, file_bytes, [ca.root_certificate], ca.crl())
"""

from signing.algorithms import (
    ECDSA_SHA256,
    SignatureAlgorithm,
    algorithm_for_signature_oid,
    register_algorithm,
)
from signing.attributes import SignedAttributes, build_signed_attributes, parse_signed_attributes
from signing.ca import CertificateAuthority, RevokedEntry
from signing.cms import VerificationResult, assemble_cms, sign_detached, verify_cms
from signing.ecdsa import (
    der_to_raw,
    load_ec_public_key,
    raw_to_der,
    to_der_signature,
    verify_signature,
)
from signing.errors import (
    CertificateError,
    InvalidSignatureError,
    MalformedCmsError,
    SigningError,
    TokenError,
    WrongPinError,
)
from signing.pkcs11_key import SOFTHSM2_MODULE, CloudKey, PinnedCloudSigner, init_softhsm_token
from signing.signer import PrivateKeySigner, Signer
from signing.stamp import draw_stamp, draw_stamp_for_certificate
from signing.subject import SubjectInfo

__all__ = [
    "ECDSA_SHA256",
    "SOFTHSM2_MODULE",
    "CertificateAuthority",
    "CertificateError",
    "CloudKey",
    "InvalidSignatureError",
    "MalformedCmsError",
    "PinnedCloudSigner",
    "PrivateKeySigner",
    "RevokedEntry",
    "SignatureAlgorithm",
    "SignedAttributes",
    "Signer",
    "SigningError",
    "SubjectInfo",
    "TokenError",
    "VerificationResult",
    "WrongPinError",
    "algorithm_for_signature_oid",
    "assemble_cms",
    "build_signed_attributes",
    "der_to_raw",
    "draw_stamp",
    "draw_stamp_for_certificate",
    "init_softhsm_token",
    "load_ec_public_key",
    "parse_signed_attributes",
    "raw_to_der",
    "register_algorithm",
    "sign_detached",
    "to_der_signature",
    "verify_cms",
    "verify_signature",
]
