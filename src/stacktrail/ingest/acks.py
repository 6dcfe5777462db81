"""Which delivery tags can be acked, and how cheaply (pure logic).

Messages finish out of order (a small message may be indexed before a large one, a batch
in retry holds a few old ones). Tags on one channel are consecutive, so the longest
finished prefix is acked with one `basic.ack(multiple=True)` frame; finished tags beyond
a gap are acked one by one (`take_rest`; the source decides when, see
`AmqpSource._beyond_gap_now`), so a message that waits never holds the ones after it
unacked (a full prefetch window would stop the broker delivering).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class AckRound:
    """What to ack now: `upto` with multiple=True (None: no such frame), then each single.

    `count` is how many messages the round settles (for the acked metric)."""

    upto: int | None = None
    singles: list[int] = field(default_factory=list)
    count: int = 0


class AckTracker:
    def __init__(self) -> None:
        self._acked_upto = 0  # every tag <= this has been acked
        self._done: set[int] = set()  # finished, not yet acked tags above the prefix
        self._singles: set[int] = set()  # acked one by one above the prefix

    @property
    def acked_upto(self) -> int:
        return self._acked_upto

    def acked(self, tag: int) -> bool:
        return tag <= self._acked_upto or tag in self._singles

    def done(self, tag: int) -> None:
        done = self._done
        if tag <= self._acked_upto or tag in done or tag in self._singles:
            raise ValueError(f"delivery tag {tag} finished twice")
        done.add(tag)

    def _advance(self) -> tuple[int | None, int]:
        """Move the prefix over finished and singly acked tags.

        Returns the tag for the multiple=True frame and how many tags it settles. The
        frame names the highest *unacked* finished tag of the run: RabbitMQ refuses a
        multiple ack whose own tag it no longer knows (precondition failed)."""
        upto = self._acked_upto
        frame: int | None = None
        count = 0
        done, singles = self._done, self._singles
        while True:
            if upto + 1 in done:  # tags finish mostly in order: one set lookup per tag
                upto = frame = upto + 1
                done.remove(upto)
                count += 1
            elif upto + 1 in singles:
                upto += 1
                singles.remove(upto)
            else:
                break
        self._acked_upto = upto
        return frame, count

    @property
    def waiting(self) -> int:
        """Finished tags not acked because an older one is unfinished (beyond a gap)."""
        return len(self._done)

    def take_prefix_round(self) -> AckRound:
        """Only the prefix, as one frame: the tags beyond a gap stay for a later round."""
        upto, count = self._advance()
        return AckRound(upto=upto, count=count)

    def take_prefix(self) -> int | None:
        """The tag to ack with multiple=True, or None when no finished tag joined the prefix."""
        return self._advance()[0]

    def take_rest(self) -> list[int]:
        """Finished tags beyond a gap (a message left unfinished); acked one by one."""
        if not self._done:
            return []
        rest = sorted(self._done)
        self._done.clear()
        self._singles.update(rest)
        return rest

    def take_round(self) -> AckRound:
        """Everything finished: the prefix as one frame, the tags beyond a gap singly."""
        upto, count = self._advance()
        singles = self.take_rest()
        return AckRound(upto=upto, singles=singles, count=count + len(singles))
