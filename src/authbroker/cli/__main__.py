"""``python -m authbroker.cli``: the ``authbroker`` command without the console script."""

import sys

from . import main

sys.exit(main())
