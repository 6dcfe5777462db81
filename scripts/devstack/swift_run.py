"""Run a Swift console command with the dev stack's swift_dir.

    swift_run.py SWIFT_DIR COMMAND [ARGS...]

COMMAND is a console script of the swift package (swift-proxy-server,
swift-object-expirer, ...). Swift reads the hash path prefix/suffix and the
storage policies from /etc/swift/swift.conf unless set_swift_dir() is called
before the server or daemon starts; the WSGI servers do that for a
`swift_dir` in their config, the daemons (updaters, expirer) never do. This
wrapper makes every process of the dev stack read SWIFT_DIR/swift.conf.
"""

import os
import sys
from importlib.metadata import entry_points


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    swift_dir, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if not os.path.isfile(os.path.join(swift_dir, "swift.conf")):
        print(f"no swift.conf in {swift_dir}", file=sys.stderr)
        return 2

    from swift.common import storage_policy, utils

    utils.set_swift_dir(swift_dir)  # validates the [swift-hash] section there
    storage_policy.reload_storage_policies()

    matches = [ep for ep in entry_points(group="console_scripts") if ep.name == command]
    if not matches:
        print(f"unknown swift command {command!r}", file=sys.stderr)
        return 2
    sys.argv = [command, *args]
    return matches[0].load()() or 0


if __name__ == "__main__":
    sys.exit(main())
