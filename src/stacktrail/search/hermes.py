"""The event as Hermes decodes it: its Go CADF struct (sapcc/go-api-declarations `cadf`).

Hermes decodes every hit into that struct, so one value of the wrong JSON type fails a
whole list request: keystone's numeric `reason.reasonCode` (`401`), a list in
`target.project_id`. The search document therefore holds, where the struct has a string,
a string; the archive keeps the event as it was received.

The rule, for each field the struct types as a string:
- a string stays; null or a missing member stays as it is (Go leaves it empty);
- a number or a boolean becomes its JSON text (`401` -> `"401"`, `true` -> `"true"`);
- a list is reduced to its first element (by this same rule); an empty list is dropped;
- an object becomes its compact JSON text.
An attachment's `content` (a string in the struct) follows the same rule, except that
a list or an object becomes its JSON text whole (it is the attachment's payload).
Members of an object the struct types as an object (reason, a resource, host) that hold
something else are dropped. Members the struct does not know pass unchanged.

The common event needs no change: it is checked, not copied; only an event that needs a
change is copied (the parts that change), never mutated.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

JsonDict = dict[str, Any]

_EVENT_STRINGS: Final = ("typeURI", "id", "eventType", "action", "outcome", "requestPath")
_RESOURCE_STRINGS: Final = (
    "typeURI",
    "name",
    "domain",
    "id",
    "project_id",
    "domain_id",
    "project_name",
    "project_domain_name",
    "domain_name",
)
_REASON_STRINGS: Final = ("reasonType", "reasonCode")
_HOST_STRINGS: Final = ("id", "address", "agent", "platform")
_ADDRESS_STRINGS: Final = ("url", "name")
_ATTACHMENT_STRINGS: Final = ("name", "typeURI")
_RESOURCES: Final = ("initiator", "target", "observer")
# the same names for the fast check (`fits_hermes`), which looks members up in them;
# an attachment's `content` is a string in the struct too
_RESOURCE_STRING_SET: Final = frozenset(_RESOURCE_STRINGS)
_REASON_STRING_SET: Final = frozenset(_REASON_STRINGS)
_HOST_STRING_SET: Final = frozenset(_HOST_STRINGS)
_ADDRESS_STRING_SET: Final = frozenset(_ADDRESS_STRINGS)
_ATTACHMENT_STRING_SET: Final = frozenset((*_ATTACHMENT_STRINGS, "content"))
_RESOURCE_OBJECTS: Final = frozenset(("host", "addresses", "attachments"))
_MISSING: Final[Any] = object()


def as_string(value: Any) -> str | None:
    """A value where the struct has a string (see the module docstring); None: drop it."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is list:
        return as_string(value[0]) if value else None
    return _json_text(value)  # numbers, booleans, objects


