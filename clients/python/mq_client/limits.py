"""The protocol's limits that the client checks before sending (protocol.md section 7).

The client is written from protocol.md alone and imports nothing of the broker, so these mirror
the broker's own (mq/limits.py); the SDK's tests against a real broker keep the two in step.
Defaults are not mirrored: where the broker has one, the client leaves the field out.
"""

MAX_GET_MESSAGES = 1_000
"""The most messages one `get` may lease (its `max`)."""
MAX_MPUB_BODIES = 10_000
"""The most bodies one `mpub` frame may carry."""
MAX_ACK_RECEIPTS = 10_000
"""The most receipts one batch `ack` frame may carry."""
