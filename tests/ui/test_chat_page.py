"""The chat page in a real headless Chromium, against a real ``rag chat`` over the shared corpus.

One server serves the whole module; every test opens its own tab, which is its own Gradio session.
Tests that upload files or create collections change that server's collections, and use names
no other test asks about.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FINISHED_ANSWER = "#chatbot .answer:not(.streaming)"

# Records every text the streaming answer shows, so a test can tell a streamed answer from one
# that appeared all at once.
WATCH_STREAMING_JS = """
() => {
  window.__partialAnswers = [];
  const chat = document.querySelector('#chatbot');
  new MutationObserver(() => {
    for (const node of chat.querySelectorAll('.answer.streaming')) {
      const text = node.innerText.trim();
      if (text && !node.querySelector('.thinking') && !window.__partialAnswers.includes(text)) {
        window.__partialAnswers.push(text);
      }
    }
  }).observe(chat, {subtree: true, childList: true, characterData: true});
}
"""


def ask(page, question: str):  # type: ignore[no-untyped-def]
    """Type ``question``, press Enter, and return the locator of the answer once it is finished."""
    before = page.locator(FINISHED_ANSWER).count()
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")
    page.wait_for_function(f"document.querySelectorAll('{FINISHED_ANSWER}').length > {before}", timeout=120_000)
    return page.locator(FINISHED_ANSWER).last


def test_answer_streams_in_with_a_clickable_citation_that_highlights_its_passage(page, test_output: Path) -> None:
    page.evaluate(WATCH_STREAMING_JS)
    answer = ask(page, "How do I handle exceptions in Python?")

    partials = page.evaluate("window.__partialAnswers")
    assert len(partials) >= 2, f"the answer did not stream in: saw {partials!r}"
    citation = answer.locator("a.cite").first
    assert citation.is_visible()
    marker = citation.inner_text().strip("[]")

    citation.click()
    selected = page.locator(f"#sources .source-card.selected[data-marker='{marker}']")
    selected.wait_for()
    assert selected.locator("mark").first.is_visible()
    assert selected.locator("mark").first.inner_text().strip()
    assert "Errors and Exceptions" in selected.locator(".card-title").inner_text()
    assert "errors" in selected.locator(".card-meta .path").inner_text()
    page.screenshot(path=str(test_output / "chat-answer-with-sources.png"), full_page=True)


def test_source_list_under_the_answer_opens_the_passage_too(page) -> None:
    answer = ask(page, "How do I define a function with default argument values?")
    chip = answer.locator("a.source-chip").first
    marker = chip.locator(".chip-marker").inner_text().strip()
    chip.click()
    page.locator(f"#sources .source-card.selected[data-marker='{marker}'] mark").first.wait_for()


def test_follow_up_question_uses_the_conversation(page) -> None:
    ask(page, "How do I handle exceptions in Python?")
    follow_up = ask(page, "How do I raise one myself?")

    assert page.locator(FINISHED_ANSWER).count() == 2
    assert not follow_up.evaluate("node => node.classList.contains('abstained')")
    # Without the history "raise one" has nothing to do with exceptions; with it, the sources are about errors.
    follow_up.locator("a.cite").first.click()
    assert "rror" in page.locator("#sources .source-card.selected .card-title").inner_text()


def test_unanswerable_question_gets_a_visible_abstention(page) -> None:
    answer = ask(page, "What is the boiling point of tungsten?")
    assert "abstained" in (answer.get_attribute("class") or "")
    assert answer.locator(".badge").inner_text().strip().lower() == "not in the documents"
    assert answer.locator("a.cite").count() == 0


def test_retry_undo_and_clear_edit_the_conversation(page) -> None:
    ask(page, "What is a Python module?")
    ask(page, "What does the net module do in Node.js?")
    page.click("#undo")
    page.wait_for_function(f"document.querySelectorAll('{FINISHED_ANSWER}').length === 1")
    assert page.input_value("#question textarea") == "What does the net module do in Node.js?"

    page.fill("#question textarea", "")
    first_link = page.locator("#chatbot a.cite").first.get_attribute("href")
    page.click("#retry")
    # A retried answer is a new answer: its links carry a new answer id.
    page.wait_for_function(
        "old => { const link = document.querySelector('#chatbot a.cite');"
        " return link && link.getAttribute('href') !== old && !document.querySelector('#chatbot .answer.streaming'); }",
        arg=first_link,
    )
    assert page.locator("#chatbot .question").count() == 1

    page.click("#clear")
    page.wait_for_function("document.querySelectorAll('#chatbot .question').length === 0")
    assert page.locator("#sources .sources-panel.empty").is_visible()


def test_uploaded_file_is_indexed_and_answers_questions(page, tmp_path: Path) -> None:
    note = tmp_path / "zorblax-protocol.md"
    note.write_text(
        "# The Zorblax protocol\n\n"
        "The Zorblax protocol was designed by Marguerite Okonkwo at the Tallinn harbour laboratory. "
        "It synchronises tide gauges over long-range radio every eleven minutes.\n"
    )
    page.get_by_role("tab", name="Documents").click()
    page.set_input_files("#upload input[type=file]", str(note))
    summary = page.locator("#upload-summary .pill.added")
    summary.wait_for(timeout=120_000)
    assert summary.inner_text().startswith("1 added")
    assert page.locator("#documents").get_by_text("zorblax-protocol.md").count() >= 1

    page.get_by_role("tab", name="Chat").click()
    answer = ask(page, "Who designed the Zorblax protocol?")
    assert "Okonkwo" in answer.inner_text()
    answer.locator("a.cite").first.click()
    assert "zorblax-protocol.md" in page.locator("#sources .source-card.selected .card-meta").inner_text()


def test_upload_of_an_unsupported_type_says_why(page, tmp_path: Path) -> None:
    page.get_by_role("tab", name="Documents").click()
    # The file picker filters by type; a renamed binary still has to be refused with a reason.
    fake = tmp_path / "slides.pdf"
    fake.write_bytes(b"\x00\x01 not a pdf at all")
    page.set_input_files("#upload input[type=file]", str(fake))
    failure = page.locator("#upload-summary .failures li")
    failure.wait_for(timeout=120_000)
    assert "slides.pdf" in failure.inner_text()


def test_document_text_with_markup_is_shown_as_text(page, tmp_path: Path) -> None:
    hostile = tmp_path / "quokka-notes.txt"
    hostile.write_text(
        '<img src=x onerror="window.__xss = 3"> Quokka care\n\nQuokkas eat the leaves of the Guichenot shrub every morning.\n\n'
        '<script>window.__xss = 1</script>\n<img src=x onerror="window.__xss = 2">\n\n'
        "The keeper writes <b>bold claims</b> about quokkas and Guichenot leaves.\n"
    )
    page.get_by_role("tab", name="Documents").click()
    page.set_input_files("#upload input[type=file]", str(hostile))
    page.locator("#upload-summary .pill.added").wait_for(timeout=120_000)
    page.get_by_role("tab", name="Chat").click()

    answer = ask(page, "What do quokkas eat every morning?")
    answer.locator("a.cite").first.click()
    card = page.locator("#sources .source-card.selected")
    card.wait_for()
    panel_text = page.locator("#sources").inner_text()
    assert "<script>window.__xss = 1</script>" in panel_text
    assert '<img src=x onerror="window.__xss = 2">' in panel_text
    assert page.evaluate("window.__xss") is None
    assert page.locator("#sources img, #chatbot .answer img, #sources script, #sources b").count() == 0
    # The title (the file's first line) is markup too: the documents table and the remove list show it as text.
    page.get_by_role("tab", name="Documents").click()
    page.locator("#documents").get_by_text("Quokka care").first.wait_for()
    page.click("#remove-choice input")
    page.get_by_role("option", name=re.compile("Quokka care")).wait_for()
    assert page.evaluate("window.__xss") is None
    assert page.locator("#documents img, #remove-choice img, .app-header img").count() == 0


def test_new_collection_starts_empty_and_says_so(page) -> None:
    page.locator("#new-collection").get_by_text("New collection").click()
    page.fill("#new-collection-name textarea, #new-collection-name input", "scratch-empty")
    page.click("#create-collection")
    page.locator(".collection-pill .pill-name", has_text="scratch-empty").wait_for()
    assert page.locator(".collection-pill .pill-count").inner_text() == "0 documents"

    answer = ask(page, "Is anything here?")
    assert "failed" in (answer.get_attribute("class") or "")
    assert "no documents" in answer.inner_text()


def test_phone_width_shows_the_chat_first(browser, chat_server: str, test_output: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.goto(chat_server)
    phone.wait_for_selector("#question textarea")
    phone.wait_for_function("!document.querySelector('#settings.open')")  # the sidebar gets out of the way
    answer = ask(phone, "How do I handle exceptions in Python?")
    assert answer.is_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width} px wide)"
    phone.screenshot(path=str(test_output / "chat-phone.png"), full_page=True)
    context.close()
