"""``python -m verigrad.cli ...``: the ``verigrad`` command without the console script on PATH."""

from verigrad.cli import main

raise SystemExit(main())
