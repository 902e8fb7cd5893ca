"""The chat page in a real headless Chromium, against a real ``rag chat`` over the shared corpus.

One server serves the whole module; every test opens its own tab, which is its own Gradio session.
Tests that upload files or create collections change that server's collections, and use names
no other test asks about.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import server_environment

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


# Relative luminance (0 dark .. 1 light) of an element's computed colour property.
LUMINANCE = """(el, property) => {
  const [r, g, b] = getComputedStyle(el)[property].match(/[\\d.]+/g).map(Number);
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}"""


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


def test_stop_ends_an_answer_and_retry_asks_the_question_again(page) -> None:
    page.fill("#question textarea", "How do I read a file line by line in Python?")
    page.press("#question textarea", "Enter")
    page.wait_for_selector("#chatbot .answer.streaming")  # searching or being written
    page.click("#stop")
    stopped = page.locator("#chatbot .answer.failed")
    stopped.wait_for()
    assert "Stopped" in stopped.inner_text() and page.locator("#chatbot .question").count() == 1
    page.click("#retry")
    page.locator(FINISHED_ANSWER + ":not(.failed)").wait_for(timeout=120_000)
    assert page.locator("#chatbot .question").count() == 1 and page.locator("#chatbot .answer.failed").count() == 0


def test_unanswerable_question_gets_a_visible_abstention(page) -> None:
    answer = ask(page, "What is the boiling point of tungsten?")
    assert "abstained" in (answer.get_attribute("class") or "")
    assert answer.locator(".badge").inner_text().strip().lower() == "not in the documents"
    assert answer.locator("a.cite").count() == 0


def test_retry_undo_and_new_conversation_edit_the_conversation(page) -> None:
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

    page.click("#new-conversation")
    page.wait_for_function("document.querySelectorAll('#chatbot .question').length === 0")
    assert page.locator("#sources .sources-panel.empty").is_visible()
    # The conversation that was open stays saved, under its first question.
    assert page.locator("#conversations label", has_text="What is a Python module?").count() == 1


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


def test_phone_width_shows_the_chat_first_with_no_sideways_scroll(browser, chat_server: str, test_output: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.goto(chat_server)
    phone.wait_for_selector("#question textarea")
    phone.wait_for_function("!document.querySelector('#settings.open')")  # the sidebar gets out of the way
    # The sources panel, which falls below the chat on a phone, starts folded ...
    phone.wait_for_function("!document.querySelector('#sources-accordion > button.label-wrap.open')")
    answer = ask(phone, "How do I handle exceptions in Python?")
    assert answer.is_visible()
    assert not phone.locator("#sources .source-card").first.is_visible()
    # ... and a click on a marker unfolds it at the passage.
    answer.locator("a.cite").first.click()
    phone.locator("#sources .source-card.selected mark").first.wait_for(state="visible")
    phone.wait_for_timeout(500)  # let the smooth scroll settle before measuring and the screenshot
    width = phone.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
    assert width <= 390, f"the page scrolls sideways on a phone ({width} px wide)"
    phone.evaluate("window.scrollTo(0, 0)")
    phone.screenshot(path=str(test_output / "chat-phone.png"))
    context.close()


def test_a_conversation_survives_a_reload_and_reopens_with_clickable_citations(page) -> None:
    # Shift+Enter starts a new line instead of sending; Enter sends the two lines as one question.
    page.fill("#question textarea", "How do I define a function")
    page.press("#question textarea", "Shift+Enter")
    page.type("#question textarea", "with default argument values?")
    assert page.input_value("#question textarea") == "How do I define a function\nwith default argument values?"
    assert page.locator("#chatbot .question").count() == 0
    before = page.locator(FINISHED_ANSWER).count()
    page.press("#question textarea", "Enter")
    page.wait_for_function(f"document.querySelectorAll('{FINISHED_ANSWER}').length > {before}", timeout=120_000)
    listed = page.locator("#conversations label", has_text="How do I define a function")
    listed.wait_for()

    page.reload()
    page.wait_for_selector(FINISHED_ANSWER)  # the last conversation is open again after the reload
    assert listed.count() == 1
    page.click("#new-conversation")
    page.wait_for_function("document.querySelectorAll('#chatbot .question').length === 0")

    listed.click()
    answer = page.locator(FINISHED_ANSWER).last
    answer.wait_for()
    citation = answer.locator("a.cite").first
    marker = citation.inner_text().strip("[]")
    citation.click()
    page.locator(f"#sources .source-card.selected[data-marker='{marker}'] mark").first.wait_for()


def test_copy_and_export_carry_the_answer_with_its_quoted_sources(page) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    answer = ask(page, "How do I handle exceptions in Python?")
    answer.locator("a.cite").first.click()
    highlighted = " ".join(page.locator("#sources .source-card.selected mark").first.inner_text().split())

    page.locator("#chatbot a.copy-answer").last.click()
    page.wait_for_function("() => !!window.__ragLastCopy")
    copied = page.evaluate("navigator.clipboard.readText()")
    flat = " ".join(copied.replace("\n  > ", " ").split())
    assert copied.startswith("### How do I handle exceptions in Python?") and "Sources:" in copied
    assert highlighted in flat, f"{highlighted!r} is not quoted in {copied!r}"

    with page.expect_download() as download:
        page.click("#export")
    exported = Path(download.value.path()).read_text()
    assert exported.startswith("# How do I handle exceptions in Python?")
    assert highlighted in " ".join(exported.replace("\n  > ", " ").split())


def test_thumbs_down_with_a_correction_becomes_a_suite_that_rag_eval_runs(
    page, corpus_index: Path, tmp_path: Path
) -> None:
    question = "What is the boiling point of tungsten?"
    ask(page, question)  # the documents do not answer it: the user says what the answer is
    page.locator("#chatbot button[aria-label='Dislike']").last.click()
    page.locator("#feedback-note textarea").wait_for()  # the what-was-wrong form opens
    assert question in page.locator("#feedback-heading").inner_text()
    page.fill("#feedback-note textarea", "It should say the boiling point")
    page.fill("#feedback-answer input, #feedback-answer textarea", "5930 degrees")
    page.click("#feedback-send")
    page.locator("#feedback-saved").wait_for()

    suite = tmp_path / "suites" / "feedback.toml"
    rag = [sys.executable, "-m", "rag.cli"]
    env = server_environment()
    written = subprocess.run(
        [*rag, "eval", "--from-feedback", "--index", str(corpus_index), "--out", str(suite)],
        check=False, capture_output=True, text=True, env=env, timeout=300,
    )
    assert written.returncode == 0, written.stderr
    text = suite.read_text()
    assert question in text and '"5930 degrees"' in text and "must_answer = true" in text
    ran = subprocess.run(
        [*rag, "eval", str(suite), "--out", str(tmp_path / "report"), "--quiet"],
        check=False, capture_output=True, text=True, env=env, timeout=300,
    )
    # The suite runs; the documents still cannot answer, so the abstention the user marked wrong
    # comes back: the question fails, by name, and so does the run (status 3), as a release gate would.
    assert ran.returncode == 3, ran.stderr + ran.stdout
    assert f"FAIL  {question}" in ran.stdout and "came back" in ran.stderr
    assert json.loads((tmp_path / "report" / "report.json").read_text())["runs"][0]["metrics"]["pass_rate"] < 1


def test_dark_mode_keeps_text_readable(browser, chat_server: str, test_output: Path) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, color_scheme="dark")
    dark = context.new_page()
    dark.goto(chat_server + "?__theme=dark")
    dark.wait_for_selector("#question textarea")
    answer = ask(dark, "How do I handle exceptions in Python?")
    answer.locator("a.cite").first.click()
    mark = dark.locator("#sources .source-card.selected mark").first
    mark.wait_for()
    assert dark.evaluate("document.body.classList.contains('dark') || document.documentElement.classList.contains('dark')")
    text = answer.evaluate(LUMINANCE, "color")
    assert text > 0.6, f"answer text is dark on a dark page (luminance {text:.2f})"
    mark_text, mark_background = mark.evaluate(LUMINANCE, "color"), mark.evaluate(LUMINANCE, "backgroundColor")
    assert abs(mark_text - mark_background) > 0.4, "highlighted words do not stand out from their background"
    dark.screenshot(path=str(test_output / "chat-dark.png"))
    context.close()


def _log_in(browser, url: str, user: str, password: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    tab.goto(url)
    tab.locator("input[type=text]").first.fill(user)
    tab.locator("input[type=password]").fill(password)
    tab.locator("input[type=password]").press("Enter")
    tab.wait_for_selector("#question textarea")
    return tab


def test_with_logins_two_users_never_see_each_others_conversations(browser, notes_root: Path) -> None:
    from ui.app import build_app, serve
    from ui.collections import CollectionManager

    # A second, small server in this process: the shared one has no login.
    demo = build_app(CollectionManager(notes_root, notes_root / "notes"))
    url = serve(demo, port=None, auth=[("ada", "ada-pass"), ("bob", "bob-pass")], block=False)
    try:
        ada = _log_in(browser, url, "ada", "ada-pass")
        ask(ada, "How long do tomatoes need sun?")
        ada.locator("#conversations label", has_text="How long do tomatoes need sun?").wait_for()

        # Bob, in the same browser profile (the storage is not what keeps them apart): nothing of Ada's.
        bob = ada.context.new_page()
        ada.context.clear_cookies()
        bob.goto(url)
        bob.locator("input[type=password]").wait_for()
        bob.locator("input[type=text]").first.fill("bob")
        bob.locator("input[type=password]").fill("bob-pass")
        bob.locator("input[type=password]").press("Enter")
        bob.wait_for_selector("#question textarea")
        bob.wait_for_timeout(1000)  # the page-load handler has listed Bob's conversations by now
        assert bob.locator("#conversations label").count() == 0
        assert bob.locator("#chatbot .question").count() == 0
        ask(bob, "When does the kettle switch off?")
        bob.locator("#conversations label", has_text="kettle").wait_for()
        assert bob.locator("#conversations label").count() == 1

        # Ada again, in a new browser profile: hers are kept on the server, and only hers are listed.
        ada_again = _log_in(browser, url, "ada", "ada-pass")
        ada_again.locator("#conversations label").first.wait_for()
        assert ada_again.locator("#conversations label").all_inner_texts() == ["How long do tomatoes need sun?"]
    finally:
        demo.close()
