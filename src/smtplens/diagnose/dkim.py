"""DKIM public key records (RFC 6376 section 3.6.1, RFC 8301, RFC 8463): parse, decode the key, check.

:func:`parse_dkim_key` reads the TXT record published at ``<selector>._domainkey.<domain>`` and never raises. The
RSA key is read from its DER encoding (SubjectPublicKeyInfo, or a bare PKCS#1 RSAPublicKey, which some signers
publish) with a small reader of the few DER constructs involved; an Ed25519 key is the raw 32 bytes of RFC 8463.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from smtplens.diagnose import findings as f
from smtplens.diagnose._tags import split_tags, squeeze
from smtplens.diagnose.dns import Resolver
from smtplens.diagnose.findings import Finding, Severity

__all__ = ["DKIM_TAGS", "DkimKey", "DkimLookup", "lookup_dkim", "parse_dkim_key"]

#: Tags of a key record, RFC 6376 section 3.6.1.
DKIM_TAGS = ("v", "h", "k", "n", "p", "s", "t")
KEY_TYPES = ("rsa", "ed25519")
RSA_MINIMUM_BITS = 1024  # RFC 8301 section 3.2: verifiers MUST NOT accept shorter keys
RSA_RECOMMENDED_BITS = 2048
ED25519_KEY_BYTES = 32

_RSA_OID = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1 rsaEncryption
_ED25519_OID = bytes.fromhex("2b6570")  # 1.3.101.112 id-Ed25519
_SEQUENCE, _INTEGER, _BIT_STRING, _OID = 0x30, 0x02, 0x03, 0x06
_SELECTOR_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?)*")


@dataclass(frozen=True, slots=True)
class DkimKey:
    """A parsed DKIM key record.

    ``key_type`` is the ``k`` value (``rsa`` when absent); ``key_bits`` is the RSA modulus length or 256 for
    Ed25519, ``None`` when the key could not be read. ``revoked`` is true for an empty ``p=``.
    """

    raw: str
    version: str | None
    key_type: str
    hash_algorithms: tuple[str, ...] | None = None
    services: tuple[str, ...] = ("*",)
    flags: tuple[str, ...] = ()
    notes: str | None = None
    public_key: bytes | None = None
    key_bits: int | None = None
    key_format: str | None = None  # "spki", "pkcs1" or "raw"
    revoked: bool = False
    tags: tuple[tuple[str, str], ...] = ()
    findings: tuple[Finding, ...] = field(default=())

    @property
    def testing(self) -> bool:
        """``t=y``: the domain is testing DKIM; verifiers must not treat failures differently (RFC 6376)."""
        return "y" in self.flags

    @property
    def valid(self) -> bool:
        return not any(item.severity is Severity.ERROR for item in self.findings)


@dataclass(frozen=True, slots=True)
class DkimLookup:
    """What :func:`lookup_dkim` found at ``name``: the chosen key, all parsed keys and every finding."""

    domain: str
    selector: str
    name: str
    key: DkimKey | None
    keys: tuple[DkimKey, ...] = ()
    findings: tuple[Finding, ...] = field(default=())


class _DerError(ValueError):
    pass


def parse_dkim_key(text: str) -> DkimKey:
    """Parse one DKIM key record, decode its public key and check it; never raises."""
    out: list[Finding] = []
    tags = split_tags(text)
    for problem in tags.problems:
        out.append(
            f.error(
                "dkim.syntax",
                f"DKIM key record syntax error: {problem}; verifiers may reject the whole record "
                "(RFC 6376 section 3.2).",
                "Write the record as 'tag=value' pairs separated by ';', each tag once.",
            )
        )
    values = dict(tags.tags)

    version = values.get("v")
    if version is not None and (version != "DKIM1" or tags.names[0] != "v"):
        out.append(
            f.error(
                "dkim.version",
                f"v={version!r} is not 'DKIM1' as the first tag; verifiers discard the record "
                "(RFC 6376 section 3.6.1).",
                "Start the record with 'v=DKIM1;' or leave the v tag out.",
            )
        )

    key_type = values.get("k", "rsa").strip().lower()
    if key_type not in KEY_TYPES:
        out.append(
            f.error(
                "dkim.unknown_k",
                f"Unknown key type k={key_type!r}; verifiers cannot use the key.",
                "Set 'k=rsa' (or 'k=ed25519' for an Ed25519 key).",
            )
        )

    hashes = _colon_list(values.get("h"))
    if hashes is not None and "sha256" not in (item.lower() for item in hashes):
        out.append(
            f.warning(
                "dkim.h_no_sha256",
                f"h={values['h']!r} does not allow sha256; rsa-sha1 must not be used any more (RFC 8301).",
                "Remove the 'h' tag or set 'h=sha256'.",
            )
        )

    services = _colon_list(values.get("s")) or ("*",)
    if not {"*", "email"} & {item.lower() for item in services}:
        out.append(
            f.error(
                "dkim.service",
                f"s={values['s']!r} does not include 'email' or '*'; the key is not usable for mail.",
                "Remove the 's' tag or set 's=email'.",
            )
        )

    flags = tuple(item.lower() for item in _colon_list(values.get("t")) or ())
    if "y" in flags:
        out.append(
            f.info(
                "dkim.testing",
                "t=y: the domain says it is testing DKIM, so verifiers may ignore failures.",
                "Remove 't=y' once signing works, so that DKIM results count in production.",
            )
        )

    for name in tags.names:
        if name not in DKIM_TAGS:
            out.append(
                f.info(
                    "dkim.unknown_tag",
                    f"Unknown tag {name!r}; verifiers ignore it (RFC 6376 section 3.6.1).",
                    "Remove the tag or correct its spelling.",
                )
            )

    public_key: bytes | None = None
    key_bits: int | None = None
    key_format: str | None = None
    revoked = False
    encoded = values.get("p")
    if encoded is None:
        out.append(
            f.error(
                "dkim.no_key",
                "The required 'p' tag (the public key) is missing.",
                "Publish the base64 public key in 'p=' as given by the signing software.",
            )
        )
    elif not squeeze(encoded):
        revoked = True
        out.append(
            f.error(
                "dkim.revoked",
                "p= is empty: the key has been revoked and every signature with this selector fails.",
                "Sign with a selector that has a current key, or publish the new key under this selector.",
            )
        )
    else:
        try:
            public_key = base64.b64decode(squeeze(encoded), validate=True)
        except (binascii.Error, ValueError):
            out.append(
                f.error(
                    "dkim.bad_base64",
                    "The public key in 'p=' is not valid base64 (stray quotes, characters or missing padding).",
                    "Copy the key again from the signing software, without quotes or line breaks inside it.",
                )
            )
        else:
            key_bits, key_format = _read_key(key_type, public_key, out)

    return DkimKey(
        raw=text,
        version=version,
        key_type=key_type,
        hash_algorithms=hashes,
        services=services,
        flags=flags,
        notes=values.get("n"),
        public_key=public_key,
        key_bits=key_bits,
        key_format=key_format,
        revoked=revoked,
        tags=tags.tags,
        findings=tuple(out),
    )


async def lookup_dkim(domain: str, selector: str, resolver: Resolver) -> DkimLookup:
    """Query ``<selector>._domainkey.<domain>`` TXT and check the key found there.

    The resolver joins the strings of a record made of several strings. With several records, verifiers may
    pick any (RFC 6376 section 3.6.2.2): the first one without errors is chosen and a warning is added. A DNS
    failure raises :class:`~smtplens.diagnose.dns.DnsTempError`; an invalid selector raises ``ValueError``.
    """
    domain = domain.strip().rstrip(".").lower()
    selector = selector.strip().rstrip(".")
    if not _SELECTOR_RE.fullmatch(selector):
        raise ValueError(f"not a valid DKIM selector: {selector!r}")
    name = f"{selector}._domainkey.{domain}"
    records = (await resolver.txt(name)).records
    keys = tuple(parse_dkim_key(txt) for txt in records)
    found: list[Finding] = []
    if not keys:
        found.append(
            f.error(
                "dkim.no_record",
                f"No DKIM key at {name}; signatures with selector {selector!r} cannot be verified.",
                f"Publish the public key as a TXT record at {name}, or check the selector in the DKIM-Signature "
                "header (s=).",
            )
        )
        return DkimLookup(domain, selector, name, None, (), tuple(found))
    if len(keys) > 1:
        found.append(
            f.warning(
                "dkim.several_records",
                f"{len(keys)} TXT records at {name}; verifiers may use any of them (RFC 6376 section 3.6.2.2).",
                "Keep exactly one key record per selector.",
            )
        )
    key = next((item for item in keys if item.valid), keys[0])
    return DkimLookup(domain, selector, name, key, keys, (*found, *key.findings))


def _colon_list(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(item for item in squeeze(value).split(":") if item)


def _read_key(key_type: str, data: bytes, out: list[Finding]) -> tuple[int | None, str | None]:
    if key_type == "ed25519":
        if len(data) == ED25519_KEY_BYTES:
            return ED25519_KEY_BYTES * 8, "raw"
        out.append(
            f.error(
                "dkim.bad_key",
                f"An Ed25519 key must be the raw 32-byte key (RFC 8463 section 4.2), not {len(data)} bytes"
                + (" (this looks like a DER SubjectPublicKeyInfo)" if _ED25519_OID in data[:16] else "")
                + ".",
                "Publish only the 32-byte public key, base64-encoded, in 'p='.",
            )
        )
        return None, None
    if key_type != "rsa":
        return None, None
    try:
        modulus, key_format = _rsa_modulus(data)
    except _DerError as exc:
        out.append(
            f.error(
                "dkim.bad_key",
                f"The RSA public key cannot be read: {exc}.",
                "Publish the DER SubjectPublicKeyInfo of the key, base64-encoded, as the signing software prints it.",
            )
        )
        return None, None
    bits = int.from_bytes(modulus, "big").bit_length()
    if key_format == "pkcs1":
        out.append(
            f.warning(
                "dkim.pkcs1_key",
                "The key is a bare PKCS#1 RSAPublicKey, not the SubjectPublicKeyInfo RFC 6376 asks for; some "
                "verifiers reject it.",
                "Publish the SubjectPublicKeyInfo form ('openssl rsa -pubout -outform DER | base64').",
            )
        )
    if bits < RSA_MINIMUM_BITS:
        out.append(
            f.error(
                "dkim.rsa_weak",
                f"The RSA key has only {bits} bits; verifiers must not accept keys under 1024 bits (RFC 8301).",
                "Generate a 2048-bit key, publish it under a new selector and switch signing to it.",
            )
        )
    elif bits < RSA_RECOMMENDED_BITS:
        out.append(
            f.warning(
                "dkim.rsa_short",
                f"The RSA key has {bits} bits; 2048 bits is the current recommendation.",
                "Generate a 2048-bit key, publish it under a new selector and switch signing to it.",
            )
        )
    return bits, key_format


def _rsa_modulus(data: bytes) -> tuple[bytes, str]:
    """The modulus bytes of an RSA key given as SubjectPublicKeyInfo or as PKCS#1 RSAPublicKey (DER)."""
    tag, start, end = _tlv(data, 0)
    if tag != _SEQUENCE or end != len(data):
        raise _DerError("not a single DER SEQUENCE")
    first_tag, first_start, first_end = _tlv(data, start)
    if first_tag == _INTEGER:  # RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
        return _rsa_public_key(data[start:end], whole=False), "pkcs1"
    if first_tag != _SEQUENCE:
        raise _DerError("neither a SubjectPublicKeyInfo nor an RSAPublicKey")
    oid_tag, oid_start, oid_end = _tlv(data, first_start)
    if oid_tag != _OID:
        raise _DerError("the algorithm identifier has no OID")
    if data[oid_start:oid_end] != _RSA_OID:
        raise _DerError("the key algorithm is not rsaEncryption")
    bits_tag, bits_start, bits_end = _tlv(data, first_end)
    if bits_tag != _BIT_STRING or bits_end != end:
        raise _DerError("the public key is not a BIT STRING")
    if bits_start >= bits_end or data[bits_start] != 0:
        raise _DerError("the BIT STRING has unused bits")
    return _rsa_public_key(data[bits_start + 1 : bits_end], whole=True), "spki"


def _rsa_public_key(data: bytes, *, whole: bool) -> bytes:
    start, end = 0, len(data)
    if whole:
        tag, start, end = _tlv(data, 0)
        if tag != _SEQUENCE or end != len(data):
            raise _DerError("the RSAPublicKey is not a SEQUENCE")
    tag, n_start, n_end = _tlv(data, start)
    if tag != _INTEGER:
        raise _DerError("the modulus is not an INTEGER")
    tag, _, e_end = _tlv(data, n_end)
    if tag != _INTEGER or e_end != end:
        raise _DerError("the public exponent is missing or followed by extra data")
    modulus = data[n_start:n_end].lstrip(b"\x00")
    if not modulus:
        raise _DerError("the modulus is zero")
    return modulus


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """Tag, content start and content end of the DER element at ``pos`` (definite lengths only)."""
    if pos + 2 > len(data):
        raise _DerError("truncated DER data")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise _DerError("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise _DerError("truncated DER data")
    return tag, pos, pos + length
