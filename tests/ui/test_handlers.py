"""The page's handlers without a browser: conversation state, uploads, removal, collections, the API.

The answerer is ``tests/ui/fakes.FakeAssistant`` (deterministic citations, an unsupported sentence,
abstention on demand); the index is a real one of three small notes.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from rag.answering import assistant as answering
from rag.service import add_uploads, extractive_only
from tests.ui import fakes
from ui import chat as chat_module
from ui.chat import ChatHandlers
from ui.collections import CollectionManager
from ui.documents import document_rows, remove_document, summary_html
from ui.library import LibraryHandlers


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


def test_answer_streams_after_a_searching_placeholder_then_shows_its_sources(handlers: ChatHandlers) -> None:
    steps = _ask(handlers, "When does the kettle switch off?", [], {})
    chatbot_first, *_ = steps[0]
    assert "Searching the documents" in chatbot_first[-1]["content"]
    assert any("answer streaming" in step[0][-1]["content"] for step in steps[1:-1])
    chatbot, panel, conversation, answers, question_box = steps[-1]
    assert len(conversation) == 1 and conversation[0]["answer_id"] in answers
    assert 'class="cite"' in chatbot[-1]["content"] and "<mark>" in panel
    assert question_box == ""


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
    panel = handlers.show_source(event, conversation, answers)
    assert 'class="source-card selected" data-marker="1"' in panel


def test_a_marker_of_an_undone_answer_changes_nothing(handlers: ChatHandlers) -> None:
    event = gr.EventData(None, {"answer_id": "0123456789ab", "marker": 1})
    assert handlers.show_source(event, [], {}) is not None  # gr.skip(), not an error
    assert not isinstance(handlers.show_source(event, [], {}), str)


def test_undo_removes_the_last_exchange_and_returns_its_question(handlers: ChatHandlers) -> None:
    *_, (_, _, conversation, answers, _) = _ask(handlers, "When does the kettle switch off?", [], {})
    *_, (_, _, conversation, answers, _) = _ask(handlers, "What do tomatoes need?", conversation, answers)
    chatbot, _, conversation, answers, question_box = handlers.undo(conversation, answers)
    assert len(conversation) == 1 and len(answers) == 1 and len(chatbot) == 2
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
    assert 'class="answer abstained"' in chatbot[-1]["content"]
    assert "No passage answered" in panel


def test_empty_collection_says_to_add_documents(handlers: ChatHandlers) -> None:
    empty = handlers.manager.create("empty")
    steps = list(handlers.respond("Anything?", [], {}, str(empty.index_dir), "hybrid", 3, ""))
    chatbot, _, conversation, answers, _ = steps[-1]
    assert "no documents yet" in chatbot[-1]["content"] and not answers and conversation[0]["error"]


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
    header, rows, _, _, _, conversation, answers, _ = library.switch(dropdown["value"])
    assert "0 documents" in header and rows == [] and conversation == [] and answers == {}


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
