"""``rag serve``: the HTTP API (FastAPI) over one index, including an OpenAI-compatible chat endpoint.

Every endpoint calls :mod:`rag.service`, like the CLI, the chat page and the MCP server do.

- ``POST /v1/search``, ``POST /v1/ask`` (JSON, or server-sent events with ``"stream": true``)
- ``POST /v1/chat/completions``, ``GET /v1/models``: OpenAI's shape, so the ``openai`` SDK,
  LangChain's ``ChatOpenAI`` and chat front ends work unchanged; the answer with its [n] markers is
  the message, and ``citations`` (with ``abstained``) ride along in the response and in the last
  stream chunk, like PrivateGPT's ``sources``
- ``GET/POST /v1/documents``, ``DELETE /v1/documents/{id}``; ``GET /healthz``; docs at ``/docs``

With a token every ``/v1`` request needs ``Authorization: Bearer TOKEN``. Request bodies are
limited, at most ``max_requests`` requests run at once (the rest get 503 with ``Retry-After``),
and bad input gets a 422 whose ``error.param`` names the field.
"""

from __future__ import annotations

import json
import queue
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, FastAPI, File, HTTPException, Request, UploadFile
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from index.store import IndexStoreError
from rag import service
from rag.collection import Collection
from rag.server.schemas import (
    AddReportOut,
    AnswerOut,
    AskRequest,
    DocumentList,
    DocumentOut,
    Mode,
    SearchRequest,
    SearchResponse,
)
from rag.service import DEFAULT_K, MAX_K, MAX_UPLOAD_BYTES, AssistantPool, Backends, EmptyIndexError, megabytes
from rag.types import Answer, AnswerDelta

MODEL_ID = "rag-assistant"
"""The one model ``/v1/models`` lists; a chat request naming any model is answered by it."""
MAX_JSON_BYTES = 1024 * 1024
"""Largest JSON request body: a long chat history fits many times over."""
FILES_PER_UPLOAD = 8
"""An upload request may carry this many files at the size limit (its body limit follows)."""


@dataclass(frozen=True)
class ApiSettings:
    """How the API guards itself: the bearer token (None: no auth), body limits, concurrency."""

    token: str | None = None
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_requests: int = 8
    retry_after_seconds: int = 2

    @property
    def max_upload_request_bytes(self) -> int:
        return self.max_upload_bytes * FILES_PER_UPLOAD + 1024 * 1024  # room for the multipart framing

    def body_limit(self, path: str, method: str) -> int:
        """The largest request body ``method path`` takes: uploads get room for their files."""
        return self.max_upload_request_bytes if (method, path) == ("POST", "/v1/documents") else MAX_JSON_BYTES


def create_app(collection: Collection, backends: Backends, settings: ApiSettings | None = None) -> FastAPI:
    """The API over ``collection``, answering with ``backends`` (the default backend answers)."""
    settings = settings or ApiSettings()
    assistants = AssistantPool(backends)  # keeps ANSWER_CONCURRENCY idle: each holds a sentence cache (up to 250 MB)
    app = FastAPIOffline(
        title="rag-assistant",
        summary="Search and ask your documents; every answer cites its passages.",
        version="0.1.0",
        telemetry={"tracing": False, "metrics": False, "logs": False},  # no telemetry of any kind
    )
    app.add_middleware(RequestGuard, settings=settings)
    _add_error_handlers(app)
    # The body limits sit on the routes, not the app: an app-wide limit would turn RequestGuard's JSON 413 into text.
    router = APIRouter(
        prefix="/v1", dependencies=[Depends(_bearer_check(settings.token))], max_body_size=MAX_JSON_BYTES
    )
    _add_search_and_ask(router, collection, assistants)
    _add_openai(router, collection, assistants)
    _add_documents(router, collection, settings)
    app.include_router(router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, Any]:
        """Whether the server is up, and how much its index holds (no authentication needed)."""
        with collection.reading() as retriever:
            documents, chunks = retriever.store.counts()
        return {"status": "ok", "documents": documents, "chunks": chunks}

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app


