"""``python -m fst.batch ARGS`` (and ``accelerate launch -m fst.batch ARGS``) = ``fst batch ARGS``."""
from __future__ import annotations

import sys
from typing import Sequence

from fst.cli import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fst batch`` with ``argv`` (default: the command line); the options of ``fst``
    itself (``-v``, ``--debug``) may come anywhere."""
    argv = list(sys.argv[1:] if argv is None else argv)
    general = [arg for arg in argv if arg in ("-v", "--verbose", "--debug")]
    return cli_main([*general, "batch", *[arg for arg in argv if arg not in general]])


if __name__ == "__main__":
    sys.exit(main())
