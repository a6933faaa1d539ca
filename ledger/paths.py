"""Where the development data lives (`.data/`): the ledger, the keys, the JWT secret, the policy in force.

This sits in `ledger`, the lowest layer that keeps files: the ledger's own defaults (the SQLite database and
the vault key) need it, and `ledger` must not import `starter`, which imports `ledger`. `policy` stays pure
rules, with no files. `starter` derives its defaults (payload key, JWT secret, policy.json) from here too,
so every process finds the same folder whichever subfolder of the checkout it starts in.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

DATA_DIR_ENV = "REFUND_DESK_DATA_DIR"
PROJECT_NAME = "refund-desk"
DATA_FOLDER = ".data"


def is_project_root(folder: Path) -> bool:
    """Whether `folder` holds this project's pyproject.toml (another project's does not count)."""
    try:
        with (folder / "pyproject.toml").open("rb") as file:
            name = tomllib.load(file).get("project", {}).get("name", "")
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return isinstance(name, str) and name.lower().replace("_", "-").replace(".", "-") == PROJECT_NAME


def project_root(start: Path | None = None) -> Path | None:
    """The checkout this code runs from: the nearest folder at or above `start` (the cwd) holding this
    project's pyproject.toml, else the folder above this package if it holds it (an editable install runs
    from the checkout wherever the cwd is), else None (an installed wheel, as in the container image)."""
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if is_project_root(folder):
            return folder
    installed = Path(__file__).resolve().parent.parent
    return installed if is_project_root(installed) else None


def data_dir() -> Path:
    """REFUND_DESK_DATA_DIR if set, else the checkout's `.data/`, else `.data/` in the cwd.

    Read on every call, not cached: the cwd and the environment are the caller's, and tests change both."""
    configured = os.environ.get(DATA_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser().absolute()
    root = project_root()
    return (root if root is not None else Path.cwd()) / DATA_FOLDER
