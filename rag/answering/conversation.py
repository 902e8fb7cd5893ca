"""Turn a follow-up question into a standalone query, using the chat history.

History is a list of ``{"role": "user"|"assistant", "content": str}`` messages (Gradio 6's format);
``(user, assistant)`` pairs and LangChain messages are accepted too.

Without an LLM, :func:`heuristic_standalone` applies a documented rule: a question that leans on the
conversation (it has a pronoun such as "he", "it", "that", or fewer than three content words) gets the
key terms of the previous question appended, and, when it refers to a person or thing with "he/she/they",
the names of the previous answer too. Retrieval is lexical and dense, so extra terms in the query act
as context; they do not need to form a sentence.

Before that, :func:`resolve_follow_up` puts the antecedent in the pronoun's place where the previous
question shows it (:class:`Standalone`): "How do I catch it?" after "How do I raise an exception in
Python?" becomes "How do I catch an exception?", with "Python" carried as context, and the previous
question's verb ("raise") and the adverbs that went with it ("only once") are not carried, because the
follow-up asks for another action on the same thing (remove/add, catch/raise, connect/serve). "he/she"
becomes the person the previous question names ("What did Bessent say ...?") or, failing that, the
first name of the previous answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from index.bm25 import tokenize

__all__ = [
    "Message",
    "Standalone",
    "heuristic_standalone",
    "is_follow_up",
    "llm_standalone",
    "normalise_history",
    "resolve_follow_up",
]

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


@dataclass(frozen=True)
class Standalone:
    """A question made to stand alone.

    ``question`` is the question as asked; ``resolved`` the same with its pronoun replaced by ``antecedent``,
    what it refers to, where that is known (else ``question``); ``context`` the terms carried over besides.

    >>> follow_up = Standalone("How do I catch it?", "How do I catch an exception?", "an exception", "Python")
    >>> follow_up.query
    'How do I catch an exception? Python'
    >>> follow_up.scored
    'How do I catch it? an exception Python'
    """

    question: str
    resolved: str = ""
    antecedent: str = ""
    context: str = ""

    def __post_init__(self) -> None:
        if not self.resolved:
            object.__setattr__(self, "resolved", self.question)

    @property
    def query(self) -> str:
        """What retrieval searches for: the resolved question, then its context."""
        return f"{self.resolved} {self.context}".strip()

    @property
    def scored(self) -> str:
        """What the answer's sentences are scored against: the question as asked, then what it refers to and
        the context, which ``Assistant.stream_answer`` weighs below the question's own words."""
        if not self.antecedent:
            return self.query
        return " ".join(part for part in (self.question, self.antecedent, self.context) if part)


def heuristic_standalone(question: str, history: Sequence[Message]) -> str:
    """``question`` with the context it leans on appended, or unchanged when it stands alone.

    >>> history = [{"role": "user", "content": "Who announced the US-China AI safety talks?"},
    ...            {"role": "assistant", "content": "Treasury Secretary Scott Bessent announced them [1]."}]
    >>> heuristic_standalone("When did he say it?", history)
    'When did Treasury Secretary Scott Bessent say it? announced US-China AI safety talks'
    """
    return resolve_follow_up(question, history).query


def resolve_follow_up(question: str, history: Sequence[Message]) -> Standalone:
    """``question`` made to stand alone (see the module docstring); unchanged, with no context, when it does.

    >>> history = [{"role": "user", "content": "How do I raise an exception in Python?"},
    ...            {"role": "assistant", "content": "Use the raise statement [1]."}]
    >>> resolve_follow_up("How do I catch it?", history).query
    'How do I catch an exception? Python'
    """
    users = [m["content"] for m in history if m["role"] == "user" and m["content"].strip()]
    if not users or not is_follow_up(question):
        return Standalone(question)
    answers = [m["content"] for m in history if m["role"] == "assistant"]
    previous = users[-1]
    resolved, antecedent, carried_from = _resolve_pronoun(question, previous, answers[-1] if answers else "")
    exclude = {w.lower() for w in _words(resolved)} | {antecedent.lower()}
    carried = _key_terms(carried_from, exclude)
    if len(users) > 1 and is_follow_up(previous):
        # The previous question was itself a follow-up: its own context is one more turn back.
        carried += _key_terms(users[-2], exclude)
    asks_about_someone = bool({w.lower() for w in _words(question)} & _PERSONAL)
    if asks_about_someone and answers:
        carried += _names(answers[-1], exclude)
    return Standalone(question, resolved, antecedent, " ".join(carried))


# "How do I listen for an event only once in Node.js?": the action asked about and what follows it.
_HOW_TO_ACTION = re.compile(
    r"^\s*(?:and\s+|so\s+|then\s+)?how\s+(?:(?:do|can|could|should|would|will|must)\s+(?:i|you|we|one)|to)\s+"
    r"(?P<verb>[a-z]+)\b(?P<rest>[^?]*)",
    re.IGNORECASE,
)
# "How are citations checked?", "What is a tuple?", "What does the pass statement do?": the thing asked about.
_SUBJECT = re.compile(r"^\s*(?:how|what|why|when|where)\s+(?:is|are|was|were|does|do)\s+(?P<rest>[^?]+)", re.IGNORECASE)
# Words after the subject of "what does X do", "how is X made": the question's verb, not its subject.
_SUBJECT_VERBS = frozenset("do does done make made use used mean means work works".split())

