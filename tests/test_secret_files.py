"""Every secret setting also read from a file its `*_FILE` variable names (`ledger.secret_files`): the
value is the file's contents less one trailing newline, both variables set is refused in a sentence, an
unreadable file is said plainly, and the value never shows in the settings' repr or str, nor in an error."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from dispatch.settings import DispatchSettings
from ledger.secret_files import SecretFileError
from ledger.settings import LedgerSettings
from ledger.settings_error import SettingsError
from ledger.vault import VaultKeyring
from starter.api.settings import ApiSettings
from starter.desk.codec import PayloadKeyring, PayloadKeySettings
from starter.desk.settings import SettingsError as DeskSettingsError
from starter.desk.settings import TemporalSettings
from starter.local.banner import second_shell
from starter.local.preflight import read_plan


def keys(kid: str) -> str:
    return f"{kid}:{base64.urlsafe_b64encode(os.urandom(32)).decode()}"


def revealed(value: object) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


@dataclass(frozen=True)
class Secret:
    variable: str
    settings: type[BaseSettings]
    read: Callable[[BaseSettings], str]
    example: Callable[[], str]


def field(name: str) -> Callable[[BaseSettings], str]:
    return lambda settings: revealed(getattr(settings, name))


def jwt_secret(settings: BaseSettings) -> str:
    assert isinstance(settings, ApiSettings)
    return settings.secret()


SECRETS = [
    Secret("REFUND_DESK_JWT_SECRET", ApiSettings, jwt_secret, lambda: "jwt-" + os.urandom(24).hex()),
    Secret("REFUND_DESK_VAULT_KEYS", LedgerSettings, field("vault_keys"), lambda: keys("vault-from-file")),
    Secret(
        "REFUND_DESK_PAYLOAD_KEYS", PayloadKeySettings, field("payload_keys"), lambda: keys("payload-file")
    ),
    Secret(
        "DATABASE_URL",
        LedgerSettings,
        field("database_url"),
        lambda: f"postgresql+asyncpg://ledger:{os.urandom(8).hex()}@db.internal:5432/refund_desk",
    ),
    Secret(
        "REFUND_DESK_SMTP_URL",
        DispatchSettings,
        field("smtp_url"),
        lambda: f"smtps://mailer:{os.urandom(8).hex()}@smtp.example.com",
    ),
    Secret("TEMPORAL_API_KEY", TemporalSettings, field("api_key"), lambda: "tmprl-" + os.urandom(16).hex()),
]
IDS = [secret.variable for secret in SECRETS]


@pytest.fixture(autouse=True)
def no_secrets_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests set the variables they mean; none inherited from the shell that runs them."""
    for secret in SECRETS:
        monkeypatch.delenv(secret.variable, raising=False)
        monkeypatch.delenv(secret.variable + "_FILE", raising=False)


def assert_hidden(settings: BaseSettings, value: str) -> None:
    assert value not in repr(settings)
    assert value not in str(settings)


