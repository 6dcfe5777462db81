"""The cycle collector tuned for a stream of short-lived events.

Every event is a tree of a few dozen dicts and lists that lives until its bulk request
and its ack are done, long enough to survive the youngest generation. With CPython's
default (a collection per 700 allocations) the collector traversed the events in flight
and, in full collections, every object of the loaded application, again and again: a
quarter of the pipeline's CPU time per event. Freezing what start-up built takes it out
of every collection; a larger youngest generation makes the collections rare. Events are
freed by reference counting as soon as they are acked; the collector only finds cycles.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def tuned_collector(threshold: int) -> Iterator[None]:
    """While inside: the objects built before are frozen, the youngest generation is
    collected every `threshold` allocations. Afterwards as before (0: no change)."""
    if threshold <= 0:
        yield
        return
    before = gc.get_threshold()
    gc.collect()  # what start-up left as garbage is freed, not frozen
    gc.freeze()
    gc.set_threshold(threshold, before[1], before[2])
    log.debug("cycle collector: %d objects frozen, threshold %d", gc.get_freeze_count(), threshold)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()  # collectable again once the pipeline is gone
