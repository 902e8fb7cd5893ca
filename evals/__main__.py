"""``python -m evals SUITE``: the ``rag eval`` command without the rest of the CLI."""

from evals.cli import main

main()
