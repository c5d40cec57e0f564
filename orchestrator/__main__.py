"""`python -m orchestrator` is the `scaling` command."""

import sys

from orchestrator.cli import main

sys.exit(main())
