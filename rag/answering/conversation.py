"""Turn a follow-up question into a standalone query, using the chat history.

History is a list of ``{"role": "user"|"assistant", "content": str}`` messages (Gradio 6's format);
``(user, assistant)`` pairs and LangChain messages are accepted too.

Without an LLM, :func:`heuristic_standalone` applies a documented rule: a question that leans on the
conversation (it has a pronoun such as "he", "it", "that", or fewer than three content words) gets the
key terms of the previous question appended, and, when it refers to a person or thing with "he/she/they",
the names of the previous answer too. Retrieval is lexical and dense, so extra terms in the query act
as context; they do not need to form a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from index.bm25 import tokenize

__all__ = ["Message", "heuristic_standalone", "is_follow_up", "llm_standalone", "normalise_history"]

Message = dict[str, str]


@dataclass(frozen=True)
class _Turn:
    role: str
    content: str


def normalise_history(history: Iterable[Any] | None) -> list[Message]:
    """History as ``[{"role", "content"}]`` messages, from messages, (user, assistant) pairs or LangChain messages.

    >>> normalise_history([("hi", "hello"), {"role": "user", "content": "and?"}])
    [{'role': 'user', 'content': 'hi'}, {'role': 'assistant', 'content': 'hello'}, {'role': 'user', 'content': 'and?'}]

    Raises ``ValueError`` for an entry of another shape.
    """
    messages: list[Message] = []
    for entry in history or []:
        if isinstance(entry, dict):
            role, content = entry.get("role"), entry.get("content")
            if role not in ("user", "assistant", "system"):
                raise ValueError(f"history message role must be 'user' or 'assistant', got {role!r}")
            messages.append({"role": role, "content": _content_text(content)})
        elif isinstance(entry, (tuple, list)) and len(entry) == 2:
            user, assistant = entry
            if user:
                messages.append({"role": "user", "content": _content_text(user)})
            if assistant:
                messages.append({"role": "assistant", "content": _content_text(assistant)})
        elif hasattr(entry, "type") and hasattr(entry, "content"):  # a LangChain BaseMessage
            role = {"human": "user", "ai": "assistant"}.get(entry.type, entry.type)
            messages.append({"role": role, "content": _content_text(entry.content)})
        else:
            raise ValueError(
                f"history entries must be {{'role', 'content'}} dicts or (user, assistant) pairs, got {entry!r}"
            )
    return [m for m in messages if m["role"] in ("user", "assistant")]


def _content_text(content: Any) -> str:
    """Gradio may give content as a list of parts or a file dict; keep the text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, (list, tuple)):
        return " ".join(_content_text(part) for part in content)
    return str(content)


