"""Who may do what: every role decision of the API and the UI, through oslo.policy.

The defaults follow Hermes (SAP's OpenStack audit service): `audit_viewer`, and the
project's `reader` and `member`, read a project's trail, status, changes and exports;
`audit_admin` or `admin` with a token scoped to a project change that project's trail
(within the operator's bounds) and export its events; the cloud admin (`admin` on the
cloud admin project in the cloud admin domain) reads and changes every trail and the
defaults. A role on some other project grants nothing here, so the legacy Keystone policy
that lets any project admin grant itself `audit_admin` no longer makes it a cloud admin.

Operators override any rule in a YAML file (STACKTRAIL_POLICY_FILE); `stacktrail policy
sample` (or `oslopolicy-sample-generator --namespace stacktrail`) writes every default.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from oslo_config import cfg
from oslo_policy import policy

from stacktrail.api.auth import Principal
from stacktrail.config import Settings
from stacktrail.keystone import TokenInfo

log = logging.getLogger(__name__)

# Base rules: referenced by the actions below, overridable like them.
CLOUD_ADMIN = "cloud_admin"
PROJECT_VIEWER = "project_viewer"
PROJECT_ADMIN = "project_admin"

# Actions, one per API operation (the UI's pages call the same API in-process).
TRAIL_GET = "stacktrail:trail:get"
TRAIL_STATUS = "stacktrail:trail:status"
TRAIL_CHANGES = "stacktrail:trail:changes"
TRAIL_UPDATE = "stacktrail:trail:update"
TRAIL_DELETE = "stacktrail:trail:delete"
EXPORT_CREATE = "stacktrail:export:create"
EXPORTS_LIST = "stacktrail:exports:list"
EXPORT_GET = "stacktrail:export:get"
TRAILS_LIST = "stacktrail:trails:list"
DEFAULTS_GET = "stacktrail:defaults:get"
DEFAULTS_UPDATE = "stacktrail:defaults:update"
EVENT_TYPES_LIST = "stacktrail:event_types:list"
EVENTS_LIST = "stacktrail:events:list"
EVENT_GET = "stacktrail:event:get"
FILES_LIST = "stacktrail:files:list"
DELIVERY_GET = "stacktrail:delivery:get"
DELIVERY_RETRY = "stacktrail:delivery:retry"

_TRAIL = "/v1/projects/{project_id}/trail"
_READ = f"rule:{CLOUD_ADMIN} or rule:{PROJECT_VIEWER}"
_WRITE = f"rule:{CLOUD_ADMIN} or rule:{PROJECT_ADMIN}"


def _op(method: str, path: str) -> list[policy.Operation]:
    return [policy.Operation(method=method, path=path)]


RULES: tuple[policy.RuleDefault, ...] = (
    policy.RuleDefault(
        CLOUD_ADMIN,
        "role:admin and is_cloud_admin_project:True",
        description="Cloud admin: `admin` on the cloud admin project "
        "(STACKTRAIL_KEYSTONE_CLOUD_ADMIN_PROJECT, by id, or by name in "
        "STACKTRAIL_KEYSTONE_CLOUD_ADMIN_DOMAIN). Credentials also carry project_name, "
        "project_domain_name and project_domain_id for rules naming them directly.",
    ),
    policy.RuleDefault(
        PROJECT_ADMIN,
        "(role:audit_admin or role:admin) and project_id:%(project_id)s",
        description="Manages the trail of the project its token is scoped to.",
    ),
    policy.RuleDefault(
        PROJECT_VIEWER,
        f"rule:{PROJECT_ADMIN}"
        " or ((role:audit_viewer or role:reader or role:member) and project_id:%(project_id)s)"
        " or (role:audit_viewer and domain_id:%(domain_id)s)",
        description="Reads the trail, status, changes and exports of the project its token "
        "is scoped to; `audit_viewer` on a domain-scoped token reads the projects of that "
        "domain (when the project's domain is known).",
    ),
    policy.DocumentedRuleDefault(TRAIL_GET, _READ, "Read a project's trail.", _op("GET", _TRAIL)),
    policy.DocumentedRuleDefault(
        TRAIL_STATUS,
        _READ,
        "Read a project's delivery status and event counts.",
        _op("GET", _TRAIL + "/status"),
    ),
    policy.DocumentedRuleDefault(
        TRAIL_CHANGES,
        _READ,
        "Read who changed a project's trail, and how.",
        _op("GET", _TRAIL + "/changes"),
    ),
    policy.DocumentedRuleDefault(
        TRAIL_UPDATE,
        _WRITE,
        "Change a project's trail (within the operator's bounds).",
        [*_op("PUT", _TRAIL), *_op("PATCH", _TRAIL)],
    ),
    policy.DocumentedRuleDefault(
        TRAIL_DELETE, _WRITE, "Reset a project's trail to the defaults.", _op("DELETE", _TRAIL)
    ),
    policy.DocumentedRuleDefault(
        EXPORT_CREATE,
        _WRITE,
        "Export a project's events into its archive container.",
        _op("POST", "/v1/projects/{project_id}/exports"),
    ),
    policy.DocumentedRuleDefault(
        EXPORTS_LIST,
        _READ,
        "List a project's exports.",
        _op("GET", "/v1/projects/{project_id}/exports"),
    ),
    policy.DocumentedRuleDefault(
        EXPORT_GET,
        _READ,
        "Read an export of a project (404 when denied).",
        _op("GET", "/v1/exports/{export_id}"),
    ),
    policy.DocumentedRuleDefault(
        EVENTS_LIST,
        _READ,
        "List a project's recent events (from search), filtered.",
        _op("GET", "/v1/projects/{project_id}/events"),
    ),
    policy.DocumentedRuleDefault(
        EVENT_GET,
        _READ,
        "Read one event of a project in full.",
        _op("GET", "/v1/projects/{project_id}/events/{event_id}"),
    ),
    policy.DocumentedRuleDefault(
        FILES_LIST,
        _READ,
        "List the archive objects delivered into a project's container.",
        _op("GET", "/v1/projects/{project_id}/files"),
    ),
    policy.DocumentedRuleDefault(
        DELIVERY_GET,
        _READ,
        "Read what a project's failing delivery means, how to fix it, and the next retry.",
        _op("GET", _TRAIL + "/delivery"),
    ),
    policy.DocumentedRuleDefault(
        DELIVERY_RETRY,
        _WRITE,
        "Retry a project's failing delivery now.",
        _op("POST", _TRAIL + "/delivery/retry"),
    ),
    policy.DocumentedRuleDefault(
        TRAILS_LIST, f"rule:{CLOUD_ADMIN}", "List every project's trail.", _op("GET", "/v1/trails")
    ),
    policy.DocumentedRuleDefault(
        DEFAULTS_GET,
        "@",
        "Read the operator's defaults and bounds (any valid token).",
        _op("GET", "/v1/defaults"),
    ),
    policy.DocumentedRuleDefault(
        DEFAULTS_UPDATE,
        f"rule:{CLOUD_ADMIN}",
        "Change the operator's defaults and bounds.",
        _op("PUT", "/v1/defaults"),
    ),
    policy.DocumentedRuleDefault(
        EVENT_TYPES_LIST,
        _READ,
        "List the event types seen: a cloud admin every project's, a reader of the token's "
        "own project that project's (the target is the token's project).",
        _op("GET", "/v1/event-types"),
    ),
)


def list_rules() -> Iterator[policy.RuleDefault]:
    """The defaults, for `oslopolicy-sample-generator --namespace stacktrail`."""
    return iter(RULES)


class PolicyFileError(Exception):
    """The operator's policy file cannot be used; the message is meant for the operator."""


