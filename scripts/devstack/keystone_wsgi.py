"""WSGI entry point gunicorn serves for the dev stack's Keystone.

Keystone parses sys.argv with oslo.config when it initialises; gunicorn's own
command line must not reach it. The configuration file comes from
OS_KEYSTONE_CONFIG_FILES, set by scripts/dev-stack.
"""

import sys

sys.argv = sys.argv[:1]

from keystone.wsgi.api import application  # noqa: E402

__all__ = ["application"]
