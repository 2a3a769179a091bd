"""``python -m mobilebone`` behaves like the ``mobilebone`` command (so torchrun can run it)."""

import sys

from mobilebone.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