def _private_conf() -> cfg.ConfigOpts:
    """A ConfigOpts of our own: oslo.policy needs one, but stacktrail's settings are
    STACKTRAIL_* variables, so nothing is parsed from sys.argv or config files."""
    conf = cfg.ConfigOpts()
    conf([], project="stacktrail", default_config_files=[], default_config_dirs=[])
    return conf


def is_cloud_admin_project(info: TokenInfo, settings: Settings) -> bool:
    """Whether the token is scoped to the cloud admin project: given by id, or by name in
    the cloud admin domain (names are unique only within a domain, and a domain admin
    elsewhere could create another project of that name)."""
    wanted = settings.keystone_cloud_admin_project
    if info.project_id is None:
        return False
    if info.project_id == wanted:
        return True
    domain = (settings.keystone_cloud_admin_domain or settings.keystone_project_domain_name).lower()
    return info.project_name == wanted and (
        (info.domain_name or "").lower() == domain or (info.domain_id or "").lower() == domain
    )


class Policy:
    """The enforcer with stacktrail's defaults and the operator's file, if any."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        path = settings.policy_file
        if path is not None:
            path = path.expanduser().resolve()
            if not path.is_file():
                raise PolicyFileError(f"STACKTRAIL_POLICY_FILE {path} is not a readable file")
        # a relative name is never found (no config dirs): no file means the defaults
        self._enforcer = policy.Enforcer(
            _private_conf(), policy_file=str(path) if path else "policy.yaml"
        )
        self._enforcer.conf.set_override("policy_dirs", [], "oslo_policy")
        self._enforcer.register_defaults(RULES)
        try:
            self._enforcer.load_rules()
        except (ValueError, OSError) as exc:
            raise PolicyFileError(f"cannot load the policy file {path}: {exc}") from exc
        if not self._enforcer.check_rules():
            raise PolicyFileError(f"the policy file {path} refers to rules that do not exist")

    @property
    def path(self) -> str | None:
        return self._enforcer.policy_path

    def principal_of(self, info: TokenInfo) -> Principal:
        who = Principal(
            user_id=info.user_id,
            user_name=info.user_name,
            project_id=info.project_id,
            project_name=info.project_name,
            domain_id=info.domain_id,
            domain_name=info.domain_name,
            roles=frozenset(role.lower() for role in info.roles),
            in_cloud_admin_project=is_cloud_admin_project(info, self._settings),
            cloud_admin=False,
        )
        return who.with_cloud_admin(self.check(who, CLOUD_ADMIN, {}))

    def check(self, who: Principal, rule: str, target: Mapping[str, Any]) -> bool:
        if who.noauth:
            return True
        return bool(self._enforcer.enforce(rule, dict(target), credentials(who)))

    def allows(self, who: Principal, action: str, project_id: str | None = None) -> bool:
        """Whether `who` may do `action` (a registered rule) on `project_id`'s trail."""
        if action not in self._enforcer.registered_rules:
            raise KeyError(f"unknown policy action {action}")
        target = {} if project_id is None else {"project_id": project_id}
        return self.check(who, action, target)


def credentials(who: Principal) -> dict[str, Any]:
    """The token as oslo.policy rules see it (oslo.context's names): `domain_id` only for
    domain-scoped tokens, the project's domain as `project_domain_*`. Absent values are
    left out, never None: a rule compares str(value), and "None" is a valid project id."""
    project_scoped = who.project_id is not None
    creds = {
        "user_id": who.user_id,
        "user_name": who.user_name,
        "project_id": who.project_id,
        "project_name": who.project_name,
        "project_domain_id": who.domain_id if project_scoped else None,
        "project_domain_name": who.domain_name if project_scoped else None,
        "domain_id": None if project_scoped else who.domain_id,
        "domain_name": None if project_scoped else who.domain_name,
        "roles": sorted(who.roles),
        "is_cloud_admin_project": who.in_cloud_admin_project,
    }
    return {key: value for key, value in creds.items() if value is not None}
