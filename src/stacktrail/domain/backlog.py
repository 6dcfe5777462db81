"""What a project's archive holds back in the delivering process's spool."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SpoolBacklog:
    """A project's spooled records that wait for delivery.

    `held_back`: its deliveries fail and it holds its whole share, so its new events are
    dead-lettered (with the reason) until deliveries work again; the spool keeps what it
    holds, and the other projects are not held up.
    """

    bytes: int  # spooled and queued, as their segment files hold them
    records: int  # of the spooled segments whose count is known
    oldest: datetime | None  # when the oldest of them was spooled
    share: int  # bytes the project may hold while its deliveries fail
    failing: bool  # a delivery failed and none succeeded since
    held_back: bool
