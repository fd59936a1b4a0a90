"""What awaits compaction (finished.py): finished ids come out oldest first, never before their
time, within BUCKET_S after it, and no more at once than asked."""

from __future__ import annotations

from mq.storage.finished import BUCKET_S, Finished

T0 = 1_800_000_000.0


def test_finished_ids_come_out_at_their_time_oldest_first_in_chunks() -> None:
    finished = Finished()
    finished.add(T0, [1, 2])
    finished.add(T0 + 0.5, [3])  # shares the first bucket, which now ends at T0 + 0.5
    finished.add(T0 + BUCKET_S, [4, 5, 6])
    assert (len(finished), finished.next_due()) == (6, T0 + 0.5)
    assert finished.take(T0 + 0.4, 10) == []  # 3 is not due yet, and 1, 2 wait with it
    assert finished.take(T0 + 0.5, 2) == [1, 2]
    assert finished.take(T0 + 0.5, 10) == [3]
    assert finished.next_due() == T0 + BUCKET_S
    assert finished.take(T0 + 100, 2) == [4, 5]
    assert len(finished) == 1
    assert finished.take(T0 + 100, 2) == [6]
    assert (len(finished), finished.next_due()) == (0, None)
    finished.add(T0 + 200, range(7, 10_007))
    assert finished.take(T0 + 200, 20_000) == list(range(7, 10_007))
