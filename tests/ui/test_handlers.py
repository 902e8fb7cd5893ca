"""The page's handlers without a browser: conversation state, uploads, removal, collections, the API.

The answerer is ``tests/ui/fakes.FakeAssistant`` (deterministic citations, an unsupported sentence,
abstention on demand); the index is a real one of three small notes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from rag.answering import assistant as answering
from rag.service import add_uploads, extractive_only
from tests.ui import fakes
from ui import chat as chat_module
from ui import saved as saved_module
from ui.chat import ChatHandlers
from ui.collections import CollectionManager
from ui.documents import document_rows, remove_document, summary_html
from ui.feedback import FeedbackHandlers
from ui.library import LibraryHandlers
from ui.saved import SavedConversationHandlers


@pytest.fixture
def manager(notes_root: Path) -> CollectionManager:
    return CollectionManager(notes_root, notes_root / "notes")


@pytest.fixture
def handlers(manager: CollectionManager, monkeypatch: pytest.MonkeyPatch) -> ChatHandlers:
    monkeypatch.setattr(answering, "Assistant", fakes.FakeAssistant)
    monkeypatch.setattr(chat_module, "WORD_INTERVAL_SECONDS", 0.0)
    fakes.histories.clear()
    return ChatHandlers(manager, extractive_only())


def _ask(handlers: ChatHandlers, question: str, conversation: list, answers: dict) -> list[tuple]:
    settings = (str(handlers.manager.default_dir), "hybrid", 3, "")
    return list(handlers.respond(question, conversation, answers, *settings))


def messages(chatbot) -> list[dict]:  # type: ignore[no-untyped-def]
    """The chatbot's messages, whether a handler returned them as a list or as an update with thumbs."""
    return chatbot["value"] if isinstance(chatbot, dict) else chatbot


def test_answer_streams_after_a_searching_placeholder_then_shows_its_sources(handlers: ChatHandlers) -> None:
    steps = _ask(handlers, "When does the kettle switch off?", [], {})
    chatbot_first, *_ = steps[0]
    assert "Searching the documents" in chatbot_first[-1]["content"]
    assert any("answer streaming" in step[0][-1]["content"] for step in steps[1:-1])
    chatbot, panel, conversation, answers, question_box = steps[-1]
    assert len(conversation) == 1 and conversation[0]["answer_id"] in answers
    assert 'class="cite"' in messages(chatbot)[-1]["content"] and "<mark>" in panel
    assert question_box == ""
    assert conversation[0]["settings"] == {
        "collection": str(handlers.manager.default_dir), "mode": "hybrid", "k": 3, "backend": handlers.backends.labels[0]
    }


def test_follow_up_is_asked_with_the_plain_text_history(handlers: ChatHandlers) -> None:
    *_, (_, _, conversation, answers, _) = _ask(handlers, "When does the kettle switch off?", [], {})
    _ask(handlers, "And how often should it be descaled?", conversation, answers)
    history = fakes.histories[-1]
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"] == "When does the kettle switch off?"
    assert history[1]["content"] == answers[conversation[0]["answer_id"]].text  # its text, not its HTML


def test_clicking_a_marker_shows_that_source_selected(handlers: ChatHandlers) -> None:
    *_, (_, _, conversation, answers, _) = _ask(handlers, "When does the kettle switch off?", [], {})
    answer_id = conversation[0]["answer_id"]
    event = gr.EventData(None, {"answer_id": answer_id, "marker": 1})
    panel = handlers.show_source(event, conversation, answers, str(handlers.manager.default_dir))
    assert 'class="source-card selected" data-marker="1"' in panel
    # The path is shown from the folder the notes were added from, not as an absolute path.
    assert re.search(r'class="path" title="/[^"]+">notes-files\d*/[a-z]+\.(txt|md)<', panel)


