"""Which delivery tags can be acked, and how cheaply (pure logic).

Messages finish out of order (a small message may be indexed before a large one). Tags
on one channel are consecutive, so the longest finished prefix is acked with one
`basic.ack(multiple=True)` frame instead of one frame per message.
"""

from __future__ import annotations

import heapq


class AckTracker:
    def __init__(self) -> None:
        self._acked_upto = 0  # every tag <= this has been acked
        self._done: list[int] = []  # finished tags above the prefix (min-heap)
        self._done_set: set[int] = set()

    @property
    def acked_upto(self) -> int:
        return self._acked_upto

    def done(self, tag: int) -> None:
        if tag <= self._acked_upto or tag in self._done_set:
            raise ValueError(f"delivery tag {tag} finished twice")
        heapq.heappush(self._done, tag)
        self._done_set.add(tag)

    def take_prefix(self) -> int | None:
        """The highest tag to ack with multiple=True, or None when the prefix did not grow."""
        upto = self._acked_upto
        while self._done and self._done[0] == upto + 1:
            upto = heapq.heappop(self._done)
            self._done_set.discard(upto)
        if upto == self._acked_upto:
            return None
        self._acked_upto = upto
        return upto

    def take_rest(self) -> list[int]:
        """Finished tags beyond a gap (a message left unfinished); acked one by one."""
        rest = sorted(self._done)
        self._done.clear()
        self._done_set.clear()
        return rest
