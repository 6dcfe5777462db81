"""`/v1/digest-keys` serves the signing key's public half without a token (real Keystone)."""

from __future__ import annotations

from pathlib import Path

from stacktrail.api.app import create_app
from stacktrail.config import Settings
from stacktrail.db.trail_store import TrailStore
from stacktrail.keystone import KeystoneClient
from stacktrail.signing import generate_key_files
from stacktrail_reader import digest as d
from tests.support.api import client_for


async def test_digest_keys_need_no_token_and_match_the_signing_key(
    keystone_settings: Settings, store: TrailStore, keystone: KeystoneClient, tmp_path: Path
) -> None:
    key = generate_key_files(tmp_path / "digest.key")
    settings = keystone_settings.model_copy(update={"digest_key_file": tmp_path / "digest.key"})
    async with client_for(create_app(settings, store, keystone)) as http:
        response = await http.get("/v1/digest-keys")
        assert response.status_code == 200
        body = response.json()
        assert body["enabled"] is True
        assert body["interval"] == "1h"
        [served] = body["keys"]
        assert served["fingerprint"] == key.fingerprint
        public = d.load_public_key(served["public_key"].encode())
        assert d.fingerprint(public) == key.fingerprint
        # the trails still need a token
        assert (await http.get("/v1/trails")).status_code == 401


async def test_digest_keys_say_when_digests_are_off(
    keystone_settings: Settings, store: TrailStore, keystone: KeystoneClient
) -> None:
    async with client_for(create_app(keystone_settings, store, keystone)) as http:
        response = await http.get("/v1/digest-keys")
    assert response.status_code == 200
    assert response.json() == {"enabled": False, "interval": "1h", "keys": []}
