"""``rag serve`` as other apps meet it: a real server in a subprocess, spoken to with the ``openai`` SDK,
LangChain's ``ChatOpenAI`` and plain HTTP.

One server for the module (with a token and a small upload limit) over a private index of two notes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from rag import Retriever
from rag.answering.citations import ABSTENTION_TEXT
from tests.rag.conftest import NOTES
from tests.servers import free_port, running_server

pytestmark = pytest.mark.slow  # one server start (model load) for the module: about 15 s

TOKEN = "s3cret-test-token"
UPLOAD_LIMIT_MB = 0.05
LIGHTHOUSE = "When will the work on the lighthouse begin?"
OFF_TOPIC = "What is the boiling point of mercury?"


@pytest.fixture(scope="module")
def base_url(notes_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "rag.cli", "serve", "--index", str(notes_index_dir), "--port", str(port),
               "--token", TOKEN, "--max-upload-mb", str(UPLOAD_LIMIT_MB)]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with running_server(command, f"{url}/healthz", tmp_path_factory.mktemp("serve") / "server.log"):
        yield url


@pytest.fixture(scope="module")
def api(base_url: str) -> Iterator[httpx.Client]:
    """An HTTP client that sends the token."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def openai_client(base_url: str):  # type: ignore[no-untyped-def]
    from openai import OpenAI

    return OpenAI(base_url=f"{base_url}/v1", api_key=TOKEN, max_retries=0)


# ---- auth, limits, errors ----------------------------------------------------------------------


def test_health_needs_no_token_and_the_api_does(base_url: str) -> None:
    health = httpx.get(f"{base_url}/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "documents": 2, "chunks": 2}
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        refused = httpx.get(f"{base_url}/v1/models", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        assert refused.json()["error"]["type"] == "authentication_error"
    accepted = httpx.get(f"{base_url}/v1/models", headers={"Authorization": f"Bearer {TOKEN}"})
    assert accepted.status_code == 200 and accepted.json()["data"][0]["id"] == "rag-assistant"


def test_the_openai_sdk_is_refused_without_the_token(base_url: str) -> None:
    from openai import AuthenticationError, OpenAI

    with pytest.raises(AuthenticationError, match="bearer token"):
        OpenAI(base_url=f"{base_url}/v1", api_key="not-the-token", max_retries=0).models.list()


def test_bad_input_gets_a_422_naming_the_field(api: httpx.Client) -> None:
    wrong_type = api.post("/v1/search", json={"query": "tea", "k": "ten"})
    assert wrong_type.status_code == 422
    assert wrong_type.json()["error"]["param"] == "k" and "k: Input should be a valid integer" in wrong_type.text
    missing = api.post("/v1/ask", json={"k": 3})
    assert missing.status_code == 422 and missing.json()["error"]["param"] == "question"
    blank = api.post("/v1/search", json={"query": "   "})
    assert blank.status_code == 422 and blank.json()["error"]["message"] == "query: must not be empty"
    out_of_range = api.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "tea"}], "k": 99})
    assert out_of_range.status_code == 422 and out_of_range.json()["error"]["param"] == "k"
    not_a_question = api.post("/v1/chat/completions", json={"messages": [{"role": "assistant", "content": "Hi"}]})
    assert not_a_question.status_code == 422 and not_a_question.json()["error"]["param"] == "messages.0"


