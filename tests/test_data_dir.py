"""One data folder wherever a command starts: `ledger.paths.data_dir` and the defaults derived from it, and
the policy in force that `make run` leaves there for the CLI in other shells."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from ledger.paths import DATA_DIR_ENV, data_dir, project_root
from ledger.settings import LedgerSettings
from policy.settings import PolicySnapshot
from starter.api.settings import ApiSettings
from starter.desk.codec import PayloadKeySettings
from starter.desk.settings import SettingsError, policy_file, policy_in_force, save_policy

ROOT = Path(__file__).resolve().parent.parent
PATH_SETTINGS = (
    "DATABASE_URL",
    "REFUND_DESK_VAULT_KEY_FILE",
    "REFUND_DESK_PAYLOAD_KEY_FILE",
    "REFUND_DESK_JWT_SECRET_FILE",
    "REFUND_DESK_JWT_SECRET",
)
POLICY_SETTINGS = [f"REFUND_DESK_{name.upper()}" for name in PolicySnapshot.model_fields]


@pytest.fixture(autouse=True)
def bare_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the settings that would mask the defaults under test."""
    for name in (DATA_DIR_ENV, *PATH_SETTINGS, *POLICY_SETTINGS):
        monkeypatch.delenv(name, raising=False)


def fake_checkout(root: Path, name: str = "refund-desk") -> Path:
    """A folder that looks like a checkout of project `name`: its pyproject.toml and a nested subfolder."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{name}"\nversion = "0"\n')
    nested = root / "tests" / "deeper"
    nested.mkdir(parents=True)
    return nested


def defaults(data: Path) -> dict[str, object]:
    return {
        "database_url": f"sqlite+aiosqlite:///{data / 'ledger.db'}",
        "vault_key_file": data / "vault.key",
        "payload_key_file": data / "payload.key",
        "jwt_secret_file": data / "jwt.secret",
    }


def resolved() -> dict[str, object]:
    ledger = LedgerSettings()
    return {
        "database_url": ledger.database_url,
        "vault_key_file": ledger.vault_key_file,
        "payload_key_file": PayloadKeySettings().payload_key_file,
        "jwt_secret_file": ApiSettings().jwt_secret_file,
    }


def test_from_a_subfolder_of_the_checkout_every_default_is_in_the_checkouts_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT / "tests")
    assert data_dir() == ROOT / ".data"
    assert resolved() == defaults(ROOT / ".data")
    assert policy_file() == ROOT / ".data" / "policy.json"


def test_the_setting_wins_over_the_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT / "tests")
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "elsewhere"))
    assert data_dir() == tmp_path / "elsewhere"
    assert resolved() == defaults(tmp_path / "elsewhere")


def test_the_nearest_checkout_above_the_cwd_is_the_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(fake_checkout(tmp_path / "copy"))
    assert project_root() == tmp_path / "copy"
    assert data_dir() == tmp_path / "copy" / ".data"


def test_another_projects_pyproject_is_passed_by(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Outside any checkout of this project, the editable install's own checkout holds the data."""
    monkeypatch.chdir(fake_checkout(tmp_path / "other", name="other-shop"))
    assert project_root() == ROOT
    assert data_dir() == ROOT / ".data"


def test_the_cli_in_a_subfolder_migrates_the_checkouts_ledger(tmp_path: Path) -> None:
    """`refund-desk migrate`, the installed console script, run two folders below a checkout: the ledger
    lands in the checkout's `.data/`, and no `.data/` appears where the command ran."""
    nested = fake_checkout(tmp_path / "copy")
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in PATH_SETTINGS and key != DATA_DIR_ENV and key not in POLICY_SETTINGS
    }
    script = Path(sys.executable).parent / "refund-desk"
    done = subprocess.run(
        [str(script), "migrate"], cwd=nested, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "copy" / ".data" / "ledger.db").is_file()
    assert not (nested / ".data").exists()


def test_policy_in_force_is_the_saved_one_unless_the_environment_sets_a_window(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert policy_in_force() == PolicySnapshot(), "no file, no variable: the defaults"

    saved = PolicySnapshot(rectify_window=timedelta(seconds=30), review_window=timedelta(minutes=2))
    assert save_policy(saved) == tmp_path / "policy.json"
    assert policy_in_force() == saved

    monkeypatch.setenv("REFUND_DESK_RECTIFY_WINDOW", "PT45S")
    assert policy_in_force() == saved.model_copy(update={"rectify_window": timedelta(seconds=45)})


def test_a_policy_file_that_is_not_a_snapshot_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    (tmp_path / "policy.json").write_text('{"rectify_window": "soon"}')
    with pytest.raises(SettingsError) as refused:
        policy_in_force()
    assert str(refused.value).startswith(f"{tmp_path / 'policy.json'}: rectify_window: ")
    assert "\n" not in str(refused.value)
