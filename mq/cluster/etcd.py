"""A small adapter over aetcd (the asyncio etcd v3 client): the few calls the cluster makes,
with plain values in and out, and one exception for "etcd cannot be reached now".

aetcd takes one host. Several endpoints go to gRPC as one multi-address target
(`ipv4:a:p,b:p,c:p`), which fails over between them by itself; that needs IPv4 addresses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Sequence
from typing import TypeVar

import aetcd
import aetcd.exceptions

from mq.cluster.keys import Entry

CALL_TIMEOUT_S = 3
T = TypeVar("T")


class EtcdUnavailable(Exception):
    """etcd did not answer (no quorum, unreachable, timed out)."""


def parse_endpoints(text: str) -> list[tuple[str, int]]:
    """`host:port[,host:port...]` as (host, port) pairs; ValueError saying what is wrong."""
    out: list[tuple[str, int]] = []
    for part in (p.strip() for p in text.split(",")):
        host, sep, port = part.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"an etcd endpoint is host:port, got {part!r}")
        out.append((host, int(port)))
    if len(out) > 1:
        for host, _ in out:
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise ValueError(f"with several etcd endpoints each must be an IPv4 address "
                                 f"(gRPC's multi-address target), got {host!r}") from None
    return out


def _target(endpoints: Sequence[tuple[str, int]]) -> tuple[str, int]:
    """(host, port) for aetcd, which joins them as f"{host}:{port}"."""
    if len(endpoints) == 1:
        return endpoints[0]
    *first, (last_host, last_port) = endpoints
    return "ipv4:" + ",".join(f"{h}:{p}" for h, p in first) + f",{last_host}", last_port


class Etcd:
    def __init__(self, endpoints: str) -> None:
        host, port = _target(parse_endpoints(endpoints))
        self.endpoints = endpoints
        self._client = aetcd.Client(host=host, port=port, timeout=CALL_TIMEOUT_S)

    async def read(self, prefix: str) -> list[Entry]:
        try:
            got = await self._client.get_prefix(prefix.encode())
        except aetcd.exceptions.ClientError as e:
            raise EtcdUnavailable(f"etcd at {self.endpoints}: {e}") from e
        return [Entry(kv.key.decode(), kv.value, kv.mod_revision, kv.create_revision)
                for kv in got]

    async def grant(self, ttl_s: int) -> int:
        """A new lease of `ttl_s` seconds; its id."""
        lease = await self._call(self._client.lease(ttl_s))
        return int(lease.id)

    async def keep_alive(self, lease: int) -> bool:
        """Refresh `lease`; False when it had already expired (its keys are gone)."""
        reply = await self._call(self._client.refresh_lease(lease))
        return reply is not None and int(reply.TTL) > 0

    async def revoke(self, lease: int) -> None:
        await self._call(self._client.revoke_lease(lease))

    async def put(self, key: str, value: bytes, lease: int | None = None) -> None:
        await self._call(self._client.put(key.encode(), value, lease=lease))

    async def delete(self, key: str) -> None:
        await self._call(self._client.delete(key.encode()))

    async def claim(self, key: str, value: bytes, lease: int) -> bool:
        """Create `key` bound to `lease` unless it exists; whether this call created it."""
        t = self._client.transactions
        done, _ = await self._call(self._client.transaction(
            compare=[t.create(key.encode()) == 0],
            success=[t.put(key.encode(), value, lease)], failure=[]))
        return bool(done)

    async def put_if(self, guard: str, guard_revision: int,
                     puts: Sequence[tuple[str, bytes]]) -> bool:
        """Write all of `puts` in one transaction if `guard`'s create_revision is still
        `guard_revision` (this controller's term); whether they were written."""
        t = self._client.transactions
        done, _ = await self._call(self._client.transaction(
            compare=[t.create(guard.encode()) == guard_revision],
            success=[t.put(k.encode(), v) for k, v in puts], failure=[]))
        return bool(done)

    async def _call(self, work: Awaitable[T]) -> T:
        try:
            return await work
        except aetcd.exceptions.ClientError as e:
            raise EtcdUnavailable(f"etcd at {self.endpoints}: {e}") from e

    async def close(self) -> None:
        await self._client.close()
