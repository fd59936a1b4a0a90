"""The broker's codec against the shared vectors (tests/vectors/frames.json), which the SDK's
test suite reads too: both sides agree byte for byte."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mq.codec.binary import (
    BinaryDecoder,
    command_from_map,
    encode_error,
    encode_frame,
    encode_reply,
)
from mq.codec.commands import Rejected
from mq.codec.replies import (
    DONE,
    PONG,
    AckedMany,
    Authenticated,
    ClusterMap,
    Copies,
    Deduplicated,
    Joined,
    Messages,
    Published,
    PublishedMany,
    Reply,
    SessionStarted,
    Touched,
)
from mq.errors import Code, MQError, moved

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


def _reply(name: str, make: Callable[[dict[str, Any]], Reply]) -> tuple[str, Reply]:
    fields = {k: v for k, v in meaning(BY_NAME[name]["meaning"]).items() if k not in ("rid", "ok")}
    return name, make(fields)


BY_NAME = {v["name"]: v for v in VECTORS}
TYPED_REPLIES = [
    _reply("ping reply", lambda f: PONG),
    _reply("pub reply", lambda f: Published(**f)),
    _reply("pub reply, deduplicated", lambda f: Deduplicated(f["msg_id"])),
    _reply("mpub reply", lambda f: PublishedMany(**f)),
    _reply("get reply", lambda f: Messages(**f)),
    _reply("get reply, empty", lambda f: Messages(**f)),
    _reply("get reply with headers", lambda f: Messages(**f)),
    _reply("touch reply", lambda f: Touched(**f)),
    _reply("hello reply", lambda f: SessionStarted(**f)),
    _reply("join reply", lambda f: Joined(**f)),
    _reply("batch ack reply", lambda f: AckedMany(**f)),
    _reply("fanout reply", lambda f: Copies(**f)),
    _reply("auth reply", lambda f: Authenticated(**f)),
    _reply("cluster reply", lambda f: ClusterMap(**f)),
]


@pytest.mark.parametrize("name", ["unauthenticated error reply", "forbidden error reply",
                                  "tls required error reply"])
def test_access_errors_encode_to_their_vectors(name: str) -> None:
    v = BY_NAME[name]["meaning"]
    error = MQError(Code(v["code"]), v["message"])
    assert encode_error(v["rid"], error).hex() == BY_NAME[name]["frame"]


@pytest.mark.parametrize(("name", "reply"), TYPED_REPLIES, ids=[n for n, _ in TYPED_REPLIES])
def test_typed_replies_encode_to_the_reply_vectors(name: str, reply: Reply) -> None:
    assert encode_reply(BY_NAME[name]["meaning"]["rid"], reply).hex() == BY_NAME[name]["frame"]


def test_cluster_errors_encode_to_their_vectors() -> None:
    v = BY_NAME["moved error reply"]["meaning"]
    error = moved(v["slot"], v["addr"], v["map_epoch"], "b2")
    assert encode_error(v["rid"], error).hex() == BY_NAME["moved error reply"]["frame"]
    t = BY_NAME["tryagain error reply"]["meaning"]
    error = MQError(Code.TRYAGAIN, t["message"])
    assert encode_error(t["rid"], error).hex() == BY_NAME["tryagain error reply"]["frame"]


def test_a_reply_with_nothing_to_say_is_rid_and_ok() -> None:
    assert encode_reply(3, DONE) == encode_frame({"rid": 3, "ok": True})
