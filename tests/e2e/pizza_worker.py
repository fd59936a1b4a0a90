"""A worker process for the end-to-end tests: joins a group, records every job it starts and
acks, and stops by itself (stop file or time limit).

Log lines (one os.write each, so a SIGKILL never leaves half a line):
    LEASE <unix_s> <msg_id> <deliveries> <key>    received, for each message of a get
    START <unix_s> <msg_id> <deliveries> <key>    began making it
    ACKING <unix_s> <msg_id> <deliveries>         about to send the ack
    ACK <unix_s> <msg_id>                         the broker confirmed the ack

ACKING comes before the ack is sent, so a worker killed with an ack in flight leaves an ACKING
without its ACK: the broker may or may not have committed that ack, and only it can say which.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from mq_client import Client


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--stop-file", required=True)
    p.add_argument("--queue", default="orders")
    p.add_argument("--group", default="kitchen")
    p.add_argument("--work-s", type=float, default=0.02)
    p.add_argument("--heartbeat-s", type=float, default=0.25)
    p.add_argument("--prefetch", type=int, default=5)
    p.add_argument("--max-run-s", type=float, default=90.0)
    args = p.parse_args()
    fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    stop = Path(args.stop_file)
    give_up = time.monotonic() + args.max_run_s
    with Client.connect(args.url) as mq:
        mq.hello(args.name, heartbeat_s=args.heartbeat_s)
        mq.join(args.queue, args.group, prefetch=args.prefetch)
        os.write(fd, b"JOINED\n")
        while not stop.exists() and time.monotonic() < give_up:
            msgs = mq.get(args.queue, lease_s=60, wait_s=0.2, max=args.prefetch)
            os.write(fd, b"".join(f"LEASE {time.time():.6f} {m.msg_id} {m.deliveries} "
                                  f"{m.key}\n".encode() for m in msgs))
            for msg in msgs:
                os.write(fd, f"START {time.time():.6f} {msg.msg_id} {msg.deliveries} "
                             f"{msg.key}\n".encode())
                time.sleep(args.work_s)
                os.write(fd, f"ACKING {time.time():.6f} {msg.msg_id} {msg.deliveries}\n".encode())
                mq.ack(msg)
                os.write(fd, f"ACK {time.time():.6f} {msg.msg_id}\n".encode())
    os.close(fd)


if __name__ == "__main__":
    main()
