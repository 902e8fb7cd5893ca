"""Fixtures for the chat page's tests: an index of ``../shared/corpus/``, a running ``rag chat``, a browser.

The index is built once per session (about a minute on two cores). ``RAG_UI_TEST_INDEX`` names a
prebuilt index of the same corpus to copy instead (a local shortcut; CI builds it). Everything the
server writes (uploads, new collections) goes to the session's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import free_port, running_server, server_environment

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIR = REPO_ROOT.parent / "shared" / "corpus"
CHROMIUM = Path("/usr/bin/chromium")
TEST_OUTPUT = REPO_ROOT / "test-output"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


NOTES = {
    "kettle.txt": "Kettle manual\n\nThe kettle switches itself off when the water boils. "
    "Descale the kettle every month with white vinegar.\n",
    "garden.md": "# Garden\n\n## Tomatoes\n\nTomatoes need six hours of sun a day. "
    "Water them at the base, never on the leaves.\n",
    "alarm.txt": "Security notes\n\nThe alarm code is changed every spring.\n\n"
    '<script>window.__xss = 1</script>\n<img src=x onerror="window.__xss = 2">\n',
}
"""A tiny collection for fast tests of the page's logic (one of them carries markup)."""


@pytest.fixture(scope="session")
def notes_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index of ``NOTES``, built once; copy it (``notes_root``) before changing it."""
    from index.ingest import add_to_index

    folder = tmp_path_factory.mktemp("notes-files")
    for name, text in NOTES.items():
        (folder / name).write_text(text)
    index_dir = tmp_path_factory.mktemp("notes-index") / "notes"
    add_to_index(index_dir, [folder], show_progress=False)
    return index_dir


@pytest.fixture
def notes_root(notes_index: Path, tmp_path: Path) -> Path:
    """A collections root holding a private copy of the notes index as ``notes``."""
    root = tmp_path / "collections"
    shutil.copytree(notes_index, root / "notes", ignore=shutil.ignore_patterns(".lock"))
    return root


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not CORPUS_DIR.is_dir():
        pytest.skip(f"the shared corpus is not here ({CORPUS_DIR}); these tests need ../shared/corpus/")
    return CORPUS_DIR


@pytest.fixture(scope="session")
def corpus_index(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable index of the shared corpus, private to this test session."""
    index_dir = tmp_path_factory.mktemp("collections") / "corpus"
    prebuilt = os.environ.get("RAG_UI_TEST_INDEX")
    if prebuilt:
        shutil.copytree(prebuilt, index_dir, ignore=shutil.ignore_patterns(".lock"))
        return index_dir
    from index.ingest import add_to_index

    add_to_index(index_dir, [corpus_dir], show_progress=False)
    return index_dir


def _chat_command() -> list[str]:
    """``rag chat`` run with this interpreter, so the test uses the code under test."""
    return [sys.executable, "-m", "rag.cli", "chat"]


@pytest.fixture(scope="session")
def chat_server(corpus_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a real ``rag chat --index <corpus copy>`` on a free local port."""
    home = tmp_path_factory.mktemp("home")
    port = free_port()
    # New collections go under XDG_DATA_HOME, never into the real user's data.
    env = server_environment(XDG_DATA_HOME=str(home))
    command = [*_chat_command(), "--index", str(corpus_index), "--port", str(port), "--no-open"]
    url = f"http://127.0.0.1:{port}/"
    with running_server(command, url, home / "server.log", env):
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, chat_server: str) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A fresh browser tab (its own Gradio session) on the chat page, laptop-sized."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    tab.goto(chat_server)
    tab.wait_for_selector("#question textarea")
    yield tab
    context.close()


@pytest.fixture(scope="session")
def test_output() -> Path:
    TEST_OUTPUT.mkdir(exist_ok=True)
    return TEST_OUTPUT
