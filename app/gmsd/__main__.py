"""`python -m gmsd`: the `gmsd` command."""

import sys

from gmsd.cli import main

sys.exit(main())
