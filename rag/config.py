"""Where things live by default, read from the environment: the only configuration state we keep."""

from __future__ import annotations

import os
from pathlib import Path

INDEX_ENV = "RAG_INDEX"
"""Environment variable naming the default index (a folder or a Milvus URI)."""
INDEX_HELP = (
    "Index folder, or a Milvus index: milvus:///abs/path/file.db (Milvus Lite), milvus://host:19530/collection "
    f"or https://host/collection (token in $RAG_MILVUS_TOKEN). Default: ${INDEX_ENV}, else ~/.local/share/rag-assistant/default."
)
"""The help of every command's ``--index``."""


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


def default_index() -> str | Path:
    """What ``--index`` defaults to: ``$RAG_INDEX`` as given when it is a URI (``milvus://...``), else
    :func:`default_index_dir`.

    >>> os.environ["RAG_INDEX"] = "milvus:///tmp/x/corpus.db"; default_index()
    'milvus:///tmp/x/corpus.db'
    >>> del os.environ["RAG_INDEX"]
    """
    configured = os.environ.get(INDEX_ENV, "")
    if "://" in configured:
        return configured
    return default_index_dir()
