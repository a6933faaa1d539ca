"""The README's "The policy" table is a map of the code: every rule R1-R16 has a row, and every file, name
and test a row points to exists. A renamed test or a moved function fails here instead of leaving the map
pointing at nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES = [f"R{n}" for n in range(1, 17)]


def policy_rows() -> dict[str, tuple[str, str]]:
    """rule id -> (the "enforced by" cell, the "tested by" cell)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## The policy\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.match(r"(R\d+)\b", cells[0]) if len(cells) == 3 else None
        if match:
            rows[match.group(1)] = (cells[1], cells[2])
    return rows


def defined_tests() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        names.update(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), flags=re.MULTILINE))
    return names


def test_every_rule_has_a_row() -> None:
    assert list(policy_rows()) == RULES


@pytest.mark.parametrize("rule", RULES)
def test_each_row_points_at_code_and_tests_that_exist(rule: str) -> None:
    enforced, tested = policy_rows()[rule]
    pointers = re.findall(r"`([\w/]+\.py)`(?: \(([^)]*)\))?", enforced)
    assert pointers, f"{rule} names no code"
    for file, names in pointers:
        source = (ROOT / file).read_text()
        for name in re.findall(r"`([\w.]+)`", names):
            last = name.split(".")[-1]
            assert re.search(rf"\b{last}\b", source), f"{rule}: {name} is not in {file}"
    tests = re.findall(r"`(test_\w+)`", tested)
    assert tests, f"{rule} names no test"
    assert any(t.startswith(f"test_{rule.lower()}_") for t in tests), f"{rule} needs a test named after it"
    missing = set(tests) - defined_tests()
    assert not missing, f"{rule}: no such tests {missing}"
