"""The dashboard as a browser shows it: a real broker process with its HTTP port, and Debian's
headless Chromium loading the page, running its JavaScript against the broker's JSON, and
dumping the DOM it built. Skipped, saying how to get it, where Chromium is not installed
(`make test` installs it when it runs as root: .ci/test-deps)."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import BrokerProcess, TextSession

# Nothing but the page asked for: no sandbox (root in a container), no GPU, no network of its
# own (updates, sync, QUIC), a fresh profile.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
VIRTUAL_TIME_MS = 5_000  # of page time: the first poll and the explanation come well within
CHROMIUM_TIMEOUT_S = 90


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("needs Debian's chromium package: `apt-get install chromium` "
                    "(`make test` installs it when run as root, see .ci/test-deps)")
    return path


def dump_dom(url: str, profile: Path) -> str:
    done = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}",
                           f"--virtual-time-budget={VIRTUAL_TIME_MS}", "--dump-dom", url],
                          capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def cells(row: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", c))
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_the_dashboard_shows_queues_with_their_depth_and_explains_a_message(
        tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "mq.db", "--http-port", "0") as broker:
        t = TextSession(broker.port)
        ids = [int(t.ask(f"PUB orders pizza-{i}").split()[1]) for i in range(4)]
        assert t.ask("GET orders").startswith(f"MSG {ids[0]}.1 ")
        assert t.ask("PUB invoices one").startswith("+OK ")
        url = f"http://127.0.0.1:{broker.http_port}/?explain={ids[1]}"
        dom = dump_dom(url, tmp_path / "profile")
        assert broker.proc is not None and broker.proc.poll() is None
    rows = dict(re.findall(r'<tr data-queue="([^"]+)">(.*?)</tr>', dom, re.S))
    assert set(rows) == {"orders", "invoices"}
    # queue, depth, ready, delayed, leased
    assert cells(rows["orders"])[:5] == ["orders", "4", "3", "0", "1"]
    assert cells(rows["invoices"])[:5] == ["invoices", "1", "1", "0", "0"]
    assert re.search(r'<span id="status" class="pill">ready</span>', dom)
    assert re.search(r'<p id="why"[^>]*>ready: 0 messages ahead of it', dom)
