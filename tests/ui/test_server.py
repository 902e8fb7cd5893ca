"""The page as a server, in-process: loopback by default, login when asked, the API behind the login."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ui.app import build_app, serve
from ui.collections import CollectionManager

pytestmark = pytest.mark.slow


@pytest.fixture
def protected_server(notes_root: Path) -> Iterator[str]:
    demo = build_app(CollectionManager(notes_root, notes_root / "notes"))
    url = serve(demo, port=None, auth=("ada", "s3cret:pass"), block=False)
    try:
        assert demo.server_name == "127.0.0.1"
        yield url
    finally:
        demo.close()


def test_login_is_required_and_then_the_api_answers(protected_server: str) -> None:
    import httpx
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    assert httpx.get(protected_server + "config").status_code == 401
    with pytest.raises(AuthenticationError):
        Client(protected_server, verbose=False)
    client = Client(protected_server, auth=("ada", "s3cret:pass"), verbose=False)
    result = client.predict(question="How long do tomatoes need sun?", api_name="/ask")
    assert "six hours" in result["text"]
