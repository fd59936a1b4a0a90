"""Shared helpers: the protocol's test vectors (tests/vectors/frames.json at the repo root)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS_PATH = Path(__file__).resolve().parents[3] / "tests/vectors/frames.json"


def from_json(value: Any) -> Any:
    """Turn a vector's JSON `meaning` into Python values: {"$bin": hex} becomes bytes."""
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def load_vectors() -> list[dict[str, Any]]:
    """Every vector as {"name": str, "frame": bytes, "meaning": decoded value}."""
    doc = json.loads(VECTORS_PATH.read_text())
    return [
        {"name": v["name"], "frame": bytes.fromhex(v["frame"]), "meaning": from_json(v["meaning"])}
        for v in doc["frames"]
    ]


def vector(name: str) -> dict[str, Any]:
    """The vector called `name`."""
    (found,) = [v for v in load_vectors() if v["name"] == name]
    return found