@pytest.mark.parametrize("secret", SECRETS, ids=IDS)
def test_the_file_holds_the_value_less_one_trailing_newline(
    secret: Secret, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = secret.example()
    path = tmp_path / "secret"
    path.write_text(value + "\n")
    monkeypatch.setenv(secret.variable + "_FILE", str(path))

    settings = secret.settings()
    assert secret.read(settings) == value
    assert_hidden(settings, value)


@pytest.mark.parametrize("secret", SECRETS, ids=IDS)
def test_only_one_newline_is_taken_and_other_whitespace_kept(
    secret: Secret, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = secret.example()
    path = tmp_path / "secret"
    path.write_bytes(value.encode() + b"\r\n")
    monkeypatch.setenv(secret.variable + "_FILE", str(path))
    assert secret.read(secret.settings()) == value, "a CRLF ending is one newline"

    path.write_text(value)
    assert secret.read(secret.settings()) == value, "no newline at all"

    path.write_text(value + " \n\n")
    assert secret.read(secret.settings()) == value + " \n", "one newline only: the rest may be the secret's"


@pytest.mark.parametrize("secret", SECRETS, ids=IDS)
def test_the_plain_variable_still_works_and_stays_hidden(
    secret: Secret, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = secret.example()
    monkeypatch.setenv(secret.variable, value)
    settings = secret.settings()
    assert secret.read(settings) == value
    assert_hidden(settings, value)


@pytest.mark.parametrize("secret", SECRETS, ids=IDS)
def test_both_set_is_refused_in_a_sentence_without_the_value(
    secret: Secret, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    value, in_file = secret.example(), secret.example()
    path = tmp_path / "secret"
    path.write_text(in_file + "\n")
    monkeypatch.setenv(secret.variable, value)
    monkeypatch.setenv(secret.variable + "_FILE", str(path))

    with pytest.raises(SecretFileError) as raised:
        secret.settings()
    message = str(raised.value)
    assert message == (
        f"both {secret.variable} and {secret.variable}_FILE are set; "
        "set one: the value itself, or the file that holds it"
    )
    assert value not in message and in_file not in message
    assert isinstance(raised.value, SettingsError), "reported as every bad setting is (settings_invalid)"


@pytest.mark.parametrize("secret", SECRETS, ids=IDS)
def test_a_file_that_cannot_be_read_is_said_plainly(
    secret: Secret, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable = secret.variable + "_FILE"
    cases = {
        tmp_path / "absent": "which does not exist",
        tmp_path: "which is a folder, not a file",
    }
    empty = tmp_path / "empty"
    empty.write_text("\n")
    cases[empty] = "which is empty"
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe\x00secret")
    cases[binary] = "which is not UTF-8 text"
    if os.geteuid() != 0:  # root reads any file
        locked = tmp_path / "locked"
        locked.write_text(secret.example())
        locked.chmod(0)
        cases[locked] = "which this process may not read"

    for path, why in cases.items():
        monkeypatch.setenv(variable, str(path))
        if secret.settings is ApiSettings and path == tmp_path / "absent":
            # The JWT secret's file is read when the secret is needed (the worker runs without one).
            with pytest.raises(DeskSettingsError, match="no JWT secret"):
                secret.read(secret.settings())
            continue
        with pytest.raises(SecretFileError) as raised:
            secret.read(secret.settings())
        assert str(raised.value) == f"{variable} names {path}, {why}"


@pytest.mark.parametrize("secret", SECRETS, ids=IDS)
def test_an_empty_variable_counts_as_unset(
    secret: Secret, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compose's `${NAME:-}` leaves a variable empty rather than unset: the file is read, no conflict."""
    value = secret.example()
    path = tmp_path / "secret"
    path.write_text(value + "\n")
    monkeypatch.setenv(secret.variable, "")
    monkeypatch.setenv(secret.variable + "_FILE", str(path))
    assert secret.read(secret.settings()) == value


def test_keys_from_files_open_what_the_same_keys_sealed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file variants feed the real keyrings: what the vault and the codec seal with the keys given
    inline opens with the same keys given as files, and the development key files are left alone."""
    vault, payload = keys("v1"), keys("p1")
    (tmp_path / "vault-keys").write_text(vault + "\n")
    (tmp_path / "payload-keys").write_text(payload + "\n")
    monkeypatch.setenv("REFUND_DESK_VAULT_KEYS_FILE", str(tmp_path / "vault-keys"))
    monkeypatch.setenv("REFUND_DESK_PAYLOAD_KEYS_FILE", str(tmp_path / "payload-keys"))
    monkeypatch.setenv("REFUND_DESK_VAULT_KEY_FILE", str(tmp_path / "dev-vault.key"))
    monkeypatch.setenv("REFUND_DESK_PAYLOAD_KEY_FILE", str(tmp_path / "dev-payload.key"))

    sealed = VaultKeyring.parse(vault).encrypt(b"ssh root@10.0.0.7", associated=b"c-1")
    assert LedgerSettings().keyring().decrypt(*sealed, associated=b"c-1") == b"ssh root@10.0.0.7"
    wrapped = PayloadKeyring.parse(payload).encrypt(b"a description", associated=b"wf")
    assert PayloadKeySettings().keyring().decrypt(*wrapped, associated=b"wf") == b"a description"
    assert not (tmp_path / "dev-vault.key").exists(), "the singular KEY_FILE is made only without keys"
    assert not (tmp_path / "dev-payload.key").exists()


def test_a_value_given_in_code_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "vault-keys"
    path.write_text(keys("from-file") + "\n")
    monkeypatch.setenv("REFUND_DESK_VAULT_KEYS_FILE", str(path))
    given = keys("in-code")
    assert revealed(LedgerSettings(vault_keys=given).vault_keys) == given


def test_make_run_tells_a_second_shell_the_files_not_the_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI in another shell needs the same keys: `make run`'s banner exports the files' paths."""
    vault, database = keys("v1"), f"sqlite+aiosqlite:///{tmp_path}/ledger.db"
    (tmp_path / "vault-keys").write_text(vault + "\n")
    (tmp_path / "database-url").write_text(database + "\n")
    monkeypatch.setenv("REFUND_DESK_VAULT_KEYS_FILE", str(tmp_path / "vault-keys"))
    monkeypatch.setenv("DATABASE_URL_FILE", str(tmp_path / "database-url"))

    told = second_shell(read_plan())
    assert f"export REFUND_DESK_VAULT_KEYS_FILE={tmp_path / 'vault-keys'}" in told
    assert f"export DATABASE_URL_FILE={tmp_path / 'database-url'}" in told
    assert vault not in told
