"""The broker's codec against the shared vectors (tests/vectors/frames.json), which the SDK's
test suite reads too: both sides agree byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mq.codec.binary import BinaryDecoder, command_from_map, encode_frame
from mq.codec.commands import Rejected

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "frames.json").read_text())["frames"]


def meaning(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        return {k: meaning(v) for k, v in value.items()}
    if isinstance(value, list):
        return [meaning(v) for v in value]
    return value


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_encoding_matches_vector(vector: dict[str, Any]) -> None:
    assert encode_frame(meaning(vector["meaning"])).hex() == vector["frame"]


REQUESTS = [v for v in VECTORS if "op" in v["meaning"]]


@pytest.mark.parametrize("vector", REQUESTS, ids=[v["name"] for v in REQUESTS])
def test_request_vectors_decode_to_commands(vector: dict[str, Any]) -> None:
    decoded = BinaryDecoder(1024).feed(bytes.fromhex(vector["frame"]))
    assert len(decoded) == 1
    command = decoded[0]
    assert not isinstance(command, Rejected), command
    assert command == command_from_map(meaning(vector["meaning"]))
    assert command.rid == vector["meaning"]["rid"]
