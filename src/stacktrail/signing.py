"""The digest signing key: generate, load, sign (the public part is served by the API).

The key is an Ed25519 private key in a PKCS#8 PEM file (`STACKTRAIL_DIGEST_KEY_FILE`);
`<file>.pub` beside it holds the public key. Rotating means pointing the setting at a
new file: each digest names the fingerprint of the key that signed it, and the public
key of every fingerprint stays in the containers (`digests/keys/<fingerprint>.pub`).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stacktrail_reader import digest as d


class SigningKeyError(ValueError):
    """The key file is missing, unreadable or not an Ed25519 private key."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    private: Ed25519PrivateKey
    fingerprint: str
    public_pem: bytes

    def sign(self, document: dict[str, Any]) -> str:
        return base64.b64encode(self.private.sign(d.canonical(document))).decode()


def _from_private(private: Ed25519PrivateKey) -> SigningKey:
    public = private.public_key()
    return SigningKey(private, d.fingerprint(public), d.public_pem(public))


def load_signing_key(path: Path) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"digest key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"digest key {path}: not an Ed25519 private key")
    return _from_private(key)


def generate_key_files(out: Path) -> SigningKey:
    """Write a new private key to `out` (mode 0600, never overwritten) and `out`.pub."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    key = _from_private(private)
    Path(f"{out}.pub").write_bytes(key.public_pem)
    return key
