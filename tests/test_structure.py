"""The code's shape: no import cycle, data flowing one way, comments citing files that exist,
nothing imported at start that a run may not need."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "target_convio"
# The layers of docs/contributing.md, "Layout": a module imports only modules listed after it, so
# data flows one way (wiring, then a record's path, then the vocabulary every step shares).
LAYERS = [
    "command",
    "ledger_cli",
    "report",
    "charts",
    "results_tap",
    "target",
    "sinks",
    "services",
    "reader",
    "settings",
    "validation",
    "mapping",
    "sync",
    "read_first",
    "memberships",
    "checkpoints",
    "commit",
    "history",
    "ledger",
    "ledger_schema",
    "digests",
    "json_text",
    "summary",
    "rows",
    "compare",
    "locate",
    "modes",
    "dispatch",
    "breaker",
    "fields",
    "convio",
    "outcomes",
    "signals",
]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    """Every target_convio module a file imports, wherever the import stands."""
    package = module_name(path if path.name == "__init__.py" else path.parent, root)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):  # TYPE_CHECKING blocks included
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("target_convio")}


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports_of(path) & set(modules) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = import_graph()
    assert len(graph) > 20
    assert find_cycle(graph) is None


def test_imports_behind_type_checking_count(tmp_path: Path) -> None:
    module = tmp_path / "target_convio" / "example.py"
    module.parent.mkdir()
    module.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from target_convio.target import Run\n    from . import sinks\n"
    )
    found = imports_of(module, root=tmp_path)
    assert {"target_convio.target", "target_convio.sinks"} <= found


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def layer_of(module: str) -> str:
    """`target_convio.convio.client` is in the layer `convio`."""
    return module.split(".")[1]


def test_every_module_imports_only_the_layers_below_it() -> None:
    graph = import_graph()
    ours = {name for name in graph if name.count(".") >= 1 and ".emulator" not in name}
    assert {layer_of(name) for name in ours} == set(LAYERS)
    upward = sorted(
        (name, dep)
        for name in ours
        for dep in graph[name]
        if layer_of(dep) != layer_of(name)
        and LAYERS.index(layer_of(dep)) <= LAYERS.index(layer_of(name))
    )
    assert upward == []
    for package in ("emulator", "convio"):  # each stands alone: it imports only itself
        members = {name for name in graph if name.startswith(f"target_convio.{package}")}
        assert all(graph[name] <= members for name in members), package


def comments_and_docstrings(path: Path) -> list[str]:
    source = path.read_text()
    texts = [
        tok.string
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node)
            if docstring:
                texts.append(docstring)
    return texts


def test_comments_and_docstrings_cite_only_files_that_exist() -> None:
    files = {
        p.name
        for p in ROOT.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(ROOT).parts)
    }
    cited_missing = []
    sources = [
        p for d in ("target_convio", "tests", "bench", "demo") for p in (ROOT / d).rglob("*.py")
    ]
    for path in sources:
        for text in comments_and_docstrings(path):
            for name in re.findall(r"\b[\w-]+\.(?:md|py|toml|yml)\b", text):
                if name not in files:
                    cited_missing.append(f"{path.relative_to(ROOT)}: {name}")
            if re.search(r"\bseed \d{3}\b|§", text):
                cited_missing.append(f"{path.relative_to(ROOT)}: {text[:60]!r}")
    assert cited_missing == []


def test_a_start_does_not_import_postgresqls_dialect() -> None:
    """30 ms of every run's start: only a PostgreSQL ledger needs it (ledger._upsert_for)."""
    code = (
        "import sys, target_convio.command, target_convio.ledger\n"
        "print('sqlalchemy.dialects.postgresql' in sys.modules)"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout == "False\n"


def test_the_ledger_console_script_does_not_import_the_sdk() -> None:
    """Half of `target-convio-ledger`'s start: it reads a ledger, it never runs the target."""
    code = "import sys, target_convio.ledger_cli\nprint('singer_sdk' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout == "False\n"
