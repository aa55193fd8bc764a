"""``python -m aelab`` (and ``torchrun -m aelab``) runs the CLI."""

from aelab.cli import main

raise SystemExit(main())
