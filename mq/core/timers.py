"""The timers of one queue: when its leases end, when its delayed messages become ready, and
which message is the oldest (retention removes messages by age).

Two clocks: lease deadlines are on the broker's monotonic clock, so a step of the wall clock
can neither end a lease early nor stretch it; delays and ages are on the wall clock (Unix s),
which is what clients name them in and what the log keeps.

All three are lazy: an entry whose message has since been acked, removed, moved, touched or
leased again stays where it is and is dropped when it reaches the front, found stale by
comparing it with the message itself. Fronts are cleaned when they are looked at, and a
structure whose stale entries come to outnumber its live ones is rebuilt, so neither the cost
of finding the front nor the memory grows with the messages that went through the queue.

Age order costs a deque of ids: messages arrive in id order, and ids are given in publish
order. Only a message moved in from another queue (a dead letter, a redrive) can be older than
the newest one here; those few go to a heap by publish time instead.
"""

from __future__ import annotations

import heapq
from collections import deque

from mq.core.model import Message, State

STALE_SLACK = 1_024  # stale entries tolerated beyond twice the live ones before a rebuild


class Timers:
    def __init__(self, messages: dict[int, Message]) -> None:
        self._messages = messages  # the queue's live messages, by id (shared, not copied)
        self._leases: list[tuple[float, int, int]] = []  # heap of (deadline, id, delivery)
        self._delays: list[tuple[float, int]] = []  # heap of (ready_at, id)
        self._order: deque[int] = deque()  # ids, oldest first
        self._moved_in: list[tuple[float, int]] = []  # heap of (published_at, id)

    # --- recording ----------------------------------------------------------------------------

    def added(self, msg: Message) -> None:
        """`msg` joined the queue (published, restored or moved in)."""
        order = self._order
        if not order or msg.id > order[-1]:
            order.append(msg.id)
        else:
            heapq.heappush(self._moved_in, (msg.published_at, msg.id))
            if len(self._moved_in) > 2 * len(self._messages) + STALE_SLACK:
                self._moved_in = [e for e in self._moved_in if e[1] in self._messages]
                heapq.heapify(self._moved_in)

    def removed(self, msg_id: int) -> None:
        """A message left the queue. Consumption is mostly oldest first: drop what it uncovers."""
        order, messages = self._order, self._messages
        if order and order[0] == msg_id:
            while order and order[0] not in messages:
                order.popleft()
        elif len(order) > 2 * len(messages) + STALE_SLACK:
            self._order = deque(i for i in order if i in messages)
        leases = self._leases
        while leases and leases[0][1] not in messages:  # its own lease, most often
            heapq.heappop(leases)

    def leased(self, msg: Message, deadline: float, leased_now: int) -> None:
        """`msg`'s lease (delivery `msg.deliveries`) now ends at `deadline`; `leased_now`: how
        many leases the queue holds."""
        msg.deadline = deadline
        heapq.heappush(self._leases, (deadline, msg.id, msg.deliveries))
        if len(self._leases) > 2 * leased_now + STALE_SLACK:
            self._leases = [e for e in self._leases if self._lease_holds(e)]
            heapq.heapify(self._leases)

    def delayed(self, msg: Message, delayed_now: int) -> None:
        """`msg` waits until `msg.ready_at`; `delayed_now`: how many wait in the queue."""
        heapq.heappush(self._delays, (msg.ready_at, msg.id))
        if len(self._delays) > 2 * delayed_now + STALE_SLACK:
            self._delays = [e for e in self._delays if self._delay_holds(e)]
            heapq.heapify(self._delays)

    # --- what is due --------------------------------------------------------------------------

    def next_wall_due(self, retention_s: float) -> float | None:
        """The earlier of a delay ending and the oldest message reaching `retention_s`, on the
        wall clock; None when there is neither."""
        due = self.next_delay_end() if self._delays else None
        oldest = self.oldest()
        if oldest is not None:
            retained = oldest.published_at + retention_s
            if due is None or retained < due:
                due = retained
        return due

    def expired_leases(self, now: float) -> list[Message]:
        """The leased messages whose lease ended at `now` (monotonic s) or before, earliest
        first."""
        out = []
        leases = self._leases
        while leases and leases[0][0] <= now:
            entry = heapq.heappop(leases)
            if self._lease_holds(entry):
                out.append(self._messages[entry[1]])
        return out

    def ended_delays(self, now: float) -> list[Message]:
        """The delayed messages whose delay ended at `now` or before, earliest first."""
        out = []
        delays = self._delays
        while delays and delays[0][0] <= now:
            entry = heapq.heappop(delays)
            if self._delay_holds(entry):
                out.append(self._messages[entry[1]])
        return out

    def oldest(self) -> Message | None:
        """The message published first of those in the queue."""
        order, messages = self._order, self._messages
        while order and order[0] not in messages:
            order.popleft()
        moved_in = self._moved_in
        while moved_in and moved_in[0][1] not in messages:
            heapq.heappop(moved_in)
        first = messages[order[0]] if order else None
        if moved_in and (first is None or moved_in[0][0] < first.published_at):
            return messages[moved_in[0][1]]
        return first

    def next_lease_end(self) -> float | None:
        """When the first lease ends (monotonic s); None without leases."""
        leases, messages = self._leases, self._messages
        while leases:  # _lease_holds, inlined: this runs for every next_due_in
            deadline, msg_id, delivery = leases[0]
            msg = messages.get(msg_id)
            if (msg is not None and msg.state is State.LEASED and msg.deliveries == delivery
                    and msg.deadline == deadline):
                return deadline
            heapq.heappop(leases)
        return None

    def next_delay_end(self) -> float | None:
        delays = self._delays
        while delays:
            if self._delay_holds(delays[0]):
                return delays[0][0]
            heapq.heappop(delays)
        return None

    def _lease_holds(self, entry: tuple[float, int, int]) -> bool:
        deadline, msg_id, delivery = entry
        msg = self._messages.get(msg_id)
        return (msg is not None and msg.state is State.LEASED and msg.deliveries == delivery
                and msg.deadline == deadline)

    def _delay_holds(self, entry: tuple[float, int]) -> bool:
        msg = self._messages.get(entry[1])
        return msg is not None and msg.state is State.DELAYED and msg.ready_at == entry[0]
