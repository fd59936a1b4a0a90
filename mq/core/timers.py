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

Lease ends cost a deque too: a queue's leases mostly last its lease_s, so each ends no earlier
than the one before, and is appended to `_lease_line` (acks, mostly oldest first, drop them from
its front in O(1) where a heap would pay a log(n) pop each); only a lease that ends before the
last one in line (a shorter lease_s, a touch) goes to the `_leases` heap. The first lease end
is the earlier of the two fronts.

Age order costs a deque of ids: messages arrive in id order, and ids are given in publish
order. Only a message moved in from another queue (a dead letter, a redrive), or one taken out of
the queue's backlog of plain messages (backlog.py) while newer ones are here, can be older than
the newest one here; those go to the front when they are the oldest, else to a heap by publish
time. The age order is also how
the queue's messages are walked (`live`): the broker keeps one table of every message, not one
per queue, so an entry counts only while its message is still in this queue.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator

from mq.core.model import Message, State

STALE_SLACK = 1_024  # stale entries tolerated beyond twice the live ones before a rebuild


class Timers:
    def __init__(self, queue: str, messages: dict[int, Message]) -> None:
        self._queue = queue
        self._messages = messages  # the broker's live messages of every queue (shared)
        self._lease_line: deque[tuple[float, int, int]] = deque()  # (deadline, id, delivery),
        # in deadline order
        self._leases: list[tuple[float, int, int]] = []  # heap of the same: the out-of-line ones
        self._delays: list[tuple[float, int]] = []  # heap of (ready_at, id)
        self._order: deque[int] = deque()  # ids, oldest first
        self._moved_in: list[tuple[float, int]] = []  # heap of (published_at, id)

    # --- recording ----------------------------------------------------------------------------

    def _here(self, msg_id: int) -> bool:
        msg = self._messages.get(msg_id)
        return msg is not None and msg.queue == self._queue

    def added(self, msg: Message, messages_now: int) -> None:
        """`msg` joined the queue (published or moved in); `messages_now`: how many it holds."""
        order = self._order
        if not order or msg.id > order[-1]:
            order.append(msg.id)
        elif msg.id < order[0]:  # the first of a queue's backlog (queue.py), say
            order.appendleft(msg.id)
        else:
            heapq.heappush(self._moved_in, (msg.published_at, msg.id))
            if len(self._moved_in) > 2 * messages_now + STALE_SLACK:
                self._moved_in = [e for e in self._moved_in if self._here(e[1])]
                heapq.heapify(self._moved_in)

    def loaded(self, ids: list[int], delays: list[tuple[float, int]]) -> None:
        """The queue's messages at a restart (their `ids` ascending, the delayed ones'
        (ready_at, id)), into empty timers: a restart voids every lease."""
        self._order.extend(ids)
        self._delays = delays
        heapq.heapify(delays)

    def removed(self, msg_id: int, messages_now: int) -> None:
        """A message left the queue. Consumption is mostly oldest first: drop what it uncovers."""
        order = self._order
        if order and order[0] == msg_id:
            messages, queue = self._messages, self._queue
            while order:  # _here, inlined: this runs for every message that goes
                msg = messages.get(order[0])
                if msg is not None and msg.queue == queue:
                    break
                order.popleft()
        elif len(order) > 2 * messages_now + STALE_SLACK:
            self._order = deque(i for i in order if self._here(i))
        messages = self._messages
        line = self._lease_line
        while line and line[0][1] not in messages:  # its own lease, most often
            line.popleft()
        leases = self._leases
        while leases and leases[0][1] not in messages:
            heapq.heappop(leases)

    def leased(self, msg: Message, deadline: float, leased_now: int) -> None:
        """`msg`'s lease (delivery `msg.deliveries`) now ends at `deadline`; `leased_now`: how
        many leases the queue holds."""
        msg.until = deadline
        line = self._lease_line
        if not line or deadline >= line[-1][0]:
            line.append((deadline, msg.id, msg.deliveries))
        else:
            heapq.heappush(self._leases, (deadline, msg.id, msg.deliveries))
        if len(line) + len(self._leases) > 2 * leased_now + STALE_SLACK:
            self._lease_line = deque(e for e in line if self._lease_holds(e))
            self._leases = [e for e in self._leases if self._lease_holds(e)]
            heapq.heapify(self._leases)

    def delayed(self, msg: Message, delayed_now: int) -> None:
        """`msg` waits until `msg.ready_at`; `delayed_now`: how many wait in the queue."""
        heapq.heappush(self._delays, (msg.until, msg.id))
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
        out: list[Message] = []
        line, leases = self._lease_line, self._leases
        while True:
            if line and line[0][0] <= now and (not leases or line[0] <= leases[0]):
                entry = line.popleft()
            elif leases and leases[0][0] <= now:
                entry = heapq.heappop(leases)
            else:
                return out
            if self._lease_holds(entry):
                out.append(self._messages[entry[1]])

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
        while order and not self._here(order[0]):
            order.popleft()
        moved_in = self._moved_in
        while moved_in and not self._here(moved_in[0][1]):
            heapq.heappop(moved_in)
        first = messages[order[0]] if order else None
        if moved_in and (first is None or moved_in[0][0] < first.published_at):
            return messages[moved_in[0][1]]
        return first

    def live(self) -> Iterator[Message]:
        """Every message in the queue, each once: those in id order, then those moved in. The
        queue must not change while this runs (take a list first to change it)."""
        messages = self._messages
        moved_in = {msg_id for _, msg_id in self._moved_in if self._here(msg_id)}
        for msg_id in self._order:  # a message moved out and back in is also in moved_in
            if msg_id not in moved_in and self._here(msg_id):
                yield messages[msg_id]
        for msg_id in sorted(moved_in):
            yield messages[msg_id]

    def next_lease_end(self) -> float | None:
        """When the first lease ends (monotonic s); None without leases."""
        line, leases = self._lease_line, self._leases
        while line and not self._lease_holds(line[0]):
            line.popleft()
        while leases and not self._lease_holds(leases[0]):
            heapq.heappop(leases)
        if line and leases:
            return min(line[0][0], leases[0][0])
        if line:
            return line[0][0]
        return leases[0][0] if leases else None

    def next_delay_end(self) -> float | None:
        delays = self._delays
        while delays:
            if self._delay_holds(delays[0]):
                return delays[0][0]
            heapq.heappop(delays)
        return None

    def _lease_holds(self, entry: tuple[float, int, int]) -> bool:
        # (id, delivery) names one lease: a message moved since cannot match, in any queue.
        deadline, msg_id, delivery = entry
        msg = self._messages.get(msg_id)
        return (msg is not None and msg.state is State.LEASED and msg.deliveries == delivery
                and msg.until == deadline)

    def _delay_holds(self, entry: tuple[float, int]) -> bool:
        msg = self._messages.get(entry[1])
        return msg is not None and msg.state is State.DELAYED and msg.until == entry[0]
