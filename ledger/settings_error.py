"""`SettingsError`: a setting is missing or unusable.

Defined in `ledger`, the lowest layer with settings, so that the ledger's own settings (a secret's file,
`ledger.secret_files`) raise the same error the rest of the desk raises and reports (`starter.desk.settings`
re-exports it; the failure table answers it with `settings_invalid`): `ledger` must not import `starter`.
"""

from __future__ import annotations


class SettingsError(Exception):
    """A setting is missing or unusable; the message says which and how to fix it, and never holds a
    secret's value.

    Not a ValueError on purpose: raised inside a pydantic validator it leaves the settings class as it is,
    rather than as a ValidationError whose text quotes the class's input, secrets included."""
