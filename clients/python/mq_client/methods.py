"""One definition of each operation, a method of each client.

An operation is defined once, as a function of ops.py or admin_ops.py: its parameters, their
defaults, its docstring, and the request (or `Batch` of requests) it makes. `awaiting` turns it
into a coroutine method of `AsyncClient`, `blocking` into a method of `Client`: both take the
operation's own parameters (typed through a ParamSpec, so mypy and IDEs see them), have its
name and docstring, and hand what it builds to the client's `_run`. A new field of an operation
is a new parameter of its function, and nothing else.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    ParamSpec,
    Protocol,
    TypeVar,
    Unpack,
    get_args,
    get_origin,
    get_type_hints,
)

from mq_client.request import Operation, Request

if TYPE_CHECKING:
    from mq_client.cluster_link import ClusterLink
    from mq_client.link import Link

P = ParamSpec("P")
T = TypeVar("T")
M = TypeVar("M", bound=Callable[..., Any])


class AsyncRunner(Protocol):
    """What `awaiting` methods need of their client."""

    _link: Link | ClusterLink

    def _run(self, operation: Operation[T]) -> Awaitable[T]: ...


class BlockingRunner(Protocol):
    """What `blocking` methods need of their client."""

    def _run(self, operation: Operation[T]) -> T: ...


def awaiting(build: Callable[P, Operation[T]]) -> Callable[Concatenate[AsyncRunner, P], Coroutine[Any, Any, T]]:
    """The `AsyncClient` method of the operation `build`."""

    async def method(self: AsyncRunner, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(build(*args, **kwargs))

    return _like(method, build)


def awaiting_on_link(
    build: Callable[P, Request[T]], via: Callable[[Link, Request[T]], Awaitable[T]]
) -> Callable[Concatenate[AsyncRunner, P], Coroutine[Any, Any, T]]:
    """An `AsyncClient` method whose request the link sends with `via`: one it must remember to
    restore the session on a new connection (`join`), or forget (`leave`)."""

    async def method(self: AsyncRunner, /, *args: P.args, **kwargs: P.kwargs) -> T:
        # By name: a cluster's link (cluster_link.py) has its own `join` and `leave`.
        send: Callable[[Request[T]], Awaitable[T]] = getattr(self._link, via.__name__)
        return await send(build(*args, **kwargs))

    return _like(method, build)


def blocking(build: Callable[P, Operation[T]]) -> Callable[Concatenate[BlockingRunner, P], T]:
    """The blocking `Client` method of the operation `build`."""

    def method(self: BlockingRunner, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(build(*args, **kwargs))

    return _like(method, build)


def blocking_via(
    build: Callable[P, Request[T]], via: Callable[[Any, Request[T]], T]
) -> Callable[Concatenate[BlockingRunner, P], T]:
    """A blocking `Client` method whose request the client sends with `via`: one it must
    remember to restore the session on a new connection (`join`), or forget (`leave`)."""

    def method(self: BlockingRunner, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return via(self, build(*args, **kwargs))

    return _like(method, build)


def _like(method: M, build: Callable[..., Any]) -> M:
    """`method` with the name, docstring and signature of `build`, for help() and tools that
    read signatures at run time: `self` first, publish options spelled out, and the value the
    call gives as its result (not the request that `build` returns)."""
    method.__name__ = method.__qualname__ = build.__name__
    method.__doc__ = build.__doc__
    method.__module__ = build.__module__
    hints = get_type_hints(build)
    (result,) = get_args(hints.pop("return"))
    own = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    parameters = [own]
    for p in inspect.signature(build).parameters.values():
        hint = hints.get(p.name)
        if p.kind is p.VAR_KEYWORD and get_origin(hint) is Unpack:
            (options,) = get_args(hint)  # a TypedDict: each of its keys is a keyword
            parameters += [inspect.Parameter(name, p.KEYWORD_ONLY, default=None, annotation=kind)
                           for name, kind in get_type_hints(options).items()]
        else:
            parameters.append(p.replace(annotation=hint or p.annotation))
    method.__signature__ = inspect.Signature(parameters, return_annotation=result)  # type: ignore[attr-defined]
    return method
