"""What a STARTTLS session tells about the server: protocol, cipher and the certificate it presented.

The probe first handshakes with a verifying context (:func:`verifying_context`: the system's CAs, host name not
checked by OpenSSL). When that fails on the certificate it handshakes again with :func:`describing_context`, so a
broken certificate is still described, and records why verification failed. The certificate is parsed from its
DER form with ``cryptography``; the host name is matched by :func:`name_matches` (RFC 6125 section 6.4) so that a
mismatch is reported as a fact instead of ending the handshake.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, replace
from datetime import UTC, datetime

__all__ = [
    "Certificate",
    "TlsInfo",
    "describe",
    "describing_context",
    "name_matches",
    "parse_certificate",
    "verifying_context",
]


@dataclass(frozen=True, slots=True)
class Certificate:
    """The parts of an X.509 certificate a mail operator looks at."""

    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]

    @property
    def self_issued(self) -> bool:
        return self.subject == self.issuer

    def expired(self, now: datetime) -> bool:
        return now > self.not_after


@dataclass(frozen=True, slots=True)
class TlsInfo:
    """One TLS session: ``verified`` is the chain check against the system CAs (``verify_error`` says why not),
    ``name_match`` whether the certificate covers the host name the client connected to. The certificate fields
    are None when the server sent no certificate or one that could not be parsed (``problem`` says which)."""

    version: str | None
    cipher: str | None
    cipher_bits: int | None
    subject: str | None
    issuer: str | None
    not_before: str | None  # ISO 8601, UTC
    not_after: str | None
    names: tuple[str, ...]  # DNS names, then IP addresses, of the subjectAltName extension
    name_match: bool
    verified: bool
    verify_error: str | None = None
    expired: bool = False
    problem: str | None = None


def verifying_context() -> ssl.SSLContext:
    """TLS client context that checks the chain against the system CAs but not the host name."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = False
    return context


def describing_context() -> ssl.SSLContext:
    """TLS client context that accepts any certificate, used only to describe one that failed verification."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def parse_certificate(der: bytes) -> Certificate:
    """The subject, issuer, validity and subjectAltName names of a DER certificate; ValueError if unreadable."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        dns_names: tuple[str, ...] = ()
        ips: tuple[str, ...] = ()
    else:
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=_utc(cert, "not_valid_before"),
        not_after=_utc(cert, "not_valid_after"),
        dns_names=dns_names,
        ip_addresses=ips,
    )


def _utc(cert: object, name: str) -> datetime:
    """``not_valid_*_utc`` (cryptography 42+), else the naive UTC value of older versions."""
    value = getattr(cert, name + "_utc", None)
    if isinstance(value, datetime):
        return value
    naive: datetime = getattr(cert, name)
    return naive.replace(tzinfo=UTC)


def name_matches(host: str, dns_names: tuple[str, ...], ip_addresses: tuple[str, ...] = ()) -> bool:
    """Whether a certificate with these subjectAltName entries is valid for ``host`` (RFC 6125 section 6.4).

    An IP address matches only an IP entry. A name matches a DNS entry exactly (case-insensitive, trailing dot
    ignored) or through a wildcard that is the whole left-most label and stands for exactly one label, with at
    least two labels after it: ``*.example.com`` covers ``mx.example.com`` but not ``example.com`` or
    ``a.mx.example.com``; partial wildcards (``mx*.example.com``) and wildcards in other labels never match.
    """
    host = host.strip().rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return any(_same_ip(address, entry) for entry in ip_addresses)
    if not host:
        return False
    host_labels = host.split(".")
    for entry in dns_names:
        pattern = entry.strip().rstrip(".").lower()
        if pattern == host:
            return True
        labels = pattern.split(".")
        if (
            labels[0] == "*"
            and len(labels) >= 3
            and "*" not in ".".join(labels[1:])
            and len(host_labels) == len(labels)
            and host_labels[1:] == labels[1:]
            and host_labels[0] != ""
        ):
            return True
    return False


def _same_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    try:
        return ipaddress.ip_address(entry) == address
    except ValueError:
        return False


def describe(
    session: ssl.SSLObject, host: str, *, verify_error: str | None = None, now: datetime | None = None
) -> TlsInfo:
    """The :class:`TlsInfo` of an established session. ``verify_error`` is None when the session was made with
    :func:`verifying_context` and succeeded, else the reason the verifying handshake failed."""
    cipher = session.cipher()
    info = TlsInfo(
        version=session.version(),
        cipher=cipher[0] if cipher else None,
        cipher_bits=cipher[2] if cipher else None,
        subject=None,
        issuer=None,
        not_before=None,
        not_after=None,
        names=(),
        name_match=False,
        verified=verify_error is None,
        verify_error=verify_error,
    )
    der = session.getpeercert(binary_form=True)
    if not der:
        return replace(info, problem="the server sent no certificate")
    try:
        cert = parse_certificate(der)
    except ValueError as exc:
        return replace(info, problem=f"the certificate could not be parsed: {exc}")
    return replace(
        info,
        subject=cert.subject,
        issuer=cert.issuer,
        not_before=cert.not_before.isoformat(),
        not_after=cert.not_after.isoformat(),
        names=cert.dns_names + cert.ip_addresses,
        name_match=name_matches(host, cert.dns_names, cert.ip_addresses),
        expired=cert.expired(now or datetime.now(UTC)),
    )
