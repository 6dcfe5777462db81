"""The public keys that sign the archive digests (no authentication: they are public)."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from pydantic import BaseModel, Field

from stacktrail.api.deps import Context
from stacktrail.domain.durations import format_duration
from stacktrail.signing import SigningKey, SigningKeyError, load_signing_key

log = logging.getLogger(__name__)
router = APIRouter(tags=["digests"])


class DigestKey(BaseModel):
    fingerprint: str = Field(description="Named by every digest it signed (`key_fingerprint`).")
    algorithm: str = Field("Ed25519", description="The signature algorithm (`Ed25519`).")
    public_key: str = Field(description="PEM (SubjectPublicKeyInfo), as in digests/keys/.")


class DigestKeys(BaseModel):
    enabled: bool = Field(description="Whether digests are written (a signing key is set).")
    interval: str = Field(description="The period one digest covers.")
    keys: list[DigestKey] = Field(description="The public keys the digests are signed with.")


@lru_cache(maxsize=4)
def _load(path: Path, mtime_ns: int) -> SigningKey:
    return load_signing_key(path)


@router.get("/v1/digest-keys", response_model=DigestKeys, summary="Digest signing public keys")
async def digest_keys(ctx: Context) -> DigestKeys:
    settings = ctx.settings
    interval = format_duration(settings.digest_interval)
    path = settings.digest_key_file
    if path is None:
        return DigestKeys(enabled=False, interval=interval, keys=[])
    try:
        key = _load(path, path.stat().st_mtime_ns)
    except (OSError, SigningKeyError) as exc:
        log.error("digest keys: %s", exc)
        return DigestKeys(enabled=True, interval=interval, keys=[])
    return DigestKeys(
        enabled=True,
        interval=interval,
        keys=[DigestKey(fingerprint=key.fingerprint, public_key=key.public_pem.decode())],
    )
