"""Durable segment log for the archive sink: framed records, fsync, sealing, recovery."""

from stacktrail.spool.segment import Segment, SegmentSpec
from stacktrail.spool.spool import RecoveryReport, Spool, SpoolLockedError

__all__ = ["RecoveryReport", "Segment", "SegmentSpec", "Spool", "SpoolLockedError"]
