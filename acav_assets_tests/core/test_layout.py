"""The architecture of ``acav_assets.core``: no Dagster import, no import circle between its modules.

Reads the source with ``ast`` (every import statement, module level or inside a function), so a
lazy import that would close a circle counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import acav_assets

PACKAGE = Path(acav_assets.__file__).resolve().parent
CORE = PACKAGE / "core"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Absolute names of everything ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # ``from pkg import module``
    return out


def _core_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in CORE.rglob("*.py")}
    return {name: {d for d in _imports(path) if d in files and d != name} for name, path in files.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every back edge of a depth-first walk, as the circle it closes."""
    state: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                found.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_core_imports_no_dagster():
    offenders = {
        _module_name(p): sorted(d for d in _imports(p) if d.split(".")[0].startswith("dagster"))
        for p in CORE.rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"core modules import Dagster: {offenders}"


def test_core_has_no_import_circle():
    graph = _core_graph()
    assert len(graph) > 20, "the walk found too few modules: is the layout test looking in the right place?"
    assert graph["acav_assets.core.stages.curation"], "the walk found no imports: is _imports broken?"
    cycles = _cycles(graph)
    assert not cycles, "import circles in core:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_finder_sees_a_planted_circle():
    assert _cycles({"x.a": {"x.b"}, "x.b": {"x.c"}, "x.c": {"x.a"}}) == [["x.a", "x.b", "x.c", "x.a"]]
    assert _cycles({"x.a": {"x.b"}, "x.b": set()}) == []


# --- the Dagster layer: domains that keep to themselves, small files -------------------------------

DEFS = PACKAGE / "defs"
CLI = PACKAGE / "cli"
DOMAINS = ("ingest", "features", "sync", "curation", "export", "maintenance")


def _defs_violations() -> list[str]:
    """Imports from a domain's modules into another domain, or from a domain or the platform into
    the composition modules (definitions, runner, run_config): a domain may import the platform and
    its own modules only."""
    found = []
    for path in DEFS.rglob("*.py"):
        mod = _module_name(path)
        parts = mod.split(".")
        if len(parts) < 4:  # acav_assets.defs.<module>: the composition layer may import any domain
            continue
        home = parts[2]
        for dep in _imports(path):
            if not dep.startswith("acav_assets.defs."):
                continue
            target = dep.split(".")[2]
            if target == home or target == "platform" and home != "platform":
                continue
            if home == "platform" and target != "platform":
                found.append(f"{mod} (the platform) imports {dep}")
            elif target in DOMAINS or target in ("definitions", "runner", "run_config"):
                found.append(f"{mod} imports {dep}")
    return found


def test_defs_domains_import_only_the_platform_and_themselves():
    assert {p.name for p in DEFS.iterdir() if p.is_dir() and not p.name.startswith("_")} >= {*DOMAINS, "platform"}
    assert not _defs_violations(), "imports across defs domains:\n" + "\n".join(_defs_violations())


def test_the_domain_check_sees_a_planted_crossing(tmp_path, monkeypatch):
    planted = DEFS / "ingest" / "_planted_for_layout_test.py"
    planted.write_text("from acav_assets.defs.curation.assets import curated_subset\n")
    try:
        assert any("_planted_for_layout_test" in v for v in _defs_violations())
    finally:
        planted.unlink()


def test_no_file_of_defs_or_cli_is_over_300_lines():
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in [*DEFS.rglob("*.py"), *CLI.rglob("*.py")]
        if (n := len(p.read_text().splitlines())) > 300
    }
    assert not long, f"files over 300 lines: {long}"


def test_the_warehouse_layer_imports_nothing_above_it():
    """``core/warehouse`` (tables, lineage arithmetic, the fingerprint index, local state) is the
    storage layer: the stages and media modules build on it, never the other way round."""
    graph = _core_graph()
    upward = {
        mod: sorted(
            d
            for d in deps
            if not d.startswith(("acav_assets.core.warehouse", "acav_assets.core.bits", "acav_assets.core.statuses"))
        )
        for mod, deps in graph.items()
        if mod.startswith("acav_assets.core.warehouse")
    }
    assert {m: d for m, d in upward.items() if d} == {}
