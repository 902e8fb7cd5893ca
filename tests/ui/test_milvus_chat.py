"""The chat page served from a Milvus Lite index: ``rag chat --index milvus:///...`` answers with citations."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, rag_command
from tests.servers import free_port, running_server, server_environment

pytestmark = pytest.mark.slow


def test_chat_page_answers_from_a_milvus_lite_index(tmp_path: Path) -> None:
    pytest.importorskip("pymilvus", reason='needs the milvus extra: pip install -e ".[milvus]"')
    from gradio_client import Client

    location = f"milvus://{tmp_path / 'guide.db'}"
    rag_command("add", str(REPO_ROOT / "docs"), "--index", location, "--quiet")  # its own process: Lite locks the file
    port = free_port()
    home = tmp_path / "home"
    command = [sys.executable, "-m", "rag.cli", "chat", "--index", location, "--port", str(port), "--no-open"]
    url = f"http://127.0.0.1:{port}/"
    with running_server(command, url, tmp_path / "server.log", server_environment(XDG_DATA_HOME=str(home))):
        result = Client(url, verbose=False).predict(question="How do I add files to the index?", api_name="/ask")
    assert not result["abstained"], result["text"]
    assert result["citations"] and Path(result["citations"][0]["source"]).name == "adding-documents.md"
    assert (tmp_path / "guide.db.rag" / "milvus.json").is_file()  # the companion folder the page keeps its files in
