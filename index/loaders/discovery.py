"""Find the loadable files under the paths a user gives: folders walked in sorted order, hidden and unsupported files reported."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from index.loaders.common import SUPPORTED_SUFFIXES, LoadError, SkippedFile, os_reason


def discover_files(
    paths: Iterable[str | Path],
) -> tuple[list[Path], list[SkippedFile], list[LoadError]]:
    """Find the loadable files under ``paths`` (files or folders, walked recursively).

    Returns ``(files, skipped, errors)``. Folders are walked in sorted order, so the result is
    deterministic; a file reached twice is listed once. Inside a folder, hidden entries (name
    starting with ".") and unsupported suffixes are skipped and reported; symbolic links to
    folders are not followed (they can loop). A file named explicitly is loaded even if hidden.
    A path that does not exist becomes a ``LoadError`` ("no such file or directory").

    >>> discover_files(["/no/such/place"])[2][0].reason
    'no such file or directory'
    """
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    errors: list[LoadError] = []
    seen: set[Path] = set()
    for raw_path in paths:
        path = Path(raw_path)
        if not path.exists():
            reason = "broken symbolic link" if path.is_symlink() else "no such file or directory"
            errors.append(LoadError(path, reason))
            continue
        candidates = _walk(path, skipped, errors) if path.is_dir() else iter([path])
        for candidate in candidates:
            if not _is_supported(candidate, skipped):
                continue
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                files.append(candidate)
    return files, skipped, errors


def _walk(folder: Path, skipped: list[SkippedFile], errors: list[LoadError]) -> Iterator[Path]:
    """Yield the regular files below ``folder`` in sorted order, skipping hidden entries."""
    try:
        entries = sorted(folder.iterdir(), key=lambda entry: entry.name)
    except OSError as error:
        errors.append(LoadError(folder, f"cannot read folder ({os_reason(error)})"))
        return
    for entry in entries:
        is_dir = entry.is_dir()
        if entry.name.startswith("."):
            skipped.append(SkippedFile(str(entry), "hidden folder" if is_dir else "hidden file"))
        elif is_dir and entry.is_symlink():
            skipped.append(SkippedFile(str(entry), "symbolic link to a folder (not followed)"))
        elif is_dir:
            yield from _walk(entry, skipped, errors)
        elif entry.is_file():
            yield entry
        elif not entry.exists():
            errors.append(LoadError(entry, "broken symbolic link"))
        else:
            skipped.append(SkippedFile(str(entry), "not a regular file"))


def _is_supported(path: Path, skipped: list[SkippedFile]) -> bool:
    suffix = path.suffix.lower()
    if suffix in SUPPORTED_SUFFIXES:
        return True
    reason = f"unsupported type {suffix}" if suffix else "unsupported type (no suffix)"
    skipped.append(SkippedFile(str(path), reason))
    return False
