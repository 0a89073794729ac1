"""Cloud keys: P-256 keys that live in a PKCS#11 token and are unlocked by the user's PIN.

For users without a tablet key the server holds the key in an HSM (SoftHSM2 in development
and tests). Each user has a token of their own, because PKCS#11 has one user PIN per token,
and a per-user PIN is what makes the server unable to sign without the user. The token is
logged in for one signature and logged out right after.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import (
    encode_ec_public_key,
    encode_ecdsa_signature,
    encode_named_curve_parameters,
)

from signing.algorithms import ECDSA_SHA256, SignatureAlgorithm
from signing.ecdsa import load_ec_public_key
from signing.errors import TokenError, WrongPinError

#: Where Debian's softhsm2 package puts the module.
SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so"

#: python-pkcs11 shares one loaded module per process, and a token created after loading
#: (a newly enrolled user) is only seen after C_Finalize/C_Initialize, which would kill
#: sessions open in other threads. Serialising token use is cheap: a signature takes ~1 ms.
_TOKEN_LOCK = threading.RLock()


class CloudKey:
    """A P-256 signing key identified by ``key_label`` in the token ``token_label``."""

    def __init__(self, module_path: str, token_label: str, key_label: str) -> None:
        """Refer to an existing key; use :meth:`generate` to create one."""
        self.module_path = module_path
        self.token_label = token_label
        self.key_label = key_label

    @classmethod
    def generate(cls, module_path: str, token_label: str, key_label: str, pin: str) -> CloudKey:
        """Generate a non-extractable P-256 key pair in the token and return it.

        The private key is ``SENSITIVE`` and not ``EXTRACTABLE``, so it can only ever be used
        inside the token. Raises :class:`TokenError` if a key with this label already exists.
        """
        key = cls(module_path, token_label, key_label)
        with _TOKEN_LOCK, key._session(pin, rw=True) as session:
            existing = list(
                session.get_objects(
                    {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: key_label}
                )
            )
            if existing:
                raise TokenError(f"key {key_label!r} already exists in token {token_label!r}")
            params = session.create_domain_parameters(
                KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                local=True,
            )
            params.generate_keypair(
                store=True,
                label=key_label,
                private_template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                },
                public_template={Attribute.VERIFY: True},
            )
        return key

    def public_key_spki(self, pin: str) -> bytes:
        """Return the public key as SubjectPublicKeyInfo DER, for the CA to certify."""
        with _TOKEN_LOCK, self._session(pin) as session:
            public = session.get_key(
                object_class=ObjectClass.PUBLIC_KEY, key_type=KeyType.EC, label=self.key_label
            )
            if not isinstance(public, pkcs11.PublicKey):
                raise TokenError(f"object {self.key_label!r} is not a public key")
            spki = encode_ec_public_key(public)
        load_ec_public_key(spki)  # refuse a key on another curve before it gets certified
        return spki

    def sign(self, signed_attrs_der: bytes, pin: str) -> bytes:
        """Sign ``signed_attrs_der`` with the key, logging in with ``pin``; return DER ECDSA.

        The digest is computed here and the token does plain ``CKM_ECDSA``: every PKCS#11
        token that has P-256 supports that mechanism, while ``CKM_ECDSA_SHA256`` is optional.
        This blocks on the token; call it from a worker thread in async code.
        """
        digest = hashlib.sha256(signed_attrs_der).digest()
        with _TOKEN_LOCK, self._session(pin) as session:
            private = self._private_key(session)
            try:
                raw = private.sign(digest, mechanism=Mechanism.ECDSA)
            except pkcs11.PKCS11Error as exc:
                raise TokenError(f"token refused to sign: {exc!r}") from exc
        return bytes(encode_ecdsa_signature(raw))

    def signer(self, pin: str) -> PinnedCloudSigner:
        """Return a :class:`signing.signer.Signer` that signs with this key and ``pin``."""
        return PinnedCloudSigner(self, pin)

    def _private_key(self, session: pkcs11.Session) -> pkcs11.SignMixin:
        try:
            key = session.get_key(
                object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC, label=self.key_label
            )
        except pkcs11.NoSuchKey as exc:
            raise TokenError(f"no key {self.key_label!r} in token {self.token_label!r}") from exc
        except pkcs11.MultipleObjectsReturned as exc:
            raise TokenError(f"several keys labelled {self.key_label!r}") from exc
        if not isinstance(key, pkcs11.SignMixin):
            raise TokenError(f"key {self.key_label!r} cannot sign")
        return key

    def _session(self, pin: str, rw: bool = False) -> pkcs11.Session:
        try:
            lib = pkcs11.lib(self.module_path)
        except (OSError, RuntimeError) as exc:
            raise TokenError(f"cannot load PKCS#11 module {self.module_path}: {exc}") from exc
        try:
            token = lib.get_token(token_label=self.token_label)
        except pkcs11.NoSuchToken:
            # A token initialised after the module was loaded is invisible until reinit.
            lib.reinitialize()
            try:
                token = lib.get_token(token_label=self.token_label)
            except pkcs11.NoSuchToken as exc:
                raise TokenError(f"no PKCS#11 token labelled {self.token_label!r}") from exc
        try:
            return token.open(rw=rw, user_pin=pin)
        except (pkcs11.PinIncorrect, pkcs11.PinLenRange) as exc:
            raise WrongPinError("PIN refused by the token") from exc
        except pkcs11.PinLocked as exc:
            raise WrongPinError("PIN is locked after too many wrong attempts") from exc
        except pkcs11.PKCS11Error as exc:
            raise TokenError(f"cannot open token {self.token_label!r}: {exc!r}") from exc


class PinnedCloudSigner:
    """A :class:`CloudKey` bound to a PIN for one signing operation or batch."""

    def __init__(self, key: CloudKey, pin: str) -> None:
        """Keep ``pin`` only as long as this object lives; do not store it."""
        self._key = key
        self._pin = pin

    @property
    def algorithm(self) -> SignatureAlgorithm:
        """Always ECDSA-SHA256 (P-256)."""
        return ECDSA_SHA256

    def sign(self, signed_attrs_der: bytes) -> bytes:
        """Sign with the bound key and PIN; return DER ECDSA."""
        return self._key.sign(signed_attrs_der, self._pin)


def init_softhsm_token(
    label: str,
    so_pin: str,
    user_pin: str,
    *,
    softhsm2_util: str = "softhsm2-util",
    env: dict[str, str] | None = None,
) -> None:
    """Create a SoftHSM2 token in the first free slot (development and tests only).

    python-pkcs11 has no ``C_InitToken``, and real HSMs provision partitions with their own
    tools, so this wraps ``softhsm2-util --init-token``. ``SOFTHSM2_CONF`` in ``env`` (or the
    process environment) chooses the token directory.
    """
    exe = shutil.which(softhsm2_util)
    if exe is None:
        raise TokenError("softhsm2-util is not installed (apt-get install softhsm2)")
    conf = (env or dict(os.environ)).get("SOFTHSM2_CONF")
    if conf is not None and not Path(conf).exists():
        raise TokenError(f"SOFTHSM2_CONF {conf} does not exist")
    result = subprocess.run(
        [exe, "--init-token", "--free", "--label", label, "--so-pin", so_pin, "--pin", user_pin],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise TokenError(f"softhsm2-util failed: {result.stderr.strip() or result.stdout.strip()}")
