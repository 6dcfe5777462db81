"""Final outcome wins: of events sharing a CADF id (keystonemiddleware's request, outcome
`pending`, and its response), search ends with the final one in any arrival order and
under any number of replays, in both layouts (osmem-server has no data streams: the
shared layout is a plain index of the shared name, written with the same `create`-only
path a data stream takes)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from stacktrail.config import SearchLayoutKind, Settings
from stacktrail.domain.delivery import Outcome
from stacktrail.domain.event import AuditEvent
from stacktrail.ingest.decode import decode_message
from stacktrail.search.client import SearchClient
from stacktrail.search.documents import BulkEncoder, SearchLayout
from stacktrail.search.sink import SearchSink
from tests.support.cadf_factory import make_cadf, wrap_v2
from tests.support.sinks import Acks, make_trail

WHEN = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
# the orders and replays: P = the request (pending), F = the response (final)
SEQUENCES = [
    "".join(p) for n in (2, 3) for p in set(itertools.permutations("PF" + "PF"[: n - 2]))
] + ["PPFF", "FFPP", "PFPF", "FPFP"]


def pair(project: str, event_id: str, outcome: str) -> AuditEvent:
    cadf = make_cadf(
        event_id=event_id,
        event_time=WHEN,
        initiator_project=project,
        outcome=outcome,
        action="update/server",
    )
    if outcome == "pending":
        cadf.pop("reason")
    else:
        cadf["reason"] = {"reasonCode": "404", "reasonType": "HTTP"}
    notification = {
        "event_type": f"audit.http.{'request' if outcome == 'pending' else 'response'}",
        "payload": cadf,
    }
    return decode_message(orjson.dumps(wrap_v2(notification)))


@pytest.mark.parametrize("layout", ["per-project", "shared"])
@pytest.mark.parametrize("batched", [True, False], ids=["one-bulk", "bulk-each"])
async def test_search_ends_with_the_final_outcome(
    search_url: str, index_template: str, layout: str, batched: bool
) -> None:
    project = uuid.uuid4().hex
    settings = Settings(
        search_url=search_url,
        search_index_template=index_template,
        search_layout=SearchLayoutKind(layout),
        search_shared_index=f"{index_template.split('-', 1)[0]}-hermes",
        search_data_stream=False,  # osmem has no data streams
        search_flush_interval=timedelta(milliseconds=20),
        search_bulk_docs=1000 if batched else 1,
    )
    search_layout = SearchLayout.from_settings(settings)
    ids = {seq: str(uuid.uuid4()) for seq in SEQUENCES}
    sink = SearchSink(SearchClient.from_settings(settings), settings)
    await sink.start()
    acks = Acks()
    trail = make_trail(project, "c")
    try:
        for step in range(max(len(s) for s in SEQUENCES)):
            for seq in SEQUENCES:
                if step < len(seq):
                    outcome = "pending" if seq[step] == "P" else "failure"
                    event = pair(project, ids[seq], outcome)
                    record = acks.record(trail, event)
                    record.ticket = type(record.ticket)(f"{seq}/{step}", acks._done)
                    record.ticket.add()
                    record.ticket.seal()
                    await sink.put(record)
            if not batched:
                await acks.wait(sum(min(step + 1, len(s)) for s in SEQUENCES))
        await sink.stop(30)
        await acks.wait(sum(len(s) for s in SEQUENCES))
        assert set(acks.outcomes.values()) == {Outcome.DELIVERED}, acks.reasons
        index = BulkEncoder(search_layout).index(acks.record(trail, pair(project, "x", "pending")))
        async with httpx.AsyncClient(base_url=search_url, timeout=60) as http:
            await http.post(f"/{index}/_refresh")
            for seq, event_id in ids.items():
                response = await http.get(f"/{index}/_doc/{event_id}")
                assert response.status_code == 200, seq
                doc = response.json()["_source"]
                assert (seq, doc["outcome"], doc["reason"]["reasonCode"]) == (seq, "failure", "404")
            count = await http.post(
                f"/{index}/_count", json={"query": {"terms": {"id": list(ids.values())}}}
            )
            assert count.json()["count"] == len(ids)  # one document per CADF id
    finally:
        async with httpx.AsyncClient(base_url=search_url, timeout=60) as http:
            await http.delete(f"/{search_layout.pattern}")
            await http.delete(f"/_index_template/{search_layout.template_name}")
