"""The customer's own credentials from a `clouds.yaml` entry, as a keystoneauth1 session.

Reads the documented clouds.yaml format of the OpenStack client tools, without
openstacksdk (whose config loader pulls a dozen packages into a small library): the
first file found of `$OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`,
`~/.config/openstack/clouds.yaml` and `/etc/openstack/clouds.yaml` (`.yml` and `.json`
too), with `secure.yaml` from the same places merged over it (passwords kept apart).

Of a cloud entry it uses `auth` (keystoneauth1's plugin options: `auth_url`, `username`,
`password`, `project_name`, `project_id`, `user_domain_name`, `project_domain_name`,
`application_credential_id`, `application_credential_secret`, `token`, ...; `-` and `_`
alike), `auth_type` (default `password`; `v3applicationcredential` when the entry has an
application credential, `token` when it has a token), `region_name`, `interface`,
`verify`, `cacert`, `cert` and `key`. Vendor `profile`s are not supported: an entry that
names one is refused, so nothing is silently left out.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

NAMES = ("clouds.yaml", "clouds.yml", "clouds.json")
SECURE_NAMES = ("secure.yaml", "secure.yml", "secure.json")


class CloudConfigError(ValueError):
    """No clouds.yaml, no such cloud in it, or an entry that cannot be used."""


def search_path() -> list[Path]:
    """The directories searched, in order: the current one, the user's, the system's."""
    return [
        Path.cwd(),
        Path(os.path.expanduser("~/.config/openstack")),
        Path("/etc/openstack"),
    ]


def _first(env: str, names: Sequence[str], directories: Sequence[Path]) -> Path | None:
    given = os.environ.get(env)
    if given:
        return Path(given)
    for directory in directories:
        for name in names:
            if (directory / name).is_file():
                return directory / name
    return None


def _load(path: Path) -> dict[str, Any]:
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CloudConfigError(f"{path}: {exc}") from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CloudConfigError(f"{path}: not a mapping")
    return value


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _normalise(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k).replace("-", "_"): _normalise(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class Cloud:
    """One clouds.yaml entry, ready to authenticate."""

    name: str
    path: Path  # the file it came from
    auth_type: str
    auth: dict[str, Any]
    region_name: str | None = None
    interface: str = "public"
    verify: bool | str = True  # False, True, or a CA bundle path
    cert: str | tuple[str, str] | None = None

    def ssl_context(self) -> ssl.SSLContext | bool:
        """The same TLS trust for other HTTP clients (httpx) as the session's."""
        if self.verify is False:
            return False
        context = ssl.create_default_context(
            cafile=self.verify if isinstance(self.verify, str) else None
        )
        if self.cert is not None:
            cert, key = self.cert if isinstance(self.cert, tuple) else (self.cert, None)
            context.load_cert_chain(cert, key)
        return context

    def session(self, timeout: float = 60.0) -> Any:  # keystoneauth1.session.Session
        from keystoneauth1 import loading, session

        try:
            loader: Any = loading.get_plugin_loader(self.auth_type)
        except Exception as exc:  # keystoneauth1's NoMatchingPlugin
            raise CloudConfigError(
                f"{self.path}: cloud {self.name!r}: unknown auth_type {self.auth_type!r}"
            ) from exc
        options = {o.dest: o for o in loader.get_options()}
        aliases = {d.dest: o.dest for o in options.values() for d in o.deprecated}
        auth: dict[str, Any] = {}
        for key, value in self.auth.items():
            dest = aliases.get(key, key)
            if dest not in options:
                known = ", ".join(sorted(options))
                raise CloudConfigError(
                    f"{self.path}: cloud {self.name!r}: auth key {key!r} is not an option "
                    f"of auth_type {self.auth_type} (its options: {known})"
                )
            auth[dest] = value
        missing = [o.dest for o in options.values() if o.required and auth.get(o.dest) is None]
        if missing:
            raise CloudConfigError(
                f"{self.path}: cloud {self.name!r}: auth needs {', '.join(missing)}"
            )
        plugin = loader.load_from_options(**auth)
        return session.Session(auth=plugin, verify=self.verify, cert=self.cert, timeout=timeout)


def _project_domains(auth: dict[str, Any]) -> dict[str, Any]:
    """A plain `domain_id`/`domain_name` beside a project names the user's and the
    project's domain (as the OpenStack client reads it), not a domain scope."""
    if not any(auth.get(k) for k in ("project_id", "project_name", "tenant_id", "tenant_name")):
        return auth
    auth = dict(auth)
    for kind in ("id", "name"):
        value = auth.pop(f"domain_{kind}", None)
        if value is not None:
            auth.setdefault(f"user_domain_{kind}", value)
            auth.setdefault(f"project_domain_{kind}", value)
    return auth


def load_cloud(name: str, directories: Sequence[Path] | None = None) -> Cloud:
    """The entry `name` of the first clouds.yaml found (see the module's doc);
    `directories` replaces the search path (the environment variables still apply)."""
    directories = search_path() if directories is None else directories
    path = _first("OS_CLIENT_CONFIG_FILE", NAMES, directories)
    if path is None:
        where = ", ".join(str(d / NAMES[0]) for d in directories)
        raise CloudConfigError(f"no clouds.yaml found (looked for {where})")
    config = _load(path)
    secure = _first("OS_CLIENT_SECURE_FILE", SECURE_NAMES, directories)
    if secure is not None and secure.is_file():
        config = _merge(config, _load(secure))
    clouds = config.get("clouds") or {}
    entry = _normalise(clouds.get(name)) if isinstance(clouds, dict) else None
    if not isinstance(entry, dict):
        known = ", ".join(sorted(clouds)) if isinstance(clouds, dict) else ""
        raise CloudConfigError(
            f"{path}: no cloud named {name!r}" + (f" (it has: {known})" if known else "")
        )
    if entry.get("profile"):
        raise CloudConfigError(
            f"{path}: cloud {name!r} uses profile {entry['profile']!r}; vendor profiles are "
            "not supported: write its auth_url and region_name into the entry"
        )
    auth = entry.get("auth") or {}
    if not isinstance(auth, dict) or not auth.get("auth_url"):
        raise CloudConfigError(f"{path}: cloud {name!r} has no auth.auth_url")
    auth_type = str(entry.get("auth_type") or _inferred_type(auth)).replace("-", "_")
    verify: bool | str = bool(entry.get("verify", True))
    if verify and entry.get("cacert"):
        verify = str(entry["cacert"])
    cert = entry.get("cert")
    return Cloud(
        name=name,
        path=path,
        auth_type=auth_type,
        auth=_project_domains(auth),
        region_name=entry.get("region_name"),
        interface=str(entry.get("interface") or "public"),
        verify=verify,
        cert=(str(cert), str(entry["key"])) if cert and entry.get("key") else cert,
    )


def _inferred_type(auth: Mapping[str, Any]) -> str:
    if auth.get("application_credential_id") or auth.get("application_credential_name"):
        return "v3applicationcredential"
    if auth.get("token"):
        return "token"
    return "password"
