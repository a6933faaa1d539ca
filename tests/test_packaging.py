"""What a non-editable install gets (the container image runs `pip install .` and then deletes the source):
every package of the project, the worker module and the migrations' template, in the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP_LEVEL = ("policy", "ledger", "activities", "workflows", "starter")
LEFT_BEHIND = (".venv", ".data", ".git", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis")
"""Not part of the source: a stale `build/` in particular would hand the wheel files the config omits."""


def test_the_wheel_holds_every_package_module_and_data_file(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LEFT_BEHIND))
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(source), "-w", str(tmp_path)]
    built = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(path.relative_to(ROOT))
        for top in TOP_LEVEL
        for path in (ROOT / top).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    expected |= {"worker.py", "ledger/migrations/script.py.mako"}
    missing = sorted(expected - inside)
    assert not missing, f"a `pip install .` would lack {missing}"
    assert not any(name.startswith(("tests/", "bench/")) for name in inside)
