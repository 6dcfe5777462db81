"""Exponential backoff shared by the sinks (one place for the retry schedule)."""

from __future__ import annotations

import random


class Backoff:
    """0.5 s, 1 s, 2 s ... up to `cap`, with jitter so retries of many batches spread out."""

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self._first = first
        self._cap = cap
        self._next = first

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._cap)
        return delay * random.uniform(0.8, 1.2)

    def reset(self) -> None:
        self._next = self._first
