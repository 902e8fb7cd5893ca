"""Where things live by default, read from the environment: the only configuration state we keep."""

from __future__ import annotations

import os
from pathlib import Path

INDEX_ENV = "RAG_INDEX"
"""Environment variable naming the default index folder."""


def default_index_dir() -> Path:
    """The index used when no ``--index`` is given: ``$RAG_INDEX``, else a per-user data folder.

    >>> os.environ["RAG_INDEX"] = "/tmp/my-index"; str(default_index_dir())
    '/tmp/my-index'
    >>> del os.environ["RAG_INDEX"]
    """
    configured = os.environ.get(INDEX_ENV)
    if configured:
        return Path(configured).expanduser()
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "rag-assistant" / "default"
