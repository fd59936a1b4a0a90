"""The protocol's limits and defaults (protocol.md section 7), each named with its unit.

Imports nothing of ours, like errors.py: the codec checks requests against these, the core and
the server's Config may bound their own values by them. They are the same for every deployment;
what a deployment chooses (frame and line sizes, a queue's default lease) lives in the Config.
"""

from __future__ import annotations

MAX_FRAME_BYTES_CEILING = 64 * 1024 * 1024  # keeps a frame's first byte 0x00-0x03 (protocol.md 1)
MAX_NAME_CHARS = 200  # queue, topic, consumer and group names
MAX_KEY_BYTES = 256
MAX_DEDUP_BYTES = 128
MAX_ERROR_BYTES = 4_096  # the error text a nack keeps with its message
MAX_SESSION_CHARS = 64
MAX_MSG_ID = 2**63 - 1
MAX_SECRET_BYTES = 1_024  # an AUTH secret
MAX_HEADERS = 32  # headers of one message
MAX_HEADER_KEY_BYTES = 128  # a header's name: the characters of a queue name
MAX_HEADER_VALUE_BYTES = 2_048  # a header's value, UTF-8
MAX_HEADERS_BYTES = 4_096  # the names and values of one message's headers together, UTF-8

MIN_LEASE_S = 0.01
MAX_LEASE_S = 43_200.0
MAX_WAIT_S = 300.0
MAX_DELAY_S = 86_400.0 * 30
MIN_RETENTION_S = 1.0
MAX_RETENTION_S = 86_400.0 * 365
MIN_TTL_S = 0.001
MAX_TTL_S = MAX_RETENTION_S
MAX_NOT_BEFORE_S = float(2**40)  # Unix s
MIN_HEARTBEAT_S = 0.05
MAX_HEARTBEAT_S = 300.0

MAX_PRIORITY = 9  # priorities are 0..9, higher first
MAX_GET_BATCH = 1_000  # messages one get may lease
MAX_PUB_BATCH = 10_000  # bodies of one mpub
MAX_ACK_BATCH = 10_000  # receipts of one batch ack
MAX_PREFETCH = 10_000  # unacked messages a subscription or a group member may hold
MAX_PEEK = 1_000  # messages one peek may show
MAX_REDRIVE = 10_000  # messages one redrive may move
MAX_DELIVERIES = 1_000_000  # a queue's max_deliveries setting

DEFAULT_PREFETCH = 100
DEFAULT_PEEK_COUNT = 10
DEFAULT_REDRIVE_COUNT = 1_000
