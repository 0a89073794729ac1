"""The person a certificate names: full name, position title, organization."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class SubjectInfo:
    """Subject fields of a signer certificate.

    A signature in a document-management system is made by a person in a position, so the
    position title goes into the certificate (X.520 ``title``) next to the name; the
    organization is the ministry or municipality the position belongs to.
    """

    full_name: str
    position_title: str
    organization: str
    country: str = "RU"

    def to_name(self) -> x509.Name:
        """Return the X.509 distinguished name: CN, title, O, C."""
        attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, self.country)]
        if self.organization:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization))
        if self.position_title:
            attrs.append(x509.NameAttribute(NameOID.TITLE, self.position_title))
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, self.full_name))
        return x509.Name(attrs)

    @classmethod
    def from_name(cls, name: x509.Name) -> SubjectInfo:
        """Read the fields back from a distinguished name; missing ones become ``""``."""
        return cls(
            full_name=_first(name, NameOID.COMMON_NAME),
            position_title=_first(name, NameOID.TITLE),
            organization=_first(name, NameOID.ORGANIZATION_NAME),
            country=_first(name, NameOID.COUNTRY_NAME),
        )


def _first(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return ""
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")