# "What did Bessent say about the talks?": the person asked about.
_PERSON_ASKED = re.compile(
    r"^\s*(?i:what|when|where|why|how|which\s+\w+)\s+(?i:did|does|do|has|had|will|would|was|is)\s+"
    r"(?P<person>[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*)\s+[a-z]"
)
_PREPOSITIONS = frozenset(
    "in on at to for from with by into onto over under about using via without within through across against "
    "between after before during like as".split()
)
# Words that end a noun phrase: what modifies the previous action (adverbs) or starts a clause.
_PHRASE_END = _PREPOSITIONS | frozenset(
    "only once again also just and or but so when while if whether that which who then".split()
)
_THING_PRONOUNS = {"it": 1, "them": 2, "they": 2, "one": 1, "ones": 2}
"""Pronouns that stand for a thing, and the number (1 singular, 2 plural) they take."""
_PERSON_PRONOUNS = frozenset("he she him her".split())
_NOT_BEFORE_ONE = frozenset("which this that the each any every no a another some can could do does should would".split())
MAX_ANTECEDENT_WORDS = 6
"""An antecedent longer than this many words is likely a clause the rule misread, not a noun phrase."""


def _resolve_pronoun(question: str, previous: str, answer: str) -> tuple[str, str, str]:
    """``question`` with its first pronoun replaced by its antecedent, the antecedent ("" when none is known),
    and the text whose key terms are carried.

    A thing ("it", "them", "one") is the object of the previous how-to question ("raise *an exception* in
    Python") or the subject of a previous "how is / what is" question ("How are *citations* checked?"); then
    only what follows the object is carried ("in Python"), not the previous verb nor its adverbs. A person
    ("he", "she") is whom the previous question names, else the first name of the previous answer; then the
    previous question is carried whole. Anything else is left as it was, and the whole previous question carried.
    """
    words = _words(question)
    lowered = [w.lower() for w in words]
    person = next((w for w in words if w.lower() in _PERSON_PRONOUNS), None)
    if person is not None:
        asked = _PERSON_ASKED.match(previous)
        names = [asked.group("person")] if asked else _names(answer, set())
        if names:
            return _replace_word(question, person, names[0]), names[0], previous
        return question, "", previous
    things = [
        word
        for position, word in enumerate(lowered)
        if word in _THING_PRONOUNS
        # "one" after "which", "this", "how can": a determiner or "someone", not a pronoun for the thing.
        and not (word in ("one", "ones") and position > 0 and lowered[position - 1] in _NOT_BEFORE_ONE)
    ]
    # "it" before "one": "How can one remove it?" asks about "it".
    thing = next((words[lowered.index(t)] for t in sorted(things, key=lambda t: t in ("one", "ones"))), None)
    if thing is None or "there" in lowered:
        return question, "", previous
    antecedent, rest = _object_of(previous, acting=bool(_HOW_TO_ACTION.match(question)))
    if not antecedent:
        return question, "", previous
    return _replace_word(question, thing, antecedent), antecedent, rest


def _object_of(previous: str, acting: bool) -> tuple[str, str]:
    """The noun phrase the previous question acts on or asks about, and the text after it to carry ("", "" if none).

    The object of a how-to question counts only when the follow-up is ``acting`` on something itself ("How do
    I remove it?"): "Does it work on Windows?" after "How do I watch a file?" asks about the watching.
    """
    action = _HOW_TO_ACTION.match(previous)
    if action:
        if not acting:
            return "", ""
        phrase, after = _noun_phrase(action.group("rest").split())
        # The adverbs of the previous action ("only once") are not carried; its places and objects are ("in Python").
        while after and after[0].lower() not in _PREPOSITIONS:
            after = after[1:]
        return phrase, " ".join(after)
    subject = _SUBJECT.match(previous)
    if subject:
        phrase, after = _noun_phrase(subject.group("rest").split(), _SUBJECT_VERBS)
        # What follows the subject ("checked", "paused in Node.js") is carried.
        return phrase, " ".join(after)
    return "", ""


def _noun_phrase(words: list[str], verbs: frozenset[str] = frozenset()) -> tuple[str, list[str]]:
    """The noun phrase ``words`` start with (a leading preposition skipped: "listen *for* an event"), and the rest.

    The phrase ends before a preposition other than "of", an adverb ("only", "-ly"), a conjunction, or, when
    ``verbs`` are given (after "what is/does"), a participle or one of ``verbs``. Longer than
    ``MAX_ANTECEDENT_WORDS`` words, it is no phrase the rule can trust: ("", words).
    """
    while words and words[0].lower() in _PREPOSITIONS:
        words = words[1:]
    phrase: list[str] = []
    for word in words:
        lower = word.lower()
        if lower in _PHRASE_END or lower.endswith("ly") or (verbs and (lower in verbs or lower.endswith("ed"))):
            break
        phrase.append(word)
    if not phrase or len(phrase) > MAX_ANTECEDENT_WORDS:
        return "", words
    return " ".join(phrase), words[len(phrase) :]


def _replace_word(text: str, word: str, replacement: str) -> str:
    """``text`` with the first whole-word ``word`` replaced."""
    return re.sub(rf"\b{re.escape(word)}\b", lambda _: replacement, text, count=1)


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