# ---- guards ------------------------------------------------------------------------------------


_BEARER = HTTPBearer(auto_error=False, description="The token `rag serve` was started with (`--token`).")


def _bearer_check(token: str | None) -> Callable[..., None]:
    def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        if token is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    return check


class RequestGuard:
    """Answers 413 to a body whose declared length is over its limit, and 503 past ``max_requests``.

    FastAPI's ``max_body_size`` enforces the limits as the body streams in (a body sent without a
    length too) but answers in plain text; this check first gives clients the JSON error with the
    limit in it. The concurrency limit is written here because Starlette has none, and uvicorn's
    ``limit_concurrency`` counts every connection (health checks too) and sends no ``Retry-After``.
    At most ``max_requests`` ``/v1`` requests run at once; a stream counts until it ends.
    """

    def __init__(self, app: ASGIApp, settings: ApiSettings) -> None:
        self.app = app
        self.settings = settings
        self.in_flight = 0  # touched only on the event loop's thread

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        limit = self.settings.body_limit(scope["path"], scope["method"])
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            message = f"the request body ({megabytes(int(length))}) is over this endpoint's limit of {megabytes(limit)}"
            await _error(413, message, "request_too_large")(scope, receive, send)
            return
        if self.in_flight >= self.settings.max_requests:
            response = _error(503, f"busy: {self.in_flight} requests are running; retry shortly", "server_busy")
            response.headers["Retry-After"] = str(self.settings.retry_after_seconds)
            await response(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def _error(status: int, message: str, kind: str, param: str | None = None, **extra: Any) -> JSONResponse:
    """An error in OpenAI's shape (what its SDK and chat front ends show): ``{"error": {message, type, ...}}``."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}, **extra}
    return JSONResponse(jsonable_encoder(body), status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = error.errors()
        first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
        return _error(422, _describe(problems), "invalid_request_error", _field(first), detail=problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        kinds = {401: "authentication_error", 404: "not_found", 409: "conflict", 413: "request_too_large"}
        response = _error(error.status_code, str(error.detail), kinds.get(error.status_code, "invalid_request_error"))
        response.headers.update(error.headers or {})
        return response


def _field(problem: dict[str, Any]) -> str | None:
    """The field a validation problem is about, e.g. ``messages.0.content``; None for the body as a whole."""
    if problem.get("type") == "json_invalid":
        return None
    _location, *parts = problem.get("loc", ()) or ("body",)  # body, query, path or header; then the field
    return ".".join(str(part) for part in parts) or None


def _describe(problems: list[dict[str, Any]]) -> str:
    """One line naming each bad field: ``k: Input should be less than or equal to 100``."""
    lines = []
    for problem in problems:
        if problem.get("type") == "json_invalid":
            reason = (problem.get("ctx") or {}).get("error", "")
            lines.append(f"the request body is not valid JSON ({reason})" if reason else "the body is not valid JSON")
            continue
        message = str(problem.get("msg", "invalid")).removeprefix("Value error, ")
        lines.append(f"{_field(problem) or 'body'}: {message}")
    return "; ".join(lines)


def _user_error(error: Exception) -> HTTPException:
    """A ValueError or IndexStoreError from the service as the HTTP error a client can act on."""
    if isinstance(error, EmptyIndexError):
        return HTTPException(409, str(error))
    if isinstance(error, IndexStoreError):
        return HTTPException(409, str(error))
    return HTTPException(422, str(error))


# ---- search and ask ----------------------------------------------------------------------------


def _add_search_and_ask(router: APIRouter, collection: Collection, assistants: AssistantPool) -> None:
    @router.post("/search", response_model=SearchResponse, tags=["search"])
    def search(request: SearchRequest) -> dict[str, Any]:
        """The best passages for a query, best first (hybrid, dense or BM25 search)."""
        try:
            passages = service.search(
                collection,
                request.query,
                k=request.k,
                mode=request.mode,
                sources=request.sources,
                document_ids=request.document_ids,
                per_document=request.per_document,
            )
        except (ValueError, IndexStoreError) as error:
            raise _user_error(error) from None
        return {"query": request.query, "mode": request.mode, "passages": [p.to_dict() for p in passages]}

    @router.post(
        "/ask",
        response_model=AnswerOut,
        tags=["ask"],
        responses={200: {"content": {"text/event-stream": {"description": "With `stream`: `delta` events, "
                                                                          "then one `answer` event."}}}},
    )
    async def ask(request: AskRequest) -> Any:
        """Answer a question from the documents, citing passages as [n]; abstains when they don't answer.

        With `"stream": true` the answer comes as server-sent events: `event: delta` with
        `{"text": ...}` as it is written, then `event: answer` with the whole checked answer
        (the same JSON as without streaming); a failure midway is an `event: error`.
        """

        def deltas() -> Iterator[AnswerDelta]:
            history = [message.model_dump() for message in request.history]
            return service.stream_answer(
                collection, assistants, request.question, history, k=request.k, mode=request.mode
            )

        stream = await _ThreadedStream.start(deltas)
        if request.stream:
            return StreamingResponse(_ask_events(stream), media_type="text/event-stream")
        return (await stream.answer()).to_dict()


def _ask_events(stream: _ThreadedStream) -> AsyncIterator[str]:
    def encode(delta: AnswerDelta) -> str:
        if delta.answer is not None:
            return _sse(delta.answer.to_dict(), "answer")
        return _sse({"text": delta.text}, "delta")

    return stream.events(encode, lambda error: _sse({"message": str(error)}, "error"))


def _sse(data: Any, event: str | None = None) -> str:
    """One server-sent event. Two lines of text: a library would add a dependency, not clarity."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


# ---- answers computed in a thread, handed to the event loop ------------------------------------

_END = object()


class _ThreadedStream:
    """Runs a blocking answer stream in its own thread and hands its deltas to async code.

    Why a thread of its own rather than Starlette's ``iterate_in_threadpool``: the answer stream
    holds the index's read lock and a borrowed Assistant, and only a thread that runs it to its end
    (or stops it between deltas when the client leaves) is sure to give both back.
    """

    def __init__(self, make: Callable[[], Iterator[AnswerDelta]]) -> None:
        self._items: queue.Queue[Any] = queue.Queue()
        self._stop = threading.Event()
        self._first: Any = None
        threading.Thread(target=self._run, args=(make,), daemon=True).start()

    @classmethod
    async def start(cls, make: Callable[[], Iterator[AnswerDelta]]) -> _ThreadedStream:
        """Start the stream and wait for its first delta: an error before it (bad input, an empty
        index) is raised here, while the response can still say so with its status code."""
        stream = cls(make)
        first = await stream.next()
        if isinstance(first, Exception):
            _raise(first)
        stream._first = first
        return stream

    def _run(self, make: Callable[[], Iterator[AnswerDelta]]) -> None:
        try:
            iterator = make()
            try:
                for item in iterator:
                    if self._stop.is_set():
                        break
                    self._items.put(item)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()  # releases the lock and the Assistant now, in this thread
        except Exception as error:  # noqa: BLE001 (not swallowed: the request re-raises or reports it)
            self._items.put(error)
        self._items.put(_END)

    async def next(self) -> Any:
        """The next delta, an exception the stream raised, or ``_END``."""
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return await anyio.to_thread.run_sync(self._items.get)

    def stop(self) -> None:
        self._stop.set()

    async def answer(self) -> Answer:
        """The whole answer (raises what the stream raised, as an HTTP error when the user caused it)."""
        answer = None
        while (item := await self.next()) is not _END:
            if isinstance(item, Exception):
                _raise(item)
            answer = item.answer or answer
        assert answer is not None
        return answer

    async def events(
        self, encode: Callable[[AnswerDelta], str], encode_error: Callable[[Exception], str]
    ) -> AsyncIterator[str]:
        try:
            while (item := await self.next()) is not _END:
                if isinstance(item, Exception):
                    yield encode_error(item)
                    return
                yield encode(item)
        finally:
            self.stop()


def _raise(error: Exception) -> None:
    if isinstance(error, (ValueError, IndexStoreError)):
        raise _user_error(error) from None
    if isinstance(error, (ConnectionError, OSError)):
        raise HTTPException(502, f"the answer backend failed: {error}") from None
    raise error


# ---- OpenAI-compatible chat --------------------------------------------------------------------


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(part.text for part in self.content if part.type == "text" and part.text)
        return self.content or ""


class ContextFilter(BaseModel):
    docs_ids: list[str] | None = Field(None, description="Answer only from these documents (ids).")


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat request. Sampling options (temperature, max_tokens, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    use_context: bool = Field(True, description="Answer from the documents (PrivateGPT's flag; false is refused).")
    context_filter: ContextFilter | None = None
    include_sources: bool = Field(True, description="Add `citations` to the response (PrivateGPT's flag).")
    k: int = Field(DEFAULT_K, ge=1, le=MAX_K, description="Passages the answer is drawn from.")
    mode: Mode = "hybrid"


def _question_and_history(messages: list[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    """The last user message is the question; earlier user and assistant turns are the history.

    System messages are left out: the answerer has its own instructions and cites only passages.
    """
    last = messages[-1]
    if last.role != "user" or not last.text.strip():
        raise RequestValidationError(
            [{"loc": ("body", "messages", len(messages) - 1), "msg": "the last message must be the user's question",
              "type": "value_error"}]
        )
    history = [{"role": m.role, "content": m.text} for m in messages[:-1] if m.role in ("user", "assistant")]
    return last.text, history


def _add_openai(router: APIRouter, collection: Collection, assistants: AssistantPool) -> None:
    @router.get("/models", tags=["openai"])
    def models() -> dict[str, Any]:
        """The model to name in chat requests (OpenAI's list shape)."""
        return {"object": "list", "data": [_model_card(collection)]}

    @router.get("/models/{model_id}", tags=["openai"])
    def model(model_id: str) -> dict[str, Any]:
        if model_id != MODEL_ID:
            raise HTTPException(404, f"no model {model_id!r}; this server has {MODEL_ID!r}")
        return _model_card(collection)

    @router.post("/chat/completions", tags=["openai"])
    async def chat_completions(request: ChatCompletionRequest) -> Any:
        """Answer the last user message from the documents, in OpenAI's chat-completion shape.

        The message is the answer with its [n] markers; `citations`, `abstained` and
        `unsupported_sentences` are extra top-level fields (in the last chunk when streaming).
        """
        if not request.use_context:
            raise RequestValidationError(
                [{"loc": ("body", "use_context"), "type": "value_error",
                  "msg": "this server answers from the documents only; use_context must be true"}]
            )
        question, history = _question_and_history(request.messages)
        document_ids = request.context_filter.docs_ids if request.context_filter else None

        def deltas() -> Iterator[AnswerDelta]:
            return service.stream_answer(
                collection, assistants, question, history, k=request.k, mode=request.mode, document_ids=document_ids
            )

        stream = await _ThreadedStream.start(deltas)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        if request.stream:
            chunks = _completion_chunks(stream, completion_id, request.include_sources)
            return StreamingResponse(chunks, media_type="text/event-stream")
        answer = await stream.answer()
        message = {"role": "assistant", "content": answer.text}
        return {
            **_completion_head(completion_id, "chat.completion"),
            "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
            **(_sources(answer) if request.include_sources else {}),
        }


def _model_card(collection: Collection) -> dict[str, Any]:
    created = int(collection.retriever.store.updated_at or 0)
    return {"id": MODEL_ID, "object": "model", "created": created, "owned_by": "rag-assistant"}


def _completion_head(completion_id: str, kind: str) -> dict[str, Any]:
    return {"id": completion_id, "object": kind, "created": int(time.time()), "model": MODEL_ID}


def _sources(answer: Answer) -> dict[str, Any]:
    return {
        "citations": [citation.to_dict() for citation in answer.citations],
        "abstained": answer.abstained,
        "unsupported_sentences": list(answer.unsupported_sentences),
    }


async def _completion_chunks(stream: _ThreadedStream, completion_id: str, include_sources: bool) -> AsyncIterator[str]:
    """OpenAI's stream: a role chunk, content chunks, a last chunk with the citations, then ``[DONE]``."""
    head = _completion_head(completion_id, "chat.completion.chunk")

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return _sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    def encode(delta: AnswerDelta) -> str:
        if delta.answer is not None:
            return chunk({}, "stop", **(_sources(delta.answer) if include_sources else {}))
        return chunk({"content": delta.text})

    def encode_error(error: Exception) -> str:
        return _sse({"error": {"message": f"the answer failed: {error}", "type": "server_error", "code": 500}})

    yield chunk({"role": "assistant", "content": ""})
    async for event in stream.events(encode, encode_error):
        yield event
    yield "data: [DONE]\n\n"


# ---- documents ---------------------------------------------------------------------------------


def _add_documents(router: APIRouter, collection: Collection, settings: ApiSettings) -> None:
    @router.get("/documents", response_model=DocumentList, tags=["documents"])
    def list_documents() -> dict[str, Any]:
        """Every document in the index, by source."""
        return {"documents": [DocumentOut.of(info) for info in service.list_documents(collection)]}

    @router.post(
        "/documents",
        response_model=AddReportOut,
        tags=["documents"],
        max_body_size=settings.max_upload_request_bytes,
        responses={422: {"description": "No file could be added; the body also holds the per-file report."}},
    )
    def add_documents(files: Annotated[list[UploadFile], File(description="Files to add (multipart).")]) -> Any:
        """Add or update uploaded files (txt, md, html, pdf, docx); unchanged ones are skipped.

        The report says what happened to each file (added, updated, unchanged, failed or rejected,
        with the reason) and gives each indexed file's document id. Files over the size limit or of
        another type are rejected; the answer is 422 when no file could be added.
        """
        with tempfile.TemporaryDirectory(prefix="rag-upload-") as folder:
            paths = _save_uploads(files, Path(folder))
            result = service.add_uploads(collection, paths, max_bytes=settings.max_upload_bytes)
        report = AddReportOut.of(result)
        if report.added + report.updated + report.unchanged == 0:
            reasons = "; ".join(f"{f.file}: {f.reason}" for f in report.files) or "no files"
            return _error(422, f"no file was added: {reasons}", "invalid_request_error", "files", **report.model_dump())
        return report

    @router.delete("/documents/{document_id:path}", tags=["documents"])
    def delete_document(document_id: str) -> dict[str, Any]:
        """Remove a document by id (URL-encode it: ids of files are their paths). Uploaded copies go too."""
        try:
            removed = service.remove_documents(collection, [document_id])
        except IndexStoreError as error:
            raise _user_error(error) from None
        if not removed:
            raise HTTPException(404, f"no document with id {document_id!r}")
        return {"deleted": True, "document": DocumentOut.of(removed[0])}


def _save_uploads(files: list[UploadFile], folder: Path) -> list[Path]:
    """Write each upload under its own sub-folder (two uploads may share a name), named by its last part."""
    paths = []
    for number, upload in enumerate(files):
        name = Path(upload.filename or "").name or "unnamed"
        target = folder / str(number) / name
        target.parent.mkdir()
        with open(target, "wb") as out:
            shutil.copyfileobj(upload.file, out)
        paths.append(target)
    return paths
