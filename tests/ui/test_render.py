"""How answers and sources are rendered: linked markers, flagged sentences, highlighted spans, escaped text."""

from __future__ import annotations

import re

from index.types import Chunk
from rag.types import Answer, Citation, Passage
from ui import render

DOCUMENT = (
    "Intro line.\nThe kettle switches itself off when the water boils. Descale it monthly. <script>alert(1)</script>"
)


def _passage(start: int = 0, end: int = len(DOCUMENT)) -> Passage:
    chunk = Chunk(id="c1", document_id="doc", text=DOCUMENT[start:end], start=start, end=end, heading="Kettle")
    return Passage(
        chunk=chunk, score=0.9, rank=1, retriever="hybrid", source="/home/x/kettle.txt", title="Kettle manual"
    )


def _citation(quote: str, marker: int = 1, supported: bool = True) -> Citation:
    start = DOCUMENT.index(quote)
    return Citation(
        marker=marker,
        document_id="doc",
        chunk_id="c1",
        source="/home/x/kettle.txt",
        title="Kettle manual",
        page=None,
        start=start,
        end=start + len(quote),
        quote=quote,
        supported=supported,
    )


def _answer(text: str, citations: list[Citation], unsupported: list[str] | None = None) -> Answer:
    return Answer(text=text, citations=citations, passages=[_passage(12)], unsupported_sentences=unsupported or [])


def test_verified_markers_become_links_and_unknown_ones_stay_text() -> None:
    answer = _answer("It switches off. [1] It sings. [7]", [_citation("The kettle switches itself off")])
    rendered = render.answer_html(answer, "ab12")
    assert '<a class="cite" href="#cite-ab12-1"' in rendered
    assert "#cite-ab12-7" not in rendered and "[7]" in rendered


def test_combined_markers_each_get_a_link() -> None:
    answer = _answer("Both. [1, 2]", [_citation("The kettle"), _citation("Descale it monthly.", marker=2)])
    rendered = render.answer_html(answer, "ab12")
    assert "#cite-ab12-1" in rendered and "#cite-ab12-2" in rendered


def test_unsupported_sentence_is_visibly_flagged() -> None:
    sentence = "It also makes tea. [1]"
    answer = _answer(f"It switches off. [1] {sentence}", [_citation("The kettle")], unsupported=[sentence])
    rendered = render.answer_html(answer, "ab12")
    flagged = re.search(r'<span class="unsupported"[^>]*>(.*?)<span class="unsupported-tag">', rendered)
    assert flagged and "It also makes tea." in flagged.group(1)
    assert "It switches off." not in flagged.group(1)


def test_abstention_is_rendered_apart_from_an_answer() -> None:
    rendered = render.answer_html(Answer(text="The documents don't answer this question.", abstained=True), "ab12")
    assert 'class="answer abstained"' in rendered and "Not in the documents" in rendered
    assert "cite" not in rendered


def test_markup_from_documents_is_escaped_in_answers_and_sources() -> None:
    quote = "<script>alert(1)</script>"
    answer = _answer(f"{quote} [1]", [_citation(quote)])
    rendered = render.answer_html(answer, "ab12") + render.sources_html(answer, "ab12", "q <b>?</b>")
    assert "<script>" not in rendered and "<b>" not in rendered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered


def test_answer_is_one_html_block_so_markdown_in_documents_is_not_rendered() -> None:
    answer = _answer("See ![x](http://tracker.example/p.png)\n\nand *this*. [1]", [_citation("The kettle")])
    rendered = render.answer_html(answer, "ab12")
    assert "\n" not in rendered  # a blank line would end the HTML block and let Markdown in
    assert "<img" not in rendered


def test_selected_source_highlights_exactly_the_cited_span() -> None:
    quote = "switches itself off when the water boils."
    answer = _answer("It switches off. [1]", [_citation(quote)])
    panel = render.sources_html(answer, "ab12", "When does it stop?", selected=1)
    assert re.findall(r"<mark>(.*?)</mark>", panel) == [quote]
    assert 'class="source-card selected" data-marker="1"' in panel
    assert "Kettle manual" in panel and "kettle.txt" in panel


def test_source_card_shows_page_and_section() -> None:
    citation = _citation("Descale it monthly.")
    citation = Citation(**{**citation.to_dict(), "page": 4})
    panel = render.sources_html(_answer("Descale. [1]", [citation]), "ab12")
    assert "page 4" in panel and "Kettle" in panel


def test_citation_that_does_not_support_its_sentence_is_flagged_in_the_panel() -> None:
    answer = _answer("It sings. [1]", [_citation("The kettle", supported=False)])
    assert "does not support" in render.sources_html(answer, "ab12")


def test_abstention_panel_lists_the_closest_passages() -> None:
    answer = Answer(text="The documents don't answer this question.", passages=[_passage()], abstained=True)
    panel = render.sources_html(answer, "ab12", "unanswerable?")
    assert "No passage answered" in panel and '<details class="other-passages" open>' in panel


def test_a_how_to_answers_code_block_is_shown_as_code_with_its_markup_escaped() -> None:
    quote = "The kettle switches itself off when the water boils."
    answer = Answer(
        text=f"{quote} [1]\n\n```py\nif level < 3:\n    print('<b>refill</b>')\n```\n\nDescale it monthly. [1]",
        citations=[_citation(quote)],
        passages=[_passage()],
    )
    rendered = render.answer_html(answer, "a1")
    code = re.search(r'<pre class="code"><code>(.*?)</code></pre>', rendered, re.DOTALL)
    assert code and code.group(1) == "if level &lt; 3:\n    print(&#x27;&lt;b&gt;refill&lt;/b&gt;&#x27;)"
    assert "```" not in rendered and "<b>refill" not in rendered
    assert rendered.count('class="cite"') == 2  # both markers still link to the source
