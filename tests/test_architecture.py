"""The folders are the architecture: this test fails when a module imports across a line it must not.

- `roster/` (what the MIS says) knows nothing of Graph, the engine, the simulator or the edges.
- `engine/` (want, have, plan, apply) never imports click, rich, httpx, the CLI, the report or the simulator:
  it talks to Graph only through `smartsync.graph`'s client.
- `graph/` (the only Graph client) knows nothing of the engine, the roster or the edges above it.
- `simulator/` is a second, independent reading of Graph's documentation: it imports nothing of the product.
- click only in `cli.py`, rich only in the report, httpx only in the modules at the edge that talk HTTP.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "smartsync"

HTTP_EDGES = ("smartsync.graph", "smartsync.httpio", "smartsync.roster.sources.https", "smartsync.notify",
              "smartsync.simulator")  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def offences(owner: str, forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    return sorted(
        f"{module} imports {name}"
        for module, names in MODULES.items()
        if within(module, owner) and not within(module, *allowed)
        for name in names
        if within(name, *forbidden)
    )


def test_the_layout_is_there() -> None:
    for package in ("smartsync.roster", "smartsync.roster.sources", "smartsync.engine", "smartsync.graph",
                    "smartsync.simulator"):  # fmt: skip
        assert package in MODULES, f"{package} is missing"


def test_the_roster_knows_nothing_of_graph_or_the_engine() -> None:
    forbidden = ("smartsync.graph", "smartsync.engine", "smartsync.simulator", "smartsync.cli",
                 "smartsync.report", "click", "rich")  # fmt: skip
    assert offences("smartsync.roster", forbidden) == []


def test_the_engine_never_imports_the_edges() -> None:
    forbidden = ("click", "rich", "httpx", "smartsync.cli", "smartsync.report", "smartsync.simulator",
                 "smartsync.notify", "smartsync.demo")  # fmt: skip
    assert offences("smartsync.engine", forbidden) == []


def test_the_graph_client_knows_nothing_above_it() -> None:
    forbidden = ("smartsync.engine", "smartsync.roster", "smartsync.cli", "smartsync.report",
                 "smartsync.simulator", "click", "rich")  # fmt: skip
    assert offences("smartsync.graph", forbidden) == []


def test_the_simulator_imports_nothing_of_the_product() -> None:
    product = tuple(
        sorted({name for name in MODULES if not within(name, "smartsync.simulator") and name != "smartsync"})
    )
    assert offences("smartsync.simulator", product) == []
    # and the product's client and engine never reach into the simulator
    assert offences("smartsync.graph", ("smartsync.simulator",)) == []


@pytest.mark.parametrize(
    ("library", "allowed"),
    [("click", ("smartsync.cli",)), ("rich", ("smartsync.report",)), ("httpx", HTTP_EDGES)],
)
def test_each_library_stays_in_its_edge(library: str, allowed: tuple[str, ...]) -> None:
    assert offences("smartsync", (library,), allowed) == []


def test_the_rules_catch_an_offence() -> None:
    # The checks above would pass vacuously if imports_of found nothing: make sure it sees real imports.
    assert "httpx" in MODULES["smartsync.graph.client"]
    assert any(within(n, "smartsync.engine") for n in MODULES["smartsync.cli"])
    assert "click" in MODULES["smartsync.cli"]
