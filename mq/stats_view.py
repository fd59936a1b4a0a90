"""`mq stats`: a running broker's queues as a table a person can read."""

from __future__ import annotations

import sys
from typing import Any

from mq_client import Client
from mq_client.errors import MQError

from mq.codec.text_lines import group_table, stats_table


def render(stats: dict[str, Any]) -> str:
    server = stats["server"]
    header = (f"mq {server['version']}  up {server['uptime_s']:.0f}s  "
              f"connections {server['connections']}  sync {server['sync']}  "
              f"commits {server['commits']}  waiting GETs {server['waiting_gets']}")
    queues = stats["queues"]
    body = stats_table(queues) if queues else ["(no queues yet)"]
    groups = group_table(queues)
    return "\n".join([header, "", *body, *(["", *groups] if groups else [])])


def print_stats(url: str, queue: str | None) -> int:
    try:
        with Client.connect(url, timeout_s=10) as mq:
            stats = mq.stats(queue)
    except (MQError, OSError) as e:
        print(f"mq stats: cannot read stats from {url}: {e}\n"
              "Is a broker running there? Start one with `make run` or `mq serve`.",
              file=sys.stderr)
        return 1
    print(render(stats))
    return 0
