"""Fan-out: which queues are bound to which topic. A publish to a topic makes one copy per
bound queue, each consumed and acked on its own."""

from __future__ import annotations


class Topics:
    def __init__(self) -> None:
        self._bindings: dict[str, set[str]] = {}

    def bind(self, topic: str, queue: str) -> bool:
        """True if the binding is new."""
        queues = self._bindings.setdefault(topic, set())
        if queue in queues:
            return False
        queues.add(queue)
        return True

    def unbind(self, topic: str, queue: str) -> bool:
        """True if there was such a binding."""
        queues = self._bindings.get(topic)
        if queues is None or queue not in queues:
            return False
        queues.discard(queue)
        if not queues:
            del self._bindings[topic]
        return True

    def queues_of(self, topic: str) -> list[str]:
        return sorted(self._bindings.get(topic, ()))

    def bindings(self, topic: str | None = None) -> dict[str, list[str]]:
        names = [topic] if topic is not None else sorted(self._bindings)
        return {t: self.queues_of(t) for t in names if t in self._bindings}

    def forget_queue(self, queue: str) -> list[str]:
        """Unbind `queue` everywhere; returns the topics it was bound to."""
        topics = [t for t, qs in self._bindings.items() if queue in qs]
        for t in topics:
            self.unbind(t, queue)
        return topics
