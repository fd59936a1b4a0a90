"""Every Python snippet of README.md and clients/python/README.md runs as written, against a
real broker (only its address is changed to the test broker's), and exits cleanly. A fragment
that needs what no test broker has (a TLS certificate, a host named `broker`) is fenced as
```py instead, and reads as a fragment."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import BrokerProcess

ROOT = Path(__file__).parents[2]
READMES = [ROOT / "README.md", ROOT / "clients/python/README.md"]
SNIPPET = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
ADDRESS = "mq://127.0.0.1:7711"


def snippets() -> list[tuple[str, str]]:
    found = [(f"{readme.relative_to(ROOT)}#{n}", code) for readme in READMES
             for n, code in enumerate(SNIPPET.findall(readme.read_text()), 1)]
    assert len(found) >= 8, "the READMEs' snippets were not found"
    return found


@pytest.mark.parametrize(("where", "code"), snippets(), ids=[w for w, _ in snippets()])
def test_the_snippet_runs_as_written(broker: BrokerProcess, where: str, code: str) -> None:
    assert ADDRESS in code, f"{where} does not talk to {ADDRESS}"
    out = subprocess.run([sys.executable, "-c", code.replace(ADDRESS, broker.url)],
                         capture_output=True, text=True, timeout=60, cwd="/",
                         env={**os.environ, "PYTHONWARNINGS": "error"})
    assert out.returncode == 0, f"{where} failed:\n{out.stderr}"


def test_the_sdk_readme_names_no_path_of_this_machine() -> None:
    text = (ROOT / "clients/python/README.md").read_text()
    assert not re.search(r"(/work/|/home/|/tmp/|/root/)", text)
