"""LLM backends: which chat model answers (settings) and how it is made (models, the in-process GGUF model)."""

from rag.llm.models import make_chat_model, stream_text
from rag.llm.settings import BACKENDS, LlmConfigError, LlmSettings, load_llm_settings

__all__ = ["BACKENDS", "LlmConfigError", "LlmSettings", "load_llm_settings", "make_chat_model", "stream_text"]