def test_malformed_json_gets_a_422_that_says_so(api: httpx.Client) -> None:
    response = api.post("/v1/search", content=b'{"query": "tea", "k": 5', headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("the request body is not valid JSON")


def test_a_body_over_the_limit_is_refused_before_it_is_read(api: httpx.Client) -> None:
    response = api.post("/v1/search", json={"query": "tea " * 300_000})
    assert response.status_code == 413
    assert "over this endpoint's limit of 1 MB" in response.json()["error"]["message"]


def test_the_docs_page_works_offline(base_url: str) -> None:
    page = httpx.get(f"{base_url}/docs")
    assert page.status_code == 200 and "cdn" not in page.text
    script = page.text.split('src="')[1].split('"')[0]
    assert httpx.get(f"{base_url}{script}").status_code == 200
    paths = httpx.get(f"{base_url}/openapi.json").json()["paths"]
    assert {"/v1/search", "/v1/ask", "/v1/chat/completions", "/v1/models", "/v1/documents"} <= set(paths)


# ---- OpenAI-compatible chat --------------------------------------------------------------------


def test_openai_sdk_gets_an_answer_with_citations(openai_client) -> None:  # type: ignore[no-untyped-def]
    completion = openai_client.chat.completions.create(
        model="rag-assistant", messages=[{"role": "user", "content": LIGHTHOUSE}]
    )
    message = completion.choices[0].message
    assert message.role == "assistant" and "March" in message.content and "[1]" in message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.abstained is False
    assert completion.citations[0]["source"].endswith("harbour.txt") and completion.citations[0]["supported"]
    assert completion.citations[0]["quote"] in NOTES["harbour.txt"]


def test_openai_sdk_streams_the_answer_and_the_last_chunk_has_the_citations(openai_client) -> None:  # type: ignore[no-untyped-def]
    chunks = list(
        openai_client.chat.completions.create(
            model="rag-assistant", messages=[{"role": "user", "content": LIGHTHOUSE}], stream=True
        )
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert len(chunks) >= 4 and "March" in text and "[1]" in text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].citations and chunks[-1].citations[0]["source"].endswith("harbour.txt")
    assert all(not hasattr(chunk, "citations") for chunk in chunks[:-1])


def test_an_off_topic_question_abstains(openai_client) -> None:  # type: ignore[no-untyped-def]
    completion = openai_client.chat.completions.create(
        model="any-model-name", messages=[{"role": "user", "content": OFF_TOPIC}]
    )
    assert completion.choices[0].message.content == ABSTENTION_TEXT
    assert completion.abstained is True and completion.citations == []
    streamed = list(
        openai_client.chat.completions.create(
            model="rag-assistant", messages=[{"role": "user", "content": OFF_TOPIC}], stream=True
        )
    )
    assert streamed[-1].abstained is True and streamed[-1].citations == []


def test_a_follow_up_uses_the_conversation(openai_client) -> None:  # type: ignore[no-untyped-def]
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Who is Ellen Quist?"},
        {"role": "assistant", "content": "Ellen Quist is the mayor. [1]"},
        {"role": "user", "content": [{"type": "text", "text": "What did she say the lighthouse work would cost?"}]},
    ]
    completion = openai_client.chat.completions.create(model="rag-assistant", messages=messages)
    assert "two million euros" in completion.choices[0].message.content


def test_langchain_chat_openai_works_unchanged(base_url: str) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=f"{base_url}/v1", api_key=TOKEN, model="rag-assistant", max_retries=0)
    assert "March" in llm.invoke(LIGHTHOUSE).content
    assert "March" in "".join(chunk.content for chunk in llm.stream(LIGHTHOUSE))


# ---- search and ask ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_search_returns_what_retriever_search_returns(api: httpx.Client, notes_index_dir: Path, mode: str) -> None:
    query = {"query": "how is black tea made", "k": 2, "mode": mode}
    response = api.post("/v1/search", json=query)
    assert response.status_code == 200
    served = response.json()["passages"]
    expected = [p.to_dict() for p in Retriever.open(notes_index_dir).search("how is black tea made", k=2, mode=mode)]
    assert [(p["chunk_id"], p["rank"], p["text"]) for p in served] == [
        (p["chunk_id"], p["rank"], p["text"]) for p in expected
    ]
    assert [p["score"] for p in served] == pytest.approx([p["score"] for p in expected], abs=1e-4)


