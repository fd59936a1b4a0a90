"""Headers survive a SIGKILLed broker: every confirmed publish comes back after the restart with
the headers it was given (pub, mpub per message, fan-out copies, a dead letter), and HISTORY
still shows them."""

from __future__ import annotations

from pathlib import Path

from mq_client import Client

from tests.harness import BrokerProcess

TRACE = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}


def test_headers_survive_sigkill(tmp_path: Path) -> None:
    with BrokerProcess(tmp_path / "mq.db") as broker:
        with Client.connect(broker.url) as mq:
            mq.declare("jobs", max_deliveries=1)
            mq.bind("t", "copy-a")
            mq.bind("t", "copy-b")
            one = mq.publish("jobs", b"one", headers={**TRACE, "x-job": "1"})
            plain = mq.publish("jobs", b"plain")
            many = mq.publish_many("batch", [b"a", b"b", b"c"],
                                   headers=[{"n": "a"}, None, {"n": "ü c"}])
            copies = mq.fanout("t", b"copied", headers={"x-copy": "yes"})
            [leased] = mq.get("jobs")
            assert leased.msg_id == one
            mq.nack(leased, error="boom")  # max_deliveries=1: to jobs.dlq, headers and all
        broker.kill()
        broker.start()

        with Client.connect(broker.url) as mq:
            [dead] = mq.get("jobs.dlq")
            assert (dead.msg_id, dead.headers) == (one, {**TRACE, "x-job": "1"})
            [kept] = mq.get("jobs")
            assert (kept.msg_id, kept.headers) == (plain, {})
            batch = mq.get("batch", max=10)
            assert [(m.msg_id, dict(m.headers)) for m in batch] == [
                (many[0], {"n": "a"}), (many[1], {}), (many[2], {"n": "ü c"})]
            for queue in ("copy-a", "copy-b"):
                [copy] = mq.get(queue)
                assert (copy.msg_id, copy.body, copy.headers) == (
                    copies[queue], b"copied", {"x-copy": "yes"})
            [published, *_] = mq.history(one)
            assert published["headers"] == {**TRACE, "x-job": "1"}
