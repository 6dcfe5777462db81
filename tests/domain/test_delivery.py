"""Tickets: a held record is released once every other record of its message resolved."""

from __future__ import annotations

from stacktrail.domain.delivery import Outcome, Ticket


def _ticket(done: list[Ticket]) -> Ticket:
    return Ticket("tag", done.append)


def test_held_record_is_released_after_the_others_and_the_seal() -> None:
    done: list[Ticket] = []
    released: list[str] = []
    ticket = _ticket(done)
    ticket.add(3)  # search, archive (held), search of a second project
    ticket.hold(lambda: released.append("archive"))
    assert released == []
    ticket.resolve(Outcome.DELIVERED)
    ticket.resolve(Outcome.DELIVERED)
    assert released == []  # not sealed: more records may come
    ticket.seal()
    assert released == ["archive"]
    assert done == []  # the held record is still pending
    ticket.resolve(Outcome.DELIVERED)
    assert done == [ticket]
    assert ticket.outcome is Outcome.DELIVERED


def test_only_held_records_are_released_at_the_seal() -> None:
    done: list[Ticket] = []
    released: list[int] = []
    ticket = _ticket(done)
    ticket.add(2)
    ticket.hold(lambda: released.append(1))
    ticket.hold(lambda: released.append(2))
    ticket.seal()
    assert released == [1, 2]
    ticket.resolve(Outcome.DELIVERED)
    ticket.resolve(Outcome.DELIVERED)
    assert done == [ticket]


def test_a_release_that_resolves_at_once_finishes_the_ticket_once() -> None:
    done: list[Ticket] = []
    ticket = _ticket(done)
    ticket.add(2)
    ticket.hold(lambda: ticket.resolve(Outcome.RETRY, "stopping"))
    ticket.seal()
    assert done == []
    ticket.resolve(Outcome.REJECTED, "refused")  # the other sink: releases, which resolves
    assert done == [ticket]
    assert ticket.outcome is Outcome.REJECTED

    sealed_last: list[Ticket] = []
    other = _ticket(sealed_last)
    other.add()
    other.hold(lambda: other.resolve(Outcome.DELIVERED))
    other.seal()
    assert sealed_last == [other]
