"""`kabinet verify FILE SIG`: check a detached CMS signature the way an outside verifier would.

Trust comes from the CA in the data dir (`$KABINET_DATA_DIR/keys/ca/`, its root and a fresh
CRL) unless `--ca-file` (a root PEM, e.g. from `GET /api/v1/signing/ca`) and optionally
`--crl-file` are given, which also works on a machine without Kabinet's data.
"""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path
from typing import TextIO

from cryptography import x509

from signing import CertificateAuthority, MalformedCmsError, VerificationResult, verify_cms
from signing.ca import ISSUING_CERT

_PEM_BODY = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----(.*?)-----END [A-Z0-9 ]+-----", re.S)


def _read_cms(path: Path) -> bytes:
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        match = _PEM_BODY.search(data)
        if match is None:
            raise MalformedCmsError("PEM without a body")
        return base64.b64decode(b"".join(match.group(1).split()))
    return data


def _trust(
    ca_dir: Path, organization: str, ca_file: Path | None, crl_file: Path | None
) -> tuple[list[x509.Certificate], bytes | None, str]:
    if ca_file is not None:
        roots = x509.load_pem_x509_certificates(ca_file.read_bytes())
        crl = crl_file.read_bytes() if crl_file is not None else None
        return roots, crl, str(ca_file)
    if not (ca_dir / ISSUING_CERT).exists():
        raise FileNotFoundError(f"no CA in {ca_dir}; give --ca-file (the root certificate PEM)")
    ca = CertificateAuthority.load_or_create(ca_dir, organization=organization)
    crl = crl_file.read_bytes() if crl_file is not None else ca.crl()
    return [ca.root_certificate], crl, str(ca_dir)


def report(result: VerificationResult, out: TextIO) -> None:
    s = result.signer
    yes_no = {True: "yes", False: "NO"}
    print(f"Signer:        {s.full_name}", file=out)
    print(f"Position:      {s.position_title}", file=out)
    print(f"Organization:  {s.organization}", file=out)
    print(f"Subject:       {result.signer_subject}", file=out)
    print(
        f"Certificate:   serial {result.serial_hex}, valid "
        f"{result.not_before:%Y-%m-%d %H:%M} .. {result.not_after:%Y-%m-%d %H:%M} UTC",
        file=out,
    )
    when = result.signing_time.isoformat() if result.signing_time else "not stated"
    print(f"Signing time:  {when} (the signer's claim; CAdES-BES has no time stamp)", file=out)
    print(f"Chain:         {'valid' if result.chain_valid else 'INVALID'}", file=out)
    for depth, subject in enumerate(result.chain):
        print(f"  {'  ' * depth}{subject}", file=out)
    if not result.crl_checked:
        revocation = "NOT CHECKED (no usable CRL)"
    elif result.revoked:
        at = result.revoked_at.isoformat() if result.revoked_at else "?"
        revocation = f"REVOKED at {at} ({result.revocation_reason or 'no reason given'})"
    else:
        revocation = "not revoked (CRL checked)"
    print(f"Revocation:    {revocation}", file=out)
    print(f"Content match: {yes_no[result.content_matches]}", file=out)
    print(f"Signature:     {'valid' if result.signature_valid else 'INVALID'}", file=out)
    for error in result.errors:
        print(f"  - {error}", file=out)
    print(f"Result:        {'VALID' if result.valid else 'INVALID'}", file=out)


def run_verify(
    file: Path,
    sig: Path,
    *,
    ca_dir: Path,
    organization: str,
    ca_file: Path | None = None,
    crl_file: Path | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """0: valid; 1: checked and not valid; 2: cannot check (missing input, not a CMS)."""
    try:
        roots, crl, source = _trust(ca_dir, organization, ca_file, crl_file)
        content = file.read_bytes()
        cms_der = _read_cms(sig)
        result = verify_cms(cms_der, content, roots, crl)
    except (OSError, ValueError, MalformedCmsError) as exc:
        print(f"kabinet verify: {exc}", file=sys.stderr)
        return 2
    print(f"File:          {file}", file=out)
    print(f"CMS:           {sig}", file=out)
    print(f"Trust:         {source}", file=out)
    report(result, out)
    return 0 if result.valid else 1
