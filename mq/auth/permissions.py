"""The four permissions a user is granted on queue-name patterns. Imports nothing of ours, so
the codec may declare with each command the permission it needs (mq/codec/commands.py)."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    PUBLISH = "publish"  # pub, mpub, fanout (on the topic)
    CONSUME = "consume"  # get, sub, ack, nack, touch, join
    ADMIN = "admin"  # declare, purge, delete, redrive, bind, unbind
    INSPECT = "inspect"  # peek, explain, history, monitor, stats, queues, bindings


EVERY_QUEUE = "*"
"""The pattern a grant must have for the commands about every queue (STATS, QUEUES, ...)."""
