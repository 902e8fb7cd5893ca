"""Build an evaluation index once and reuse it: one cached folder per (corpus content, index recipe).

The cache lives in ``$RAG_EVAL_CACHE`` or ``~/.cache/rag-assistant/eval-indexes``. The key hashes
the corpus bytes (not its path), so a dataset copied elsewhere or passed with ``--data`` reuses the
same index, and any change of content or settings gets a fresh one. A build goes to a staging
folder that is renamed into place only when complete; a lock keeps two runs from building the
same index at once.

A recipe with ``store = "milvus-lite"`` gets the folder index of the same recipe first, then a copy of
its documents, chunks and vectors in a Milvus Lite file (``index.stores.copy_store``): the two
backends are compared on the very same vectors, and nothing is embedded twice.

>>> key = index_key(Path(__file__), IndexRecipe())
>>> len(key)
16
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from evals.suite import IndexRecipe
from index.ingest import add_to_index
from index.loaders import discover_files
from index.store import FORMAT_VERSION, MANIFEST_NAME, IndexStore
from index.stores import copy_store, create_store

CACHE_ENV = "RAG_EVAL_CACHE"
CACHE_VERSION = 1
"""Bump when something outside the recipe changes what an index holds (e.g. how corpora are read)."""


def eval_cache_dir() -> Path:
    """``$RAG_EVAL_CACHE``, else ``$XDG_CACHE_HOME/rag-assistant/eval-indexes`` (``~/.cache/...``)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache_home / "rag-assistant" / "eval-indexes"


def corpus_fingerprint(corpus: Path) -> str:
    """sha256 of a corpus file, or of every loadable file's relative path and bytes under a folder.

    A folder's absolute path is part of it too: its document ids are file paths, and the qrels
    are matched against them.
    """
    digest = hashlib.sha256()
    if corpus.is_file():
        _update_with_file(digest, corpus)
        return digest.hexdigest()
    root = corpus.resolve()
    digest.update(str(root).encode())
    files, _, _ = discover_files([root])
    for path in files:
        digest.update(path.resolve().relative_to(root).as_posix().encode() + b"\0")
        _update_with_file(digest, path)
    return digest.hexdigest()


def _update_with_file(digest: hashlib._Hash, path: Path) -> None:
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)


def _corpora(corpus: Path | Sequence[Path]) -> list[Path]:
    return [Path(corpus)] if isinstance(corpus, (str, Path)) else [Path(folder) for folder in corpus]


