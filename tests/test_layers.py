"""The dependency rules of STYLE.md, checked on the import statements of every module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]

# package -> prefixes it must not import
DRIVERS = ("sqlite3", "aiosqlite", "asyncpg")  # only storage talks to a database
FORBIDDEN = {
    # Of mq/auth the codec may know only the permission names (each command declares its own).
    "mq/codec": ("mq.core", "mq.storage", "mq.server", "mq.cli", "mq.bench", "mq.ring",
                 "mq.liveness", "mq.http", "mq.auth.users", "mq.auth.hashing", "asyncio",
                 "socket", "ssl", *DRIVERS),
    "mq/core": ("mq.codec", "mq.storage", "mq.server", "mq.cli", "mq.bench", "mq.auth",
                "mq.http", "asyncio", "socket", "ssl", *DRIVERS, "time"),
    "mq/errors.py": ("mq.", "asyncio"),
    "mq/limits.py": ("mq.", "asyncio"),
    "mq/ring.py": ("mq.", "asyncio"),
    "mq/liveness.py": ("mq.", "asyncio"),
    "mq/auth": ("mq.codec", "mq.core", "mq.storage", "mq.server", "mq.cli", "mq.bench",
                "mq.http", "asyncio", "socket", "ssl", *DRIVERS),
    "mq/auth/permissions.py": ("mq.",),
    "mq/storage": ("mq.server", "mq.codec", "mq.cli", "mq.bench", "mq.auth", "mq.http"),
    "mq/server": ("mq.cli", "mq.bench", *DRIVERS),
    # The slot arithmetic and the map are pure; only the etcd side of mq/cluster awaits.
    "mq/cluster/slots.py": ("mq.core", "mq.storage", "mq.server", "mq.codec", "asyncio", "socket"),
    "mq/cluster/assign.py": ("mq.core", "mq.storage", "mq.server", "mq.codec", "asyncio",
                             "socket"),
    "mq/cluster/slotmap.py": ("mq.core", "mq.storage", "mq.server", "mq.codec", "asyncio",
                              "socket"),
    "mq/cluster/stable.py": ("mq.", "asyncio", "socket", "time"),
    "mq/cluster/store_watch.py": ("mq.", "asyncio", "socket", "time"),
    "mq/cluster": ("mq.server", "mq.cli", "mq.bench", "mq.codec"),
    # The HTTP side port sees the broker only through the view the server hands it.
    "mq/http": ("mq.server", "mq.core", "mq.storage", "mq.codec", "mq.cli", "mq.bench",
                "mq.auth", *DRIVERS),
    "clients/python/mq_client": ("mq.", "mq"),
}
# The SDK needs msgpack alone: only its Celery transport (the `celery` extra) imports kombu.
KOMBU_TRANSPORT = "clients/python/mq_client/kombu_transport.py"


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def forbidden_hits(where: str, banned: tuple[str, ...]) -> list[str]:
    target = ROOT / where
    files = [target] if target.is_file() else sorted(target.rglob("*.py"))
    hits = []
    for f in files:
        for name in imports_of(f):
            for ban in banned:
                prefix = ban if ban.endswith(".") else ban + "."
                if name == ban.rstrip(".") or name.startswith(prefix):
                    hits.append(f"{f.relative_to(ROOT)} imports {name}")
    return hits


def test_no_forbidden_imports() -> None:
    hits = [h for where, banned in FORBIDDEN.items() for h in forbidden_hits(where, banned)]
    assert hits == []


def test_only_the_kombu_transport_imports_kombu_or_celery() -> None:
    hits = [h for f in sorted((ROOT / "clients/python/mq_client").glob("*.py"))
            if f != ROOT / KOMBU_TRANSPORT
            for h in forbidden_hits(str(f.relative_to(ROOT)), ("kombu", "celery"))]
    assert hits == []


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import asyncio\nfrom mq.storage.sqlite import SQLiteStore\n")
    assert imports_of(bad) == {"asyncio", "mq.storage.sqlite"}


def module_graph(package: Path, prefix: str) -> dict[str, set[str]]:
    """Which modules of `package` import which others of it (TYPE_CHECKING imports count too:
    a cycle hidden behind them is still a circle a reader must hold in their head)."""
    modules = {f"{prefix}.{f.stem}": f for f in sorted(package.glob("*.py"))}
    return {name: {i for i in imports_of(f) if i in modules and i != name}
            for name, f in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of `graph` as a path that ends where it starts, or [] if none."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return []
        for nxt in sorted(graph.get(node, ())):
            cycle = visit(nxt, [*path, node])
            if cycle:
                return cycle
        done.add(node)
        return []

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return []


def test_the_server_wing_has_no_import_cycle() -> None:
    for package in ("server", "codec", "core", "storage", "http", "auth", "cli"):
        graph = module_graph(ROOT / "mq" / package, f"mq.{package}")
        assert find_cycle(graph) == [], f"mq/{package} has an import cycle"


def test_the_cycle_check_catches_a_circle(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from p.b import x\n")
    (tmp_path / "b.py").write_text("from typing import TYPE_CHECKING\n"
                                   "if TYPE_CHECKING:\n    from p.a import y\n")
    (tmp_path / "c.py").write_text("import p.a\n")
    graph = module_graph(tmp_path, "p")
    assert graph == {"p.a": {"p.b"}, "p.b": {"p.a"}, "p.c": {"p.a"}}
    assert find_cycle(graph) == ["p.a", "p.b", "p.a"]
