"""``python -m fst ...`` is the ``fst`` command."""
import sys

from .cli import main

sys.exit(main())
