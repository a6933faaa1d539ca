"""The README's "The policy" table is a map of the code: every rule R1-R16 has a row, and every file, name,
side effect and test a row points to exists. A renamed test, a moved function or an activity that stops
calling the ledger function its row names fails here instead of leaving the map pointing at nothing.

The README and the pages of `docs/` are checked too: the README stays short enough to read in five minutes,
links every page, and every link and every Python path they name resolves inside the repository."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
RULES = [f"R{n}" for n in range(1, 17)]
MAX_README_LINES = 250

POINTER = re.compile(r"`([\w/]+\.py)`(?: \(([^)]*)\))?")
"""`path/to/file.py` optionally followed by (`name`, `name`)."""
NAME = re.compile(r"`([\w.]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")

ACTIVITIES = "activities/ledger.py"
ACTIVITY_CLASS = "LedgerActivities"


class Row(NamedTuple):
    enforced: str
    side_effect: str
    tested: str


class Pointer(NamedTuple):
    file: str
    names: list[str]


def policy_rows() -> dict[str, Row]:
    """rule id -> the row's "enforced by", "side effect" and "tested by" cells."""
    text = README.read_text()
    section = text.split("## The policy\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, Row] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.match(r"(R\d+)\b", cells[0]) if len(cells) == 4 else None
        if match:
            rows[match.group(1)] = Row(cells[1], cells[2], cells[3])
    return rows


def pointers(text: str) -> list[Pointer]:
    return [Pointer(file, NAME.findall(names)) for file, names in POINTER.findall(text)]


def defined_tests() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        names.update(re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), flags=re.MULTILINE))
    return names


@cache
def definitions(file: str) -> dict[str, ast.AST]:
    """Every function, class and method `file` defines, by qualified name (`Ledger.issue_refund`)."""
    tree = ast.parse((ROOT / file).read_text(), filename=file)
    found: dict[str, ast.AST] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found[prefix + child.name] = child
                if isinstance(child, ast.ClassDef):
                    visit(child, f"{prefix}{child.name}.")

    visit(tree, "")
    return found


def defined(file: str, name: str) -> ast.AST | None:
    """The definition `name` stands for in `file`: a qualified name, or a bare one defined once."""
    found = definitions(file)
    if name in found:
        return found[name]
    matches = [node for qualified, node in found.items() if qualified.endswith(f".{name}")]
    return matches[0] if len(matches) == 1 else None


def activity_methods() -> set[str]:
    """The methods of `LedgerActivities` that are activities (`@activity.defn`)."""
    cls = definitions(ACTIVITIES)[ACTIVITY_CLASS]
    assert isinstance(cls, ast.ClassDef)
    return {
        node.name
        for node in cls.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(ast.unparse(decorator) == "activity.defn" for decorator in node.decorator_list)
    }


def calls_in(function: ast.AST) -> set[str]:
    """The names a function's body calls: `self._ledger.issue_refund(...)` is `issue_refund`."""
    called: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                called.add(node.func.attr)
            elif isinstance(node.func, ast.Name):
                called.add(node.func.id)
    return called


def markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def heading_anchors(path: Path) -> set[str]:
    """The anchors a Markdown renderer gives the file's headings (GitHub's: lower case, punctuation
    dropped, spaces as hyphens)."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#+ (.+)$", path.read_text(), flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


# ---------------------------------------------------------------------------------------- the rule table


def test_every_rule_has_a_row() -> None:
    assert list(policy_rows()) == RULES


@pytest.mark.parametrize("rule", RULES)
def test_each_row_points_at_code_and_tests_that_exist(rule: str) -> None:
    row = policy_rows()[rule]
    named = pointers(row.enforced)
    assert named, f"{rule} names no code"
    for file, names in named:
        assert (ROOT / file).is_file(), f"{rule}: no file {file}"
        source = (ROOT / file).read_text()
        for name in names:
            last = name.split(".")[-1]
            assert re.search(rf"\b{last}\b", source), f"{rule}: {name} is not in {file}"
    tests = re.findall(r"`(test_\w+)`", row.tested)
    assert tests, f"{rule} names no test"
    assert any(t.startswith(f"test_{rule.lower()}_") for t in tests), f"{rule} needs a test named after it"
    missing = set(tests) - defined_tests()
    assert not missing, f"{rule}: no such tests {missing}"


@pytest.mark.parametrize("rule", RULES)
def test_each_side_effect_is_an_activity_and_the_ledger_call_it_makes_or_none_and_why(rule: str) -> None:
    """Each clause `a.py` (`f`) → `ledger/b.py` (`g`) says: f, defined in a.py, calls g, defined in b.py.
    Where a.py is the activities module, f is an activity of `LedgerActivities`. A cell names at least one
    activity and its ledger call, or begins "none:" with the reason the rule writes nothing of its own."""
    cell = policy_rows()[rule].side_effect
    says_none = re.match(r"none: (\w+\W+){3,}", cell) is not None
    activity_pairs = 0
    for clause in cell.split(";"):
        if "→" not in clause:
            assert not pointers(clause), f"{rule}: '{clause.strip()}' names code but no → to what it calls"
            continue
        before, after = clause.split("→", 1)
        callers, callees = pointers(before), pointers(after)
        assert callers, f"{rule}: nothing before the → in '{clause}'"
        assert callees, f"{rule}: nothing after the → in '{clause}'"
        caller = callers[-1]
        assert caller.names, f"{rule}: {caller.file} names no function in '{clause}'"
        assert (ROOT / caller.file).is_file(), f"{rule}: no file {caller.file}"
        functions = []
        for name in caller.names:
            function = defined(caller.file, name)
            assert function is not None, f"{rule}: {name} is not defined in {caller.file}"
            if caller.file == ACTIVITIES:
                assert name in activity_methods(), f"{rule}: {name} is not an activity of {ACTIVITY_CLASS}"
            functions.append((name, calls_in(function)))
        targets: set[str] = set()
        for callee in callees:
            assert callee.file.startswith("ledger/"), f"{rule}: {callee.file} is not in the ledger"
            assert callee.names, f"{rule}: {callee.file} names no function in '{clause}'"
            for name in callee.names:
                found = defined(callee.file, name)
                assert found is not None, f"{rule}: {name} is not defined in {callee.file}"
                targets.add(name.split(".")[-1])
        for target in targets:
            assert any(target in called for _, called in functions), (
                f"{rule}: none of {caller.names} in {caller.file} calls {target}"
            )
        for name, called in functions:
            assert called & targets, f"{rule}: {name} in {caller.file} calls none of {sorted(targets)}"
        if caller.file.startswith("activities/"):
            activity_pairs += 1
    assert says_none or activity_pairs, (
        f"{rule}: name an activity and the ledger function it calls, or say 'none:' and why"
    )


# --------------------------------------------------------------------------------- the README and docs/


def test_the_readme_reads_in_five_minutes() -> None:
    lines = len(README.read_text().splitlines())
    assert lines < MAX_README_LINES, f"the README has {lines} lines; move the long parts to docs/"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_documents_name_only_what_a_clone_has(path: Path) -> None:
    """A clone holds the README and docs/; the shared originals (POLICY.md, API.md) are not in it."""
    text = path.read_text()
    for outside in ("../shared", "/work/shared", "POLICY.md", "API.md", "DEVELOPERS.md"):
        assert outside not in text, f"{path.name} names {outside}: point at docs/ instead"


def test_the_readme_links_every_docs_page() -> None:
    targets = [target.split("#")[0] for target in LINK.findall(README.read_text()) if "://" not in target]
    linked = {(ROOT / target).resolve() for target in targets if target}
    pages = {page.resolve() for page in DOCS.glob("*.md")}
    assert pages, "docs/ has no pages"
    unlinked = sorted(page.name for page in pages - linked)
    assert not unlinked, f"the README does not link {unlinked}"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves(path: Path) -> None:
    """Every relative link points at a file of the repository, and every #anchor at one of its headings."""
    for target in LINK.findall(path.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        assert linked.is_file(), f"{path.name} links {target}, which does not exist"
        assert ROOT in linked.parents, f"{path.name} links {target}, outside the repository"
        if anchor and linked.suffix == ".md":
            assert anchor in heading_anchors(linked), f"{path.name} links {target}: no such heading"


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_path_named_exists(path: Path) -> None:
    """`bench/chaos.py` and the like: a backticked path with a folder names a file that is there."""
    named = set(re.findall(r"`([\w./-]+/[\w.-]+\.py)`", path.read_text()))
    missing = sorted(file for file in named if not (ROOT / file).is_file())
    assert not missing, f"{path.name} names files that do not exist: {missing}"


def test_docs_policy_defines_every_rule() -> None:
    text = (DOCS / "policy.md").read_text()
    for rule in RULES:
        heading = re.search(rf"^#+ {rule}\b", text, flags=re.MULTILINE)
        entry = re.search(rf"^\s*(?:\d+\.|-) +\**{rule}\b", text, flags=re.MULTILINE)
        assert heading or entry, f"docs/policy.md does not define {rule}"
