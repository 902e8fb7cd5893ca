"""``rag mcp`` driven by the ``mcp`` SDK's own client, as an agent host would: over stdio and streamable HTTP."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.servers import REPO_ROOT, free_port, running_server, server_environment

pytestmark = pytest.mark.slow  # two server starts (stdio, HTTP), each loading the model

READ_TOOLS = {"search", "ask", "list_documents"}


def _stdio(index_dir: Path, *options: str) -> StdioServerParameters:
    """How a desktop host launches ``rag mcp`` (its environment is not inherited: name what it needs)."""
    env = server_environment()
    wanted = {name: env[name] for name in ("HF_HUB_OFFLINE", "PYTHONPATH", "HOME") if name in env}
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "rag.cli", "mcp", "--index", str(index_dir), *options],
        env=wanted,
        cwd=str(REPO_ROOT),
    )


def _run(session: Any, server: Any) -> Any:
    """Run ``session(client)`` against ``server`` (stdio parameters or a URL) and return what it returns."""

    async def main() -> Any:
        async with Client(server) as client:
            return await session(client)

    return anyio.run(main)


def test_stdio_server_lists_read_tools_searches_and_answers(notes_index_dir: Path) -> None:
    async def session(client: Client) -> dict[str, Any]:
        tools = (await client.list_tools()).tools
        return {
            "tools": {tool.name: tool for tool in tools},
            "search": await client.call_tool("search", {"query": "how is black tea made", "k": 2}),
            "ask": await client.call_tool("ask", {"question": "When will the lighthouse work begin?"}),
            "off_topic": await client.call_tool("ask", {"question": "What is the boiling point of mercury?"}),
            "documents": await client.call_tool("list_documents", {}),
            "write": await client.call_tool("add_documents", {"paths": [str(REPO_ROOT / "docs")]}),
            "bad": await client.call_tool("search", {"query": "tea", "mode": "fuzzy"}),
        }

    seen = _run(session, _stdio(notes_index_dir))
    tools = seen["tools"]
    assert set(tools) == READ_TOOLS, "writes must not be offered without --allow-writes"
    for tool in tools.values():
        assert len(tool.description) > 150 and tool.output_schema and tool.annotations.read_only_hint
    assert "citations" in tools["ask"].description and "abstained" in tools["ask"].description

    passages = seen["search"].structured_content["passages"]
    assert not seen["search"].is_error and Path(passages[0]["source"]).name == "tea.txt" and passages[0]["text"]

    answer = seen["ask"].structured_content
    assert "March" in answer["text"] and "[1]" in answer["text"] and answer["abstained"] is False
    assert Path(answer["citations"][0]["source"]).name == "harbour.txt" and answer["citations"][0]["quote"]
    assert seen["off_topic"].structured_content["abstained"] is True
    assert seen["off_topic"].structured_content["citations"] == []

    titles = sorted(d["title"] for d in seen["documents"].structured_content["documents"])
    assert len(titles) == 2

    assert seen["write"].is_error and "add_documents" in seen["write"].content[0].text
    assert seen["bad"].is_error and "mode" in seen["bad"].content[0].text


def test_streamable_http_with_allow_writes_adds_and_removes_documents(notes_index_dir: Path, tmp_path: Path) -> None:
    private = tmp_path / "index"
    shutil.copytree(notes_index_dir, private, ignore=shutil.ignore_patterns(".lock"))
    folder = tmp_path / "new"
    folder.mkdir()
    (folder / "bees.md").write_text("# Bees\n\nBees dance to tell the hive where the flowers are.\n")
    (folder / "empty.txt").write_text("")
    port = free_port()
    command = [sys.executable, "-m", "rag.cli", "mcp", "--index", str(private), "--http", str(port), "--allow-writes"]
    url = f"http://127.0.0.1:{port}/mcp"

    async def session(client: Client) -> dict[str, Any]:
        names = {tool.name for tool in (await client.list_tools()).tools}
        answer = await client.call_tool("ask", {"question": "How is black tea dried?", "k": 2})
        added = await client.call_tool("add_documents", {"paths": [str(folder)]})
        found = await client.call_tool("search", {"query": "where are the flowers", "k": 1})
        bees_id = next(f["document_id"] for f in added.structured_content["files"] if f["status"] == "added")
        removed = await client.call_tool("remove_documents", {"document_ids": [bees_id, "no-such-id"]})
        listed = await client.call_tool("list_documents", {})
        return {"names": names, "answer": answer, "added": added, "found": found, "removed": removed, "listed": listed}

    with running_server(command, url, tmp_path / "mcp.log"):
        seen = _run(session, url)
    assert seen["names"] == READ_TOOLS | {"add_documents", "remove_documents"}
    answer = seen["answer"].structured_content
    assert "hot air" in answer["text"] and Path(answer["citations"][0]["source"]).name == "tea.txt"
    report = seen["added"].structured_content
    assert {(Path(f["file"]).name, f["status"]) for f in report["files"]} == {("bees.md", "added"), ("empty.txt", "failed")}
    assert report["summary"].startswith("added 1,")
    assert Path(seen["found"].structured_content["passages"][0]["source"]).name == "bees.md"
    removed = seen["removed"].structured_content
    assert [d["title"] for d in removed["removed"]] == ["Bees"] and removed["not_found"] == ["no-such-id"]
    assert len(seen["listed"].structured_content["documents"]) == 2
    assert (folder / "bees.md").is_file(), "removing a document leaves the user's file alone"
