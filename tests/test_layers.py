"""The dependency rules of STYLE.md, checked on the import statements of every module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[1]

# package -> prefixes it must not import
FORBIDDEN = {
    "mq/codec": ("mq.core", "mq.storage", "mq.server", "mq.cli", "mq.bench", "mq.ring",
                 "mq.liveness", "asyncio", "socket", "sqlite3", "aiosqlite"),
    "mq/core": ("mq.codec", "mq.storage", "mq.server", "mq.cli", "mq.bench", "asyncio",
                "socket", "sqlite3", "aiosqlite", "time"),
    "mq/errors.py": ("mq.", "asyncio"),
    "mq/limits.py": ("mq.", "asyncio"),
    "mq/ring.py": ("mq.", "asyncio"),
    "mq/liveness.py": ("mq.", "asyncio"),
    "mq/storage": ("mq.server", "mq.codec", "mq.cli", "mq.bench"),
    "mq/server": ("mq.cli", "mq.bench"),
    "clients/python/mq_client": ("mq.", "mq"),
}


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


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import asyncio\nfrom mq.storage.sqlite import SQLiteStore\n")
    assert imports_of(bad) == {"asyncio", "mq.storage.sqlite"}
