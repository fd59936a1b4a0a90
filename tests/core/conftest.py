"""Fixtures the core tests share: a fake clock and a broker on it."""

from __future__ import annotations

import pytest

from mq.core.broker import Broker
from mq.core.clock import FakeClock
from mq.core.model import QueueSettings


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000.0)


@pytest.fixture
def core(clock: FakeClock) -> Broker:
    return Broker(clock, QueueSettings(retention_s=3600, lease_s=30))