def index_key(corpus: Path | Sequence[Path], recipe: IndexRecipe) -> str:
    """A short, stable name for the index of ``corpus`` (a file, a folder or several) built with ``recipe``.

    The default ``vector_index`` (auto) and ``store`` (folder) are left out of the key, so caches made
    before the settings existed keep their names.
    """
    folders = _corpora(corpus)
    fingerprint = corpus_fingerprint(folders[0]) if len(folders) == 1 else [corpus_fingerprint(f) for f in folders]
    defaults = {("vector_index", "auto"), ("store", "folder")}
    settings = {name: value for name, value in vars(recipe).items() if (name, value) not in defaults}
    material = json.dumps(
        {
            "corpus": fingerprint,
            "recipe": settings,
            "cache_version": CACHE_VERSION,
            "index_format": FORMAT_VERSION,  # a change in how chunks are cut makes a new index
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def ensure_index(
    corpus: Path | Sequence[Path], recipe: IndexRecipe, cache_dir: Path | None = None, *, show_progress: bool = True
) -> Path | str:
    """The folder of a complete index of ``corpus`` (one path or several) built with ``recipe``; built if not cached.

    For ``store = "milvus-lite"`` the ``milvus://`` location of the Milvus Lite copy of that index.
    """
    cache_dir = cache_dir or eval_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    if recipe.store == "milvus-lite":
        return _ensure_milvus_lite(corpus, recipe, cache_dir, show_progress)
    key = index_key(corpus, recipe)
    final = cache_dir / key
    if (final / MANIFEST_NAME).is_file():
        return final
    embedded = None
    if recipe.vector_index != "auto":  # the same embedded index, with another vector index: nothing re-embedded
        embedded = ensure_index(corpus, replace(recipe, vector_index="auto"), cache_dir, show_progress=show_progress)
    with open(cache_dir / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # wait for another run building the same index
        if (final / MANIFEST_NAME).is_file():
            return final
        staging = cache_dir / f".{key}.building"
        shutil.rmtree(staging, ignore_errors=True)
        if embedded is not None:
            shutil.copytree(embedded, staging, ignore=shutil.ignore_patterns(".lock"))
            store = IndexStore.open(staging)
            with store.writer_lock():
                store.set_vector_index(recipe.vector_index)
            store.close()
            corpora = [str(folder) for folder in _corpora(corpus)]
            (staging / "eval-recipe.json").write_text(json.dumps({"corpus": corpora, "recipe": vars(recipe)}, indent=2))
            os.replace(staging, final)
            return final
        report = add_to_index(
            staging,
            _corpora(corpus),
            model=recipe.model,
            chunker=recipe.chunker,
            embedder_kind=recipe.embedder,
            show_progress=show_progress,
        )
        if report.failed:
            shutil.rmtree(staging, ignore_errors=True)
            raise ValueError(f"{_corpora(corpus)[0]}: cannot index the corpus: {report.failed[0]}")
        (staging / "eval-recipe.json").write_text(
            json.dumps({"corpus": [str(folder) for folder in _corpora(corpus)], "recipe": vars(recipe)}, indent=2)
        )
        os.replace(staging, final)
    return final


MILVUS_FILE = "index.db"


def _ensure_milvus_lite(corpus: Path | Sequence[Path], recipe: IndexRecipe, cache_dir: Path, show_progress: bool) -> str:
    """The folder index of ``recipe`` copied into a Milvus Lite file (cached like the folders), as the
    ``milvus://`` location of this process's own copy of it (see ``_private_copy``)."""
    key = index_key(corpus, recipe)
    final = cache_dir / key
    if not (final / "complete").is_file():
        _build_milvus_lite(corpus, recipe, cache_dir, show_progress)
    return _private_copy(final / MILVUS_FILE)


def _private_copy(lite_file: Path) -> str:
    """A copy of a cached Milvus Lite file for this process alone, removed when the process ends.

    Why: Milvus Lite serves one process per file (a file lock), while the folder store lets any number
    of runs read one cached index; two `make eval-gate` runs at once (two checkouts on one machine)
    failed on the shared cache. The copy is cheap (54 MB for SciFact, under a second).
    """
    folder = Path(tempfile.mkdtemp(prefix="rag-eval-milvus-"))
    shutil.copytree(lite_file, folder / MILVUS_FILE, ignore=shutil.ignore_patterns("LOCK"))
    atexit.register(shutil.rmtree, folder, True)
    return f"milvus://{folder / MILVUS_FILE}"


def _build_milvus_lite(corpus: Path | Sequence[Path], recipe: IndexRecipe, cache_dir: Path, show_progress: bool) -> None:
    """Copy the folder index of ``recipe`` into a Milvus Lite file in the cache (nothing re-embedded)."""
    from index.milvus_store import release_lite

    key = index_key(corpus, recipe)
    final = cache_dir / key
    folder = ensure_index(corpus, replace(recipe, store="folder"), cache_dir, show_progress=show_progress)
    with open(cache_dir / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "complete").is_file():
            return
        staging = cache_dir / f".{key}.building"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        source = IndexStore.open(folder)
        target = create_store(f"milvus://{staging / MILVUS_FILE}", source.settings)
        copy_store(source, target)
        source.close()
        target.close()
        release_lite(staging / MILVUS_FILE)  # Milvus Lite holds its files open: let go before the folder moves
        (staging / "eval-recipe.json").write_text(json.dumps({"copied_from": str(folder), "recipe": vars(recipe)}, indent=2))
        (staging / "complete").write_text("")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
