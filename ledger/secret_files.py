"""Secrets as files: each secret setting `NAME` also reads `NAME_FILE`, a file holding the value, the way
Docker and Kubernetes secrets are mounted (`/run/secrets/...`), so a secret need not sit in the environment
where `ps e`, `docker inspect` and crash reports show it.

The file's contents are the value, less one trailing newline (`echo` and most editors add one; any other
whitespace is kept, since it may be part of the secret). Setting both `NAME` and `NAME_FILE` is refused:
which one wins would be a guess. An empty variable counts as unset, as compose's `${NAME:-}` leaves it.

This sits in `ledger`, the lowest layer with settings of its own (`DATABASE_URL`, the vault keys): `ledger`
must not import `starter`, which imports `ledger`, and every settings class (the ledger's, the API's, the
payload codec's, Temporal's, the dispatcher's) uses this one helper.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import model_validator

from ledger.settings_error import SettingsError

FILE_SUFFIX = "_FILE"


class SecretFileError(SettingsError):
    """A `*_FILE` setting is unusable (both it and its plain variable set, or its file unreadable); the
    message is one sentence naming the variable and never the secret. Raised while a settings class is
    built, it leaves the class as it is (not as a ValidationError, whose text would quote the input)."""


def environ(name: str) -> str | None:
    """The variable's value, None when it is unset or empty."""
    return os.environ.get(name) or None


def strip_one_newline(text: str) -> str:
    """`text` less one trailing newline (`\\n` or `\\r\\n`), nothing else."""
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


def read_named_file(variable: str, path: str | Path) -> bytes:
    """The bytes of the file `path` that the setting `variable` names; a `SecretFileError` saying why, in
    one sentence, when it cannot be read (TEMPORAL_TLS_KEY and friends read their files through this too)."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise SecretFileError(f"{variable} names {path}, which does not exist") from None
    except IsADirectoryError:
        raise SecretFileError(f"{variable} names {path}, which is a folder, not a file") from None
    except PermissionError:
        raise SecretFileError(f"{variable} names {path}, which this process may not read") from None
    except OSError as error:
        raise SecretFileError(f"{variable} names {path}, which cannot be read: {error.strerror}") from None


def read_secret_file(variable: str, path: str | Path) -> str:
    """The value the file `path` (named by `variable`) holds, less one trailing newline; a
    `SecretFileError` saying why when it cannot be read, is not UTF-8 or is empty."""
    try:
        text = read_named_file(variable, path).decode("utf-8")
    except UnicodeDecodeError:
        raise SecretFileError(f"{variable} names {path}, which is not UTF-8 text") from None
    value = strip_one_newline(text)
    if not value:
        raise SecretFileError(f"{variable} names {path}, which is empty")
    return value


def secret_from_file(plain: str, *, present: bool = False) -> str | None:
    """The value `plain`'s `_FILE` variable names, None when that variable is unset. `present`: the value was
    given some other way (the plain variable, or in code) and the file is not read. Both variables set is a
    `SecretFileError`."""
    file_variable = plain + FILE_SUFFIX
    path = environ(file_variable)
    if path is None:
        return None
    if environ(plain) is not None:
        raise SecretFileError(
            f"both {plain} and {file_variable} are set; set one: the value itself, or the file that holds it"
        )
    if present:
        return None
    return read_secret_file(file_variable, path)


def names_field(key: object, field: str, plain: str) -> bool:
    """Whether `key` of a settings class's input (the environment's entries and its keyword arguments) is
    `field`, by its name or its variable's, in any case."""
    return str(key).lower() in {field.lower(), plain.lower()}


def given(data: Mapping[str, Any], field: str, plain: str) -> bool:
    """Whether `data` holds a value for `field`; an empty one counts as none."""
    return any(names_field(key, field, plain) and value not in (None, "") for key, value in data.items())


def with_value(data: Mapping[str, Any], field: str, plain: str, value: str) -> dict[str, Any]:
    """`data` with `value` for `field`, in place of any (empty) entry the environment had for it."""
    return {key: kept for key, kept in data.items() if not names_field(key, field, plain)} | {field: value}


def secret_files(**fields: str) -> Any:
    """A `mode="before"` model validator for a settings class: for each `field=PLAIN_VARIABLE`, the value
    of `PLAIN_VARIABLE_FILE`'s file when that is set. Assign it in the class body:
    `_secret_files = secret_files(vault_keys="REFUND_DESK_VAULT_KEYS")`. A value given in code (a keyword
    argument) wins over the file, as it does over the environment."""

    def read(cls: type, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for field, plain in fields.items():
            value = secret_from_file(plain, present=given(data, field, plain))
            if value is not None:
                data = with_value(data, field, plain, value)
        return data

    return model_validator(mode="before")(read)
