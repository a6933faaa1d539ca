"""A pydantic validation error said for a person: each field as a dotted path with its message, and on one
line for a terminal. Used by the API's `fields`, the failure table and the settings' errors alike."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError


def validation_items(errors: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(field, message) per error: the field as a dotted path (`body.product.kind`), the message without
    pydantic's "Value error, " prefix."""
    return [
        (
            ".".join(str(part) for part in error.get("loc", ())),
            str(error.get("msg", "invalid")).removeprefix("Value error, "),
        )
        for error in errors
    ]


def one_line(error: ValidationError, env_prefix: str = "") -> str:
    """A settings error as one line, `NAME: message (got 'value')`, named as the environment spells it:
    pydantic-settings reports an aliased field by its alias and a prefixed one by its bare field name."""
    parts = []
    for item, (name, message) in zip(error.errors(), validation_items(error.errors()), strict=True):
        if env_prefix and name and not name.isupper():
            name = f"{env_prefix}{name}".upper()
        got = item.get("input")
        shown = isinstance(got, str | int | float) and len(str(got)) <= 40 and not _secret(name)
        text = f"{message} (got {got!r})" if shown else message
        parts.append(f"{name}: {text}" if name else text)
    return "; ".join(parts)


def _secret(name: str) -> bool:
    """Settings whose value must not reach a terminal or a log, even when it is wrong."""
    return any(word in name.upper() for word in ("SECRET", "KEYS", "PASSWORD", "DATABASE_URL"))
