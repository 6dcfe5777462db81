"""Initialise the dev stack's Keystone in one process.

    keystone_init.py CONFIG_FILE UNIX_USER UNIX_GROUP [BOOTSTRAP_ARGS...]

Does what `keystone-manage db_sync`, `fernet_setup`, `credential_setup` and
`bootstrap BOOTSTRAP_ARGS` do one after the other, but imports keystone once:
the import costs several times more than the work. Every step is idempotent.
scripts/dev-stack falls back to separate keystone-manage runs if this fails.
"""

import sys
import warnings


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    config_file, user, group = sys.argv[1:4]
    bootstrap_args = sys.argv[4:]
    warnings.simplefilter("ignore", DeprecationWarning)

    from keystone.cmd import cli

    owner = ["--keystone-user", user, "--keystone-group", group]
    steps = [
        ["db_sync"],
        ["fernet_setup", *owner],
        ["credential_setup", *owner],
        ["bootstrap", *bootstrap_args],
    ]
    for step in steps:
        cli.CONF.clear()  # each run parses its own command line
        try:
            cli.main(argv=["keystone-manage", "--config-file", config_file, *step])
        except SystemExit as exc:
            if exc.code not in (None, 0):
                print(f"keystone-manage {step[0]} exited with {exc.code}", file=sys.stderr)
                return 1
        print(f"keystone-manage {step[0]}: done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
