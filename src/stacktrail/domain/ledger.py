"""The delivery ledger: what was delivered where, and each project's last success/error.

The archive uploader writes it; the status API and UI read it. The SQL implementation
lives with the config store; `MemoryLedger` serves runs without a database and unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class DeliveredObject:
    project_id: str
    region: str
    container: str
    key: str
    day: str  # YYYY-MM-DD, UTC day of the events inside
    records: int
    bytes: int
    sha256: str  # of the uncompressed body
    delivered_at: datetime
    # For the signed digests: what the store holds and the events' time span.
    object_sha256: str = ""  # of the stored (gzip) bytes
    first_event_time: str = ""
    last_event_time: str = ""


@dataclass(frozen=True, slots=True)
class DeliveryError:
    project_id: str
    region: str
    message: str
    at: datetime


class DeliveryLedger(Protocol):
    async def record_delivery(self, obj: DeliveredObject) -> None: ...

    async def record_error(self, error: DeliveryError) -> None: ...


class MemoryLedger:
    def __init__(self) -> None:
        self.deliveries: list[DeliveredObject] = []
        self.errors: list[DeliveryError] = []

    async def record_delivery(self, obj: DeliveredObject) -> None:
        self.deliveries.append(obj)

    async def record_error(self, error: DeliveryError) -> None:
        self.errors.append(error)
