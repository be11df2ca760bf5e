"""``python -m churnwire`` runs the CLI."""

from churnwire.cli import main

raise SystemExit(main())