def test_a_marker_of_an_undone_answer_changes_nothing(handlers: ChatHandlers) -> None:
    event = gr.EventData(None, {"answer_id": "0123456789ab", "marker": 1})
    assert handlers.show_source(event, [], {}) is not None  # gr.skip(), not an error
    assert not isinstance(handlers.show_source(event, [], {}), str)


def test_undo_removes_the_last_exchange_and_returns_its_question(handlers: ChatHandlers) -> None:
    *_, (_, _, conversation, answers, _) = _ask(handlers, "When does the kettle switch off?", [], {})
    *_, (_, _, conversation, answers, _) = _ask(handlers, "What do tomatoes need?", conversation, answers)
    chatbot, _, conversation, answers, question_box = handlers.undo(conversation, answers, "")
    assert len(conversation) == 1 and len(answers) == 1 and len(messages(chatbot)) == 2
    assert question_box == "What do tomatoes need?"


def test_retry_replaces_the_last_answer(handlers: ChatHandlers) -> None:
    *_, (_, _, conversation, answers, _) = _ask(handlers, "What do tomatoes need?", [], {})
    first_id = conversation[0]["answer_id"]
    *_, (_, _, conversation, answers, _) = handlers.retry(
        conversation, answers, str(handlers.manager.default_dir), "bm25", 2, ""
    )
    assert len(conversation) == 1 and conversation[0]["answer_id"] != first_id
    assert conversation[0]["question"] == "What do tomatoes need?"


def test_unanswerable_question_is_an_abstention_in_the_chat(handlers: ChatHandlers) -> None:
    *_, (chatbot, panel, _, _, _) = _ask(handlers, "An unanswerable question?", [], {})
    assert 'class="answer abstained"' in messages(chatbot)[-1]["content"]
    assert "No passage answered" in panel


def test_empty_collection_says_to_add_documents(handlers: ChatHandlers) -> None:
    empty = handlers.manager.create("empty")
    steps = list(handlers.respond("Anything?", [], {}, str(empty.index_dir), "hybrid", 3, ""))
    chatbot, _, conversation, answers, _ = steps[-1]
    assert "no documents yet" in messages(chatbot)[-1]["content"] and not answers and conversation[0]["error"]


def test_ask_api_returns_json_and_checks_its_settings(handlers: ChatHandlers) -> None:
    result = handlers.ask_api("What do tomatoes need?", k=2, collection="notes")
    assert result["citations"] and "[1]" in result["text"]
    with pytest.raises(gr.Error, match="mode must be one of"):
        handlers.ask_api("What do tomatoes need?", mode="fuzzy")
    with pytest.raises(gr.Error, match="unknown collection"):
        handlers.ask_api("What do tomatoes need?", collection="../../etc")


# ---- documents ------------------------------------------------------------------------------


