"""The ``rag`` command line: ``main`` holds the app and the index verbs, each feature module its own command."""

from rag.cli.main import app

__all__ = ["app"]
