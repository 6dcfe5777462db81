"""`python -m stacktrail.cli`."""

import sys

from stacktrail.cli.main import main

main()
sys.exit(0)
