"""The digest format: names, canonical bytes, signatures (no I/O).

A digest is one JSON object per project, region and period, stored at

    [<prefix>/]<project_id>/<region>/digests/YYYY/MM/DD/<project_id>_<region>_<YYYYMMDDTHHMMZ>_digest.json

(the date and stamp are the period's start, UTC), with these fields:

- `version` (1), `project_id`, `region`, `period_start`, `period_end` (ISO 8601 UTC);
- `objects`: every object delivered in the period, each with `key`, `size` (bytes stored),
  `sha256` (of the stored bytes), `records`, `first_event_time`, `last_event_time` and
  `delete_at` (unix seconds, when the store deletes it under the trail's retention);
- `previous_digest`: `{"key", "sha256", "signature"}` of the digest before it (the SHA-256
  of that object's stored bytes), or null for the first of a chain;
- `key_fingerprint`: the signing key's fingerprint (`fingerprint`), whose public key is at
  `[<prefix>/]digests/keys/<fingerprint>.pub` (PEM);
- `signature`: base64 Ed25519 signature of `canonical(document without "signature")`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

VERSION = 1
DIGESTS = "digests"
KEYS = "digests/keys"
_STAMP = "%Y%m%dT%H%MZ"
_NAME_RE = re.compile(r"_(\d{8}T\d{4}Z)_digest\.json$")


def base_prefix(project_id: str, region: str, prefix: str = "") -> str:
    """`[<prefix>/]<project_id>/<region>/`: where a trail's data and digests start."""
    return "/".join(p for p in (prefix.strip("/"), project_id, region) if p) + "/"


def digest_key(project_id: str, region: str, start: datetime, prefix: str = "") -> str:
    start = start.astimezone(UTC)
    name = f"{project_id}_{region}_{start.strftime(_STAMP)}_digest.json"
    return f"{base_prefix(project_id, region, prefix)}{DIGESTS}/{start:%Y/%m/%d}/{name}"


def public_key_key(fingerprint: str, prefix: str = "") -> str:
    return "/".join(p for p in (prefix.strip("/"), KEYS, f"{fingerprint}.pub") if p)


def stamp_of(key: str) -> datetime | None:
    """The period start named in a digest key (None when the name is not a digest's)."""
    match = _NAME_RE.search(key)
    return datetime.strptime(match.group(1), _STAMP).replace(tzinfo=UTC) if match else None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def canonical(document: dict[str, Any]) -> bytes:
    """The signed bytes: JSON with sorted keys, no spaces, UTF-8, without `signature`."""
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """First 32 hex digits of the SHA-256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def verify(document: dict[str, Any], public_key: Ed25519PublicKey) -> bool:
    try:
        signature = base64.b64decode(str(document.get("signature", "")), validate=True)
        public_key.verify(signature, canonical(document))
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class DigestEntry:
    key: str
    size: int
    sha256: str
    records: int
    first_event_time: str
    last_event_time: str
    delete_at: int | None

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> DigestEntry:
        delete_at = value.get("delete_at")
        return cls(
            key=str(value["key"]),
            size=int(value["size"]),
            sha256=str(value["sha256"]),
            records=int(value["records"]),
            first_event_time=str(value.get("first_event_time") or ""),
            last_event_time=str(value.get("last_event_time") or ""),
            delete_at=int(delete_at) if delete_at is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "size": self.size,
            "sha256": self.sha256,
            "records": self.records,
            "first_event_time": self.first_event_time,
            "last_event_time": self.last_event_time,
            "delete_at": self.delete_at,
        }