def _json_text(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits (decode's JSON parser refuses them)
        return str(value)


def _fix_strings(doc: JsonDict, names: tuple[str, ...]) -> JsonDict:
    """`doc`, or a copy with its string members fixed."""
    out = doc
    for name in names:
        value = doc.get(name, _MISSING)
        if value is _MISSING or value is None or type(value) is str:
            continue
        if out is doc:
            out = dict(doc)
        fixed = as_string(value)
        if fixed is None:
            del out[name]
        else:
            out[name] = fixed
    return out


def _fix_list(items: Any, fix: Any) -> Any:
    """A list of objects, each fixed by `fix`; entries that are not objects are dropped."""
    if type(items) is not list:
        return _MISSING
    fixed = [fix(item) for item in items if type(item) is dict]
    if len(fixed) == len(items) and all(a is b for a, b in zip(fixed, items, strict=True)):
        return items
    return fixed


def _fix_attachment(attachment: JsonDict) -> JsonDict:
    out = _fix_strings(attachment, _ATTACHMENT_STRINGS)
    content = attachment.get("content", _MISSING)
    if content is not _MISSING and content is not None and type(content) is not str:
        if out is attachment:
            out = dict(attachment)
        out["content"] = _json_text(content)
    return out


def _fix_address(address: JsonDict) -> JsonDict:
    return _fix_strings(address, _ADDRESS_STRINGS)


def _set(doc: JsonDict, out: JsonDict, name: str, value: Any, original: Any) -> JsonDict:
    if value is original:
        return out
    if out is doc:
        out = dict(doc)
    if value is _MISSING:
        del out[name]
    else:
        out[name] = value
    return out


def _fix_object(doc: JsonDict, out: JsonDict, name: str, fix: Any) -> JsonDict:
    value = doc.get(name, _MISSING)
    if value is _MISSING or value is None:
        return out
    fixed = fix(value) if type(value) is dict else _MISSING
    return _set(doc, out, name, fixed, value)


def _fix_resource(resource: JsonDict) -> JsonDict:
    out = _fix_strings(resource, _RESOURCE_STRINGS)
    out = _fix_object(resource, out, "host", lambda h: _fix_strings(h, _HOST_STRINGS))
    for name, fix in (("addresses", _fix_address), ("attachments", _fix_attachment)):
        value = resource.get(name, _MISSING)
        if value is not _MISSING and value is not None:
            out = _set(resource, out, name, _fix_list(value, fix), value)
    return out


def _strings_fit(doc: JsonDict, names: frozenset[str]) -> bool:
    """Whether every member of `doc` named in `names` is a string or null.

    Walks the members, not the names: an object holds fewer of them than the struct
    knows, and most are strings, which cost one type check each."""
    for name, value in doc.items():
        if type(value) is not str and value is not None and name in names:
            return False
    return True


def _list_fits(items: Any, names: frozenset[str]) -> bool:
    """A list of objects whose members `names` are strings already (or null)."""
    if type(items) is not list:
        return items is None
    return all(type(item) is dict and _strings_fit(item, names) for item in items)


def _resource_fits(resource: Any) -> bool:
    if resource is None:
        return True
    if type(resource) is not dict:
        return False
    for name, value in resource.items():
        if type(value) is str:
            if name in _RESOURCE_OBJECTS:  # host, addresses, attachments: not strings
                return False
            continue
        if value is None:
            continue
        if name in _RESOURCE_STRING_SET:
            return False
        if name == "host":
            if type(value) is not dict or not _strings_fit(value, _HOST_STRING_SET):
                return False
        elif name == "addresses":
            if not _list_fits(value, _ADDRESS_STRING_SET):
                return False
        elif name == "attachments" and not _list_fits(value, _ATTACHMENT_STRING_SET):
            return False
    return True


def fits_hermes(body: JsonDict) -> bool:
    """Whether the event already has the types Hermes' struct needs (the common case).

    The same rule as `hermes_view`, checked in few calls: one event in a stream of
    thousands per second should cost a lookup per member, not a function per object.
    A False only sends the event through `hermes_view`'s rule, which decides.
    """
    get = body.get
    for name in _EVENT_STRINGS:
        value = get(name)
        if value is not None and type(value) is not str:
            return False
    reason = get("reason")
    if reason is not None and (
        type(reason) is not dict or not _strings_fit(reason, _REASON_STRING_SET)
    ):
        return False
    return (
        _resource_fits(get("initiator"))
        and _resource_fits(get("target"))
        and _resource_fits(get("observer"))
        and _list_fits(get("attachments"), _ATTACHMENT_STRING_SET)
    )


def hermes_view(body: JsonDict) -> JsonDict:
    """The event with the JSON types Hermes' struct needs; `body` itself when it has them."""
    return body if fits_hermes(body) else convert(body)


def convert(body: JsonDict) -> JsonDict:
    """`hermes_view` without the fast check: the rule itself, member by member."""
    out = _fix_strings(body, _EVENT_STRINGS)
    out = _fix_object(body, out, "reason", lambda r: _fix_strings(r, _REASON_STRINGS))
    for name in _RESOURCES:
        out = _fix_object(body, out, name, _fix_resource)
    value = body.get("attachments", _MISSING)
    if value is not _MISSING and value is not None:
        out = _set(body, out, "attachments", _fix_list(value, _fix_attachment), value)
    return out
