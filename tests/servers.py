"""Real servers in subprocesses for the tests: a free local port, and a process that is up before the test runs."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVER_START_SECONDS = 240  # model load and index open on a busy two-core machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_environment(**extra: str) -> dict[str, str]:
    """This environment, offline, with the repository importable and no default index or login leaking in."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        **extra,
    }
    for name in ("RAG_AUTH", "RAG_INDEX", "RAG_API_TOKEN"):
        if name not in extra:
            env.pop(name, None)
    return env


@contextmanager
def running_server(
    command: list[str], ready_url: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command``, wait until ``ready_url`` answers (any HTTP status), and stop it afterwards.

    Its output goes to ``log``, whose tail is shown when it dies or does not come up in time.
    """
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env or server_environment(), stdout=output, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_up(ready_url, process, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered, if not with 200 (an MCP endpoint wants a POST)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{process.args} did not answer on {url} within {SERVER_START_SECONDS} s:\n{log.read_text()[-4000:]}")