def test_upload_adds_supported_files_and_explains_the_rest(manager: CollectionManager, tmp_path: Path) -> None:
    good = tmp_path / "bees.md"
    good.write_text("# Bees\n\nBees dance to tell the hive where the flowers are.\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    program = tmp_path / "setup.exe"
    program.write_bytes(b"MZ")
    collection = manager.get()
    progress: list[tuple[int, int, str]] = []

    result = add_uploads(collection, [good, empty, program], progress=lambda *step: progress.append(step))

    assert result.report.added == 1
    assert [(f.file, f.status) for f in result.files] == [
        ("setup.exe", "rejected"),
        ("bees.md", "added"),
        ("empty.txt", "failed"),
    ]
    assert result.files[1].document_id == str((collection.uploads_dir / "bees.md").resolve())
    assert [Path(f.path).name for f in result.report.failed] == ["empty.txt"]
    assert progress == [(0, 2, "bees.md"), (1, 2, "empty.txt")]
    assert (collection.uploads_dir / "bees.md").is_file() and not (collection.uploads_dir / "empty.txt").exists()
    summary = summary_html(result)
    assert "1 added" in summary and "2 not added" in summary and "unsupported type .exe" in summary
    with collection.reading() as retriever:
        assert retriever.search("where are the flowers", k=1)[0].title == "Bees"


def test_the_same_upload_twice_is_unchanged(manager: CollectionManager, tmp_path: Path) -> None:
    note = tmp_path / "bees.md"
    note.write_text("# Bees\n\nBees dance.\n")
    collection = manager.get()
    add_uploads(collection, [note])
    assert add_uploads(collection, [note]).report.unchanged == 1


def test_oversized_upload_is_refused_with_the_limit(manager: CollectionManager, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("x" * 100)
    result = add_uploads(manager.get(), [big], max_bytes=10)
    assert [f.status for f in result.files] == ["rejected"] and "limit" in result.files[0].reason


def test_removing_an_uploaded_document_deletes_its_copy(manager: CollectionManager, tmp_path: Path) -> None:
    note = tmp_path / "bees.md"
    note.write_text("# Bees\n\nBees dance.\n")
    collection = manager.get()
    add_uploads(collection, [note])
    copy = collection.uploads_dir / "bees.md"
    message = remove_document(collection, str(copy.resolve()))
    assert message == "Removed “Bees”."
    assert not copy.exists()
    assert "Bees" not in [row[0] for row in document_rows(collection)]


def test_markup_in_titles_and_reasons_is_escaped_in_the_summary(manager: CollectionManager, tmp_path: Path) -> None:
    hostile = tmp_path / "<img src=x onerror=alert(1)>.exe"
    hostile.write_bytes(b"x")
    summary = summary_html(add_uploads(manager.get(), [hostile]))
    assert "<img" not in summary and "&lt;img" in summary


# ---- collections ----------------------------------------------------------------------------


def test_new_collection_is_listed_and_switching_clears_the_conversation(manager: CollectionManager) -> None:
    library = LibraryHandlers(manager)
    dropdown, name_box, status = library.create("Project X")
    assert dropdown["value"].endswith("Project X") and name_box == "" and "Created" in status
    assert "Project X" in [label for label, _ in manager.choices()]
    header, rows, _, _, _, conversation, answers, _, meta = library.switch(dropdown["value"], {"collection": "elsewhere"})
    assert "0 documents" in header and rows == [] and conversation == [] and answers == {}
    assert meta["collection"] == dropdown["value"]
    # A reopened conversation of that collection is not cleared by the switch its reopening causes.
    *_, conversation, answers, _, meta = library.switch(dropdown["value"], {"collection": dropdown["value"]})
    assert all(isinstance(output, dict) and output.get("__type__") == "update" for output in (conversation, meta))


def test_bad_collection_names_are_refused(manager: CollectionManager) -> None:
    for name in ("", "../escape", "a/b", ".hidden", "x" * 65):
        _, _, status = LibraryHandlers(manager).create(name)
        assert "error-text" in status


def test_examples_come_from_the_collection(manager: CollectionManager) -> None:
    *_, examples = LibraryHandlers(manager).collection_view(str(manager.default_dir))
    questions = [example["text"] for example in examples["examples"]]
    assert questions and any("Tomatoes" in q or "tomatoes" in q or "Garden" in q for q in questions)


def test_a_change_by_another_process_is_picked_up(manager: CollectionManager, tmp_path: Path) -> None:
    from index.ingest import add_to_index

    collection = manager.get()
    note = tmp_path / "owls.txt"
    note.write_text("Owls\n\nBarn owls hunt by sound in complete darkness.\n")
    add_to_index(collection.index_dir, [note], show_progress=False)  # as `rag add` would, from outside
    with collection.reading() as retriever:
        assert retriever.search("how do barn owls hunt", k=1)[0].title == "Owls"


# ---- stop, saved conversations, export, feedback ------------------------------------------------


def _user(name: str | None = None) -> SimpleNamespace:
    """What a handler reads of ``gr.Request``: the login name (None without ``--auth``)."""
    return SimpleNamespace(username=name)


def test_stop_ends_the_answer_and_keeps_the_question_for_retry(handlers: ChatHandlers) -> None:
    settings = (str(handlers.manager.default_dir), "hybrid", 3, "")
    tab, other_tab = SimpleNamespace(session_hash="tab1"), SimpleNamespace(session_hash="tab2")
    handlers.stop(tab)  # a Stop while nothing is being answered does not stop the next answer
    answering = handlers.respond("What do tomatoes need?", [], {}, *settings, tab)
    next(answering)  # "Searching the documents…"
    handlers.stop(other_tab)  # another tab's Stop is not this one's
    next(answering)  # the first words
    handlers.stop(tab)
    *_, (chatbot, _, conversation, answers, _) = list(answering)
    assert conversation[0]["question"] == "What do tomatoes need?" and conversation[0]["error"] == chat_module.STOPPED
    assert not answers and "Stopped before the answer was finished" in messages(chatbot)[-1]["content"]

    *_, (chatbot, _, conversation, answers, _) = handlers.retry(conversation, {}, *settings, tab)
    assert len(conversation) == 1 and "error" not in conversation[0] and conversation[0]["answer_id"] in answers


def test_a_saved_conversation_reopens_after_a_reload_with_its_citations(handlers: ChatHandlers) -> None:
    saved_conversations = SavedConversationHandlers(handlers)
    *_, (_, _, conversation, answers, _) = _ask(handlers, "When does the kettle switch off?", [], {})
    meta, browser, listing, export_button = saved_conversations.persist(conversation, answers, {}, None, _user())
    assert listing["choices"] == [("When does the kettle switch off?", meta["id"])]
    browser = json.loads(json.dumps(browser))  # what the browser keeps is plain JSON

    # A reload: a new session whose only memory is the browser's storage.
    chatbot, panel, conversation2, answers2, meta2, *_ = saved_conversations.load(browser, "", [], _user())
    assert meta2["id"] == meta["id"] and conversation2[0]["question"] == "When does the kettle switch off?"
    # A question asked before the page finished loading is not replaced by the saved one.
    assert saved_conversations.load(browser, "", conversation, _user())[2] == gr.skip()
    assert 'class="cite"' in messages(chatbot)[-1]["content"] and "<mark>" in panel
    answer_id = conversation2[0]["answer_id"]
    event = gr.EventData(None, {"answer_id": answer_id, "marker": 1})
    assert 'data-marker="1"' in handlers.show_source(event, conversation2, answers2)

    markdown = Path(export_button["value"]).read_text()
    quote = answers[conversation[0]["answer_id"]].citations[0].quote
    quoted = " ".join(markdown.replace("\n  > ", " ").split())  # a quote of several lines, as one
    assert markdown.startswith("# When does the kettle switch off?") and " ".join(quote.split()) in quoted
    # The copy button of the answer carries the same Markdown for that one answer.
    assert "answer-export" in messages(chatbot)[-1]["content"] and "Sources:" in messages(chatbot)[-1]["content"]


def test_renamed_and_deleted_conversations(handlers: ChatHandlers) -> None:
    saved_conversations = SavedConversationHandlers(handlers)
    *_, (_, _, conversation, answers, _) = _ask(handlers, "What do tomatoes need?", [], {})
    meta, browser, *_ = saved_conversations.persist(conversation, answers, {}, None, _user())
    meta, browser, listing, _ = saved_conversations.rename("Garden", conversation, answers, meta, browser, _user())
    assert listing["choices"] == [("Garden", meta["id"])]
    *opened, browser = saved_conversations.delete(meta, "", browser, _user())
    assert browser == {"conversations": []} and opened[2] == [] and opened[7]["choices"] == []


def test_with_a_login_each_user_has_their_own_conversations_on_the_server(handlers: ChatHandlers) -> None:
    saved_conversations = SavedConversationHandlers(handlers)
    *_, (_, _, conversation, answers, _) = _ask(handlers, "What do tomatoes need?", [], {})
    meta, browser, listing, _ = saved_conversations.persist(conversation, answers, {}, None, _user("ada"))
    assert browser == gr.skip() and listing["choices"] == [("What do tomatoes need?", meta["id"])]

    bob = saved_conversations.load(None, "", [], _user("bob"))
    assert bob[2] == [] and bob[7]["choices"] == []
    assert saved_conversations.reopen(meta["id"], None, _user("bob"))[2] == gr.skip()
    ada = saved_conversations.load(None, "", [], _user("ada"))
    assert ada[2][0]["question"] == "What do tomatoes need?"


def test_browser_storage_keeps_the_newest_conversations_that_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(saved_module, "MAX_BROWSER_CHARS", 400)
    stored: dict | None = None
    for number in range(10):
        stored = saved_module.upsert_browser(stored, {"id": f"c{number}", "title": "x" * 60})
    ids = [c["id"] for c in stored["conversations"]]
    assert ids[0] == "c9" and 1 < len(ids) < 10 and ids == sorted(ids, reverse=True)


def test_thumbs_down_with_a_correction_is_kept_with_what_was_asked_and_shown(handlers: ChatHandlers) -> None:
    from rag.chatlog import FeedbackStore

    feedback = FeedbackHandlers(handlers)
    *_, (_, _, conversation, answers, _) = _ask(handlers, "When does the kettle switch off?", [], {})
    *_, (_, _, conversation, answers, _) = _ask(handlers, "And how often descale it?", conversation, answers)
    meta = {"id": "conv1"}
    dislike = gr.LikeData(None, {"index": 3, "value": ["..."], "liked": False})
    conversation, form, heading, *_, target, _ = feedback.rate(dislike, conversation, answers, meta, _user())
    assert form["visible"] and "And how often descale it?" in heading
    assert conversation[1]["feedback"] == "down" and conversation[0].get("feedback") is None

    form, target_after, status = feedback.send(
        target, "It talks about the switch", "every month", "kettle.txt", conversation, answers, meta, _user()
    )
    assert not form["visible"] and target_after == {} and "marked wrong" in status
    [record] = FeedbackStore(handlers.manager.default_dir).all()
    second = answers[conversation[1]["answer_id"]]
    assert (record.question, record.rating, record.note) == ("And how often descale it?", "down", "It talks about the switch")
    assert (record.correct_answer, record.correct_source) == ("every month", "kettle.txt")
    assert record.history[0] == {"role": "user", "content": "When does the kettle switch off?"}
    assert record.answer["text"] == second.text and len(record.answer["passages"]) == len(second.passages)
    assert record.settings["mode"] == "hybrid" and record.settings["k"] == 3 and record.conversation_id == "conv1"

    # Clicking the thumb again takes the judgement back.
    undo = gr.LikeData(None, {"index": 3, "value": ["..."], "liked": ""})
    conversation, *_ = feedback.rate(undo, conversation, answers, meta, _user())
    assert "feedback" not in conversation[1] and FeedbackStore(handlers.manager.default_dir).all() == []


def test_undoing_the_only_exchange_drops_the_saved_conversation(handlers: ChatHandlers) -> None:
    saved_conversations = SavedConversationHandlers(handlers)
    *_, (_, _, conversation, answers, _) = _ask(handlers, "What do tomatoes need?", [], {})
    meta, browser, *_ = saved_conversations.persist(conversation, answers, {}, None, _user())
    _, _, conversation, answers, _ = handlers.undo(conversation, answers, "")
    _, browser, listing, export_button = saved_conversations.persist(conversation, answers, meta, browser, _user())
    assert browser == {"conversations": []} and listing["choices"] == [] and export_button["value"] is None
