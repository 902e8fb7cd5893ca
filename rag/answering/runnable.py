"""The answer chain as a LangChain ``Runnable`` (``Assistant.as_runnable()``); kept apart so that asking a
question does not import LangChain.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda, RunnablePassthrough

from rag.answering.conversation import Message, Standalone, normalise_history
from rag.types import Answer, AnswerDelta, Passage

if TYPE_CHECKING:
    from rag.answering.assistant import Assistant

__all__ = ["AssistantRunnable"]


def _question_and_history(value: Any) -> tuple[str, list[Message]]:
    if isinstance(value, str):
        return value, []
    if isinstance(value, dict) and "question" in value:
        return str(value["question"]), normalise_history(value.get("history"))
    raise ValueError(f"input must be a question or {{'question', 'history'}}, got {value!r}")


class AssistantRunnable(Runnable[Any, Answer]):
    """The answer chain as a LangChain Runnable: ``invoke``/``batch`` return Answers, ``stream`` yields AnswerDeltas.

    The steps are composed with LCEL (``condense | retrieve``), so LangChain callbacks and tracing see them.

    Example (``assistant`` an :class:`Assistant`)::

        chain = assistant.as_runnable()
        answer = chain.invoke({"question": "when is it evaluated?", "history": history})
        answers = chain.batch(["What is a module?", "What is a package?"])
        for delta in chain.stream("What is a module?"):
            print(delta.text, end="")
    """

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.prepare: Runnable[Any, dict[str, Any]] = (
            RunnableLambda(_parse_input, name="parse_input")
            | RunnablePassthrough.assign(prepared=RunnableLambda(self._condense, name="condense"))
            | RunnablePassthrough.assign(passages=RunnableLambda(self._retrieve, name="retrieve"))
        )

    def _condense(self, state: dict[str, Any]) -> tuple[Standalone, list[str]]:
        # The same preparation as Assistant.stream: the standalone question and the conversation's documents.
        return self.assistant.prepare(state["question"], state["history"])

    def _retrieve(self, state: dict[str, Any]) -> list[Passage]:
        standalone, scope = state["prepared"]
        return self.assistant.retrieve(standalone.query, scope)

    @property
    def InputType(self) -> type:
        return dict

    @property
    def OutputType(self) -> type:
        return Answer

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Answer:
        answer = None
        for delta in self.stream(input, config, **kwargs):
            answer = delta.answer or answer
        assert answer is not None
        return answer

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[AnswerDelta]:  # type: ignore[override]
        state = self.prepare.invoke(input, config)
        standalone, scope = state["prepared"]
        yield from self.assistant.stream_prepared(standalone, state["passages"], scope)


def _parse_input(value: Any) -> dict[str, Any]:
    question, history = _question_and_history(value)
    if not question.strip():
        raise ValueError("the question is empty")
    return {"question": question.strip(), "history": history}
