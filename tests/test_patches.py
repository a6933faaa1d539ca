"""The patch ids live in `workflows.patches` alone, each naming recorded histories that replay its branches.

A patch id spelled out inline could drift from the one its histories carry, and a patch whose new branch no
recorded history takes would let a change to that branch reach running workflows untested; both fail here.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import workflows
from tests.record_histories import HISTORIES
from tests.test_replay import load, patches_of

WORKFLOWS_DIR = Path(workflows.__file__).parent
PATCHES_MODULE = WORKFLOWS_DIR / "patches.py"
PATCH_CALLS = ("patched", "deprecate_patch")


@dataclass(frozen=True)
class Patch:
    """One constant of `workflows.patches`: its name, the id it holds and its docstring."""

    name: str
    id: str
    doc: str

    def histories(self, branch: str) -> list[str]:
        """The history files the docstring names after `Patched:` or `Unpatched:`."""
        section = re.search(rf"^{branch}:(.*?)(?=^\w+:|\Z)", self.doc, re.DOTALL | re.MULTILINE)
        return re.findall(r"\b[a-z0-9_]+(?:\.[a-z0-9_]+)*\.json\b", section.group(1)) if section else []


def declared() -> list[Patch]:
    """The module's constants, each with the docstring that follows it."""
    body = ast.parse(PATCHES_MODULE.read_text()).body
    found: list[Patch] = []
    for statement, following in zip(body, [*body[1:], None], strict=True):
        named = constant(statement)
        if named is None:
            continue
        name, value = named
        assert isinstance(value, str), f"{name} is not a string"
        doc = following.value if isinstance(following, ast.Expr) else None
        assert isinstance(doc, ast.Constant) and isinstance(doc.value, str), f"{name} has no docstring"
        found.append(Patch(name, value, inspect.cleandoc(doc.value)))
    return found


def constant(statement: ast.stmt) -> tuple[str, object] | None:
    """`NAME = value` or `NAME: Final = value` as (NAME, value); None for any other statement."""
    target: ast.expr
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
    elif isinstance(statement, ast.AnnAssign):
        target = statement.target
    else:
        return None
    if isinstance(target, ast.Name) and isinstance(statement.value, ast.Constant):
        return target.id, statement.value.value
    return None


PATCHES = declared()


def workflow_sources() -> dict[str, str]:
    """Every workflow module but `workflows.patches`, by file name."""
    return {p.name: p.read_text() for p in sorted(WORKFLOWS_DIR.glob("*.py")) if p != PATCHES_MODULE}


def patch_arguments(source: str) -> list[ast.expr]:
    """The first argument of every `workflow.patched(...)` and `workflow.deprecate_patch(...)` call."""
    return [
        node.args[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in PATCH_CALLS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "workflow"
        and node.args
    ]


def imported_from_patches(source: str) -> set[str]:
    return {
        alias.asname or alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module == "workflows.patches"
        for alias in node.names
    }


def test_the_module_declares_every_patch_once() -> None:
    assert PATCHES, "no patch ids found in workflows/patches.py"
    ids = [patch.id for patch in PATCHES]
    assert len(set(ids)) == len(ids), ids


@pytest.mark.parametrize("module", list(workflow_sources()))
def test_a_workflow_names_its_patches_by_their_constants(module: str) -> None:
    source = workflow_sources()[module]
    spelled_out = [patch.id for patch in PATCHES if patch.id in source]
    assert not spelled_out, f"{module} spells out {spelled_out}: import them from workflows.patches"
    names = {patch.name for patch in PATCHES}
    imported = imported_from_patches(source) & names
    for argument in patch_arguments(source):
        assert isinstance(argument, ast.Name) and argument.id in imported, (
            f"{module}:{argument.lineno}: {ast.unparse(argument)} is not a constant from workflows.patches"
        )


def test_every_declared_patch_is_used() -> None:
    used = {
        argument.id
        for source in workflow_sources().values()
        for argument in patch_arguments(source)
        if isinstance(argument, ast.Name)
    }
    assert {patch.name for patch in PATCHES} <= used, "a patch no workflow asks for: deprecate it"


@pytest.mark.parametrize("patch", PATCHES, ids=[patch.id for patch in PATCHES])
def test_a_patch_names_recorded_histories_of_its_branches(patch: Patch) -> None:
    """At least one named history carries the marker (so replay covers the patched branch); each history
    named for the unpatched branch has none."""
    patched, unpatched = patch.histories("Patched"), patch.histories("Unpatched")
    assert patched, f"{patch.name}: its docstring names no history after 'Patched:'"
    for name in patched + unpatched:
        assert (HISTORIES / name).is_file(), f"{patch.name} names {name}, which is not in tests/histories/"
    for name in patched:
        assert patch.id in patches_of(load(HISTORIES / name)), f"{name} lacks the {patch.id} marker"
    for name in unpatched:
        assert patch.id not in patches_of(load(HISTORIES / name)), f"{name} carries the {patch.id} marker"
