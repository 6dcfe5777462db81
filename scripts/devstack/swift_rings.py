"""Build the dev stack's Swift rings: one device, one replica, 2^8 partitions.

    swift_rings.py SWIFT_DIR account=PORT container=PORT object=PORT

Writes <name>.builder and <name>.ring.gz into SWIFT_DIR for every ring that
is missing there (existing rings are left alone).
"""

import os
import sys

from swift.common.ring import RingBuilder

PART_POWER = 8
REPLICAS = 1
MIN_PART_HOURS = 1
DEVICE = "d1"


def build(swift_dir: str, name: str, port: int) -> None:
    ring_path = os.path.join(swift_dir, f"{name}.ring.gz")
    if os.path.exists(ring_path):
        return
    builder = RingBuilder(PART_POWER, REPLICAS, MIN_PART_HOURS)
    builder.add_dev(
        {
            "region": 1,
            "zone": 1,
            "weight": 100.0,
            "ip": "127.0.0.1",
            "port": port,
            "replication_ip": "127.0.0.1",
            "replication_port": port,
            "device": DEVICE,
            "meta": "",
        }
    )
    builder.rebalance()
    builder.save(os.path.join(swift_dir, f"{name}.builder"))
    builder.get_ring().save(ring_path)


def main() -> int:
    swift_dir = sys.argv[1]
    for spec in sys.argv[2:]:
        name, port = spec.split("=", 1)
        build(swift_dir, name, int(port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
