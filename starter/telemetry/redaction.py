"""What a log line may never carry, taken out of every event before it is rendered.

Two rules, applied by `redact_secrets`, the last processor before the renderer (`starter.telemetry.logs`):

- a field whose name says it holds a secret or a person's words (`password`, `secret`, `credentials`,
  `description`, `email`, `token`, `authorization`, `cookie`, ...), at any depth, is replaced whole: its
  value cannot be recognised by its shape (a description is any text), so its name is the only signal;
- every other text, the event's message and a traceback included, has the shapes a secret takes replaced:
  a bearer token, a JWT (the links in customers' emails carry one), a `token=` / `access_token=` / `link=`
  value in a query string (uvicorn's access log writes each path with its query), the user and password
  of a URL (`smtp://user:password@host`), and an email address.

A value that is neither text, a number nor a container is turned into its text first, so nothing reaches
the JSON renderer's fallback `repr` unredacted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

REDACTED = "[redacted]"

SENSITIVE_KEY = re.compile(
    r"pass(word|wd)?|secret|credential|description|e-?mail|token|authori[sz]ation|cookie|api_?key|sealed",
    re.IGNORECASE,
)
"""Field names whose values are never logged, wherever the name appears in the key (`customer_email`)."""

SAFE_KEYS = frozenset({"event", "logger", "level", "timestamp"})
"""The keys every line has: their names match nothing above, and they are never replaced whole."""

TEXT_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\1{REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"\b((?:(?:access_)?token|link)=)[A-Za-z0-9._~+/=%-]+", re.IGNORECASE), rf"\1{REDACTED}"),
    (re.compile(r"\b([a-z][a-z0-9+.-]*://)[^/\s:@]+(?::[^/\s@]*)?@", re.IGNORECASE), rf"\1{REDACTED}@"),
    (re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"), REDACTED),
)
"""(shape, replacement) in order: a bearer token before the JWT it may be, a URL's credentials before the
email address they look like."""


def redact_text(text: str) -> str:
    """`text` with every shape of `TEXT_PATTERNS` replaced."""
    for pattern, replacement in TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """`value` with its secrets replaced: texts scrubbed, containers walked (a sensitive key replaced
    whole), numbers and None kept, anything else scrubbed as its text."""
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(key): _redact_field(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    return redact_text(str(value))


def _redact_field(key: str, value: Any) -> Any:
    if key not in SAFE_KEYS and SENSITIVE_KEY.search(key) and value not in (None, ""):
        return REDACTED
    return redact_value(value)


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: the event with every field passed through `_redact_field`."""
    for key in list(event_dict):
        event_dict[key] = _redact_field(key, event_dict[key])
    return event_dict
