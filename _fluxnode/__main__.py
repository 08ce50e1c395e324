"""`python -m fluxnode` is the same as the `flux-node` command."""

from fluxnode.node.cli import main

raise SystemExit(main())
