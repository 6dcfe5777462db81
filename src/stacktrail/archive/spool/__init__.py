"""Durable segment log for the archive sink: framed records, fsync, sealing, recovery."""

from stacktrail.archive.spool.seen import SeenIds
from stacktrail.archive.spool.segment import Segment, SegmentSpec
from stacktrail.archive.spool.spool import RecoveryReport, Spool, SpoolLockedError

__all__ = ["RecoveryReport", "SeenIds", "Segment", "SegmentSpec", "Spool", "SpoolLockedError"]
