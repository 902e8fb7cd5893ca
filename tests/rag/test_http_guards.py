"""The HTTP API's guards in-process: requests past the limit get 503, a stream the client left gives the index back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import anyio
import httpx
import pytest
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from rag.collection import ReadWriteLock
from rag.server.cli import check_binding
from rag.server.http import ApiSettings, RequestGuard, _ThreadedStream
from rag.types import AnswerDelta
from tests.conftest import rag_command


def test_requests_past_the_limit_get_503_with_retry_after() -> None:
    release = anyio.Event()

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await JSONResponse({"ok": True})(scope, receive, send)

    guard = RequestGuard(slow_app, ApiSettings(max_requests=1, retry_after_seconds=7))
    results: dict[str, httpx.Response] = {}

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=guard), base_url="http://api") as client:
            async with anyio.create_task_group() as tasks:

                async def first() -> None:
                    results["first"] = await client.post("/v1/search", json={})

                tasks.start_soon(first)
                await anyio.wait_all_tasks_blocked()
                results["busy"] = await client.post("/v1/search", json={})
                release.set()
            results["after"] = await client.post("/v1/search", json={})

    anyio.run(main)
    assert results["busy"].status_code == 503 and results["busy"].headers["Retry-After"] == "7"
    assert results["busy"].json()["error"]["type"] == "server_busy"
    assert results["first"].status_code == 200 and results["after"].status_code == 200


def test_a_stream_the_client_leaves_gives_the_read_lock_back() -> None:
    lock = ReadWriteLock()

    def endless_answer() -> Iterator[AnswerDelta]:
        with lock.reading():  # as service.stream_answer holds the index while it answers
            while True:
                yield AnswerDelta(text="word ")
                time.sleep(0.01)

    async def leave_after_one_event() -> str:
        stream = await _ThreadedStream.start(endless_answer)
        events = stream.events(lambda delta: delta.text, str)
        first = await events.__anext__()
        await events.aclose()  # the client went away
        return first

    assert anyio.run(leave_after_one_event) == "word "
    writer_got_in = threading.Event()

    def write() -> None:
        with lock.writing():
            writer_got_in.set()

    threading.Thread(target=write, daemon=True).start()
    assert writer_got_in.wait(timeout=10), "the abandoned answer still holds the index"


def test_an_error_before_the_first_delta_is_raised_while_a_status_can_still_say_so() -> None:
    def bad_question() -> Iterator[AnswerDelta]:
        raise ValueError("the question is empty")
        yield AnswerDelta()  # pragma: no cover (makes this a generator)

    from fastapi import HTTPException

    with pytest.raises(HTTPException) as raised:
        anyio.run(_ThreadedStream.start, bad_question)
    assert raised.value.status_code == 422 and raised.value.detail == "the question is empty"


def test_listening_beyond_loopback_needs_a_token() -> None:
    check_binding("127.0.0.1", None)
    check_binding("0.0.0.0", "s3cret")
    with pytest.raises(ValueError, match="needs a token"):
        check_binding("0.0.0.0", None)
    result = rag_command("serve", "--host", "0.0.0.0", "--index", "/nonexistent", check=False)
    assert result.returncode == 1 and "needs a token (--token or $RAG_API_TOKEN)" in result.stderr