def test_search_filters_by_source(api: httpx.Client) -> None:
    passages = api.post("/v1/search", json={"query": "tea", "sources": ["*harbour.txt"]}).json()["passages"]
    assert [Path(p["source"]).name for p in passages] == ["harbour.txt"]


def test_ask_returns_the_answer_and_streams_it_as_server_sent_events(api: httpx.Client) -> None:
    whole = api.post("/v1/ask", json={"question": LIGHTHOUSE, "k": 2}).json()
    assert "March" in whole["text"] and whole["citations"] and len(whole["passages"]) == 2
    with api.stream("POST", "/v1/ask", json={"question": LIGHTHOUSE, "k": 2, "stream": True}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response.iter_lines())
    assert [name for name, _ in events[:-1]] == ["delta"] * (len(events) - 1) and events[-1][0] == "answer"
    assert "".join(data["text"] for _, data in events[:-1]).strip() == whole["text"]
    assert events[-1][1]["citations"] == whole["citations"]


def test_chat_without_the_documents_is_refused_with_the_reason(api: httpx.Client) -> None:
    body = {"messages": [{"role": "user", "content": "tea"}], "use_context": False}
    response = api.post("/v1/chat/completions", json=body)
    assert response.status_code == 422 and response.json()["error"]["param"] == "use_context"
    assert "answers from the documents only" in response.json()["error"]["message"]


def _events(lines: Iterator[str]) -> list[tuple[str, dict]]:
    events, name = [], "message"
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, json.loads(line.removeprefix("data: "))))
    return events


# ---- documents ---------------------------------------------------------------------------------


def test_uploads_report_each_file_and_become_searchable(api: httpx.Client) -> None:
    oversized = b"word " * int(UPLOAD_LIMIT_MB * 1024 * 1024 / 4)
    files = [
        ("files", ("bees.md", b"# Bees\n\nBees dance to tell the hive where the flowers are.\n", "text/markdown")),
        ("files", ("empty.txt", b"", "text/plain")),
        ("files", ("setup.exe", b"MZ\x90\x00", "application/octet-stream")),
        ("files", ("huge.txt", oversized, "text/plain")),
    ]
    response = api.post("/v1/documents", files=files)
    assert response.status_code == 200
    report = response.json()
    statuses = {f["file"]: (f["status"], f["reason"]) for f in report["files"]}
    assert statuses["bees.md"] == ("added", "")
    assert statuses["empty.txt"] == ("failed", "empty file (no text)")
    assert statuses["setup.exe"][0] == "rejected" and "unsupported type .exe" in statuses["setup.exe"][1]
    assert statuses["huge.txt"][0] == "rejected" and "over the 0.05 MB limit" in statuses["huge.txt"][1]
    assert report["added"] == 1 and report["not_added"] == 3 and report["summary"].startswith("added 1,")

    bees_id = next(f["document_id"] for f in report["files"] if f["file"] == "bees.md")
    hits = api.post("/v1/search", json={"query": "where are the flowers", "k": 1}).json()["passages"]
    assert hits[0]["document_id"] == bees_id
    assert bees_id in [d["id"] for d in api.get("/v1/documents").json()["documents"]]

    again = api.post("/v1/documents", files=files[:1]).json()
    assert [(f["file"], f["status"]) for f in again["files"]] == [("bees.md", "unchanged")]

    deleted = api.delete(f"/v1/documents/{quote(bees_id, safe='')}")
    assert deleted.status_code == 200 and deleted.json()["document"]["title"] == "Bees"
    assert api.delete(f"/v1/documents/{quote(bees_id, safe='')}").status_code == 404
    assert len(api.get("/v1/documents").json()["documents"]) == 2


def test_an_upload_with_nothing_indexable_is_a_422_with_the_report(api: httpx.Client) -> None:
    response = api.post("/v1/documents", files=[("files", ("notes.exe", b"MZ", "application/octet-stream"))])
    assert response.status_code == 422
    body = response.json()
    assert body["error"]["param"] == "files" and body["files"][0]["status"] == "rejected"