_ANAPHORA = frozenset(
    "he she it they him her his hers its their theirs them this that these those there then such one ones".split()
)
_PERSONAL = frozenset("he she they him her his hers their theirs them".split())
_QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how does do did is are was were can could should would will "
    "tell explain describe about also i me my we our you your please".split()
)
_MARKER = re.compile(r"\[\d+(?:\s*[,;-]\s*\d+)*\]")
# Runs of capitalised words: names of people, places, things.
_NAME = re.compile(r"\b([A-Z][\w'’-]*(?:\s+(?:of\s+|the\s+|de\s+)?[A-Z][\w'’-]*)*)")
_SENTENCE_START = re.compile(r"(?:^|[.!?]\s+)$")
MIN_STANDALONE_STEMS = 3
"""A question with fewer content stems than this ("and in 2019?") is treated as a follow-up."""
MAX_CARRIED_NAMES = 3


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z](?:[\w'’-]|\.(?=\w))*", text)


def is_follow_up(question: str) -> bool:
    """Whether ``question`` leans on the conversation: it has a pronoun or too few content words.

    >>> is_follow_up("When did he say that?"), is_follow_up("When did Bessent announce the AI talks?")
    (True, False)
    """
    words = {w.lower() for w in _words(question)}
    return bool(words & _ANAPHORA) or len(set(tokenize(question))) < MIN_STANDALONE_STEMS


def _key_terms(text: str, exclude: set[str]) -> list[str]:
    """Content words of a question, in order, without question words or words already in ``exclude``."""
    terms = []
    for word in _words(_MARKER.sub(" ", text)):
        lower = word.lower()
        if lower in exclude or lower in _QUESTION_WORDS or lower in _ANAPHORA or not tokenize(word):
            continue
        exclude.add(lower)
        terms.append(word)
    return terms


def _names(text: str, exclude: set[str]) -> list[str]:
    found = []
    text = _MARKER.sub(" ", text)
    for match in _NAME.finditer(text):
        name = match.group(1)
        if _SENTENCE_START.search(text[: match.start()]):
            # A capital at a sentence start says nothing; a run of capitals there is still a name.
            first, _, rest = name.partition(" ")
            if not rest:
                continue
            name = rest if first.lower() in _QUESTION_WORDS or not tokenize(first) else name
        if name.lower() in exclude or name.lower() in _ANAPHORA or len(name) < 3:
            continue
        exclude.add(name.lower())
        found.append(name)
        if len(found) == MAX_CARRIED_NAMES:
            break
    return found


def heuristic_standalone(question: str, history: Sequence[Message]) -> str:
    """``question`` with the context it leans on appended, or unchanged when it stands alone.

    >>> history = [{"role": "user", "content": "Who announced the US-China AI safety talks?"},
    ...            {"role": "assistant", "content": "Treasury Secretary Scott Bessent announced them [1]."}]
    >>> heuristic_standalone("When did he say it?", history)
    'When did he say it? announced US-China AI safety talks Treasury Secretary Scott Bessent'
    """
    users = [m["content"] for m in history if m["role"] == "user" and m["content"].strip()]
    if not users or not is_follow_up(question):
        return question
    exclude = {w.lower() for w in _words(question)}
    carried = _key_terms(users[-1], exclude)
    if len(users) > 1 and is_follow_up(users[-1]):
        # The previous question was itself a follow-up: its own context is one more turn back.
        carried += _key_terms(users[-2], exclude)
    asks_about_someone = bool({w.lower() for w in _words(question)} & _PERSONAL)
    answers = [m["content"] for m in history if m["role"] == "assistant"]
    if asks_about_someone and answers:
        carried += _names(answers[-1], exclude)
    return " ".join([question, *carried]) if carried else question


CONDENSE_PROMPT = (
    "Rewrite the user's last question so that it can be understood without the conversation: replace "
    "pronouns with what they refer to and keep every name and detail. Reply with the rewritten question only."
)


def llm_standalone(question: str, history: Sequence[Message], llm: Any) -> str:
    """Ask a LangChain chat model to rewrite ``question`` as a standalone question.

    Falls back to :func:`heuristic_standalone` when there is no history or the model's reply is
    empty or far longer than a question. Example (``llm`` any LangChain chat model)::

        llm_standalone("when did he say it?", history, llm)   # "When did Scott Bessent announce ...?"
    """
    if not any(m["role"] == "user" for m in history):
        return question
    from langchain_core.messages import HumanMessage, SystemMessage

    transcript = "\n".join(f"{m['role']}: {_MARKER.sub('', m['content']).strip()}" for m in history[-6:])
    reply = llm.invoke(
        [
            SystemMessage(content=CONDENSE_PROMPT),
            HumanMessage(content=f"Conversation:\n{transcript}\n\nLast question: {question}\n\nRewritten question:"),
        ]
    )
    rewritten = _content_text(getattr(reply, "content", reply)).strip().strip('"').strip()
    rewritten = rewritten.splitlines()[0].strip() if rewritten else ""
    if not rewritten or len(rewritten) > 3 * len(question) + 200:
        return heuristic_standalone(question, history)
    return rewritten
