"""Find the loadable files under the paths a user gives: folders walked in sorted order, hidden and unsupported files reported."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from index.loaders.common import SUPPORTED_SUFFIXES, LoadError, SkippedFile, os_reason, shown_path


def discover_files(
    paths: Iterable[str | Path],
    *,
    follow_symlinks: bool = False,
) -> tuple[list[Path], list[SkippedFile], list[LoadError]]:
    """Find the loadable files under ``paths`` (files or folders, walked recursively).

    Returns ``(files, skipped, errors)``. Folders are walked in sorted order, so the result is
    deterministic; a file reached twice is listed once. Inside a folder, hidden entries (name
    starting with ".") and unsupported suffixes are skipped and reported. Symbolic links met inside
    a folder are not followed when they lead outside the folders given (``link.txt -> /etc/passwd``)
    or to a folder (folder links can loop); ``follow_symlinks`` follows both, each real folder once.
    A file named explicitly is loaded even if hidden or a link.
    A path that does not exist becomes a ``LoadError`` ("no such file or directory").

    >>> discover_files(["/no/such/place"])[2][0].reason
    'no such file or directory'
    """
    paths = [Path(raw_path) for raw_path in paths]
    roots = [path.resolve() for path in paths if path.is_dir()]
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    errors: list[LoadError] = []
    seen: set[Path] = set()
    for path in paths:
        if not path.exists():
            reason = "broken symbolic link" if path.is_symlink() else "no such file or directory"
            errors.append(LoadError(path, reason))
            continue
        walk = _Walk(roots, follow_symlinks, skipped, errors)
        candidates = walk.files(path) if path.is_dir() else iter([path])
        for candidate in candidates:
            if not _is_supported(candidate, skipped):
                continue
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                files.append(candidate)
    return files, skipped, errors


class _Walk:
    """One folder walk: an explicit stack instead of recursion, so no folder depth can exhaust
    Python's recursion limit (a 1,000-deep tree raised RecursionError)."""

    def __init__(
        self, roots: list[Path], follow_symlinks: bool, skipped: list[SkippedFile], errors: list[LoadError]
    ) -> None:
        self.roots = roots
        self.follow_symlinks = follow_symlinks
        self.skipped = skipped
        self.errors = errors

    def files(self, folder: Path) -> Iterator[Path]:
        """The regular files below ``folder`` in sorted order (depth first), skipping hidden entries."""
        visited = {folder.resolve()}
        stack: list[Iterator[Path]] = [iter(self._entries(folder))]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            kind = self._kind(entry, visited)
            if kind == "folder":
                if entry.is_symlink():
                    visited.add(entry.resolve())
                stack.append(iter(self._entries(entry)))
            elif kind == "file":
                yield entry

    def _entries(self, folder: Path) -> list[Path]:
        try:
            return sorted(folder.iterdir(), key=lambda entry: entry.name)
        except OSError as error:
            self.errors.append(LoadError(folder, f"cannot read folder ({os_reason(error)})"))
            return []

    def _kind(self, entry: Path, visited: set[Path]) -> str:
        """``folder`` to walk, ``file`` to load, or ``""`` when the entry was reported as skipped or failed."""
        try:
            is_dir = entry.is_dir()
            is_link = entry.is_symlink()
        except OSError as error:  # e.g. a name too long for the file system
            self.errors.append(LoadError(entry, f"cannot read ({os_reason(error)})"))
            return ""
        if entry.name.startswith("."):
            self._skip(entry, "hidden folder" if is_dir else "hidden file")
            return ""
        if is_link and not entry.exists():
            self.errors.append(LoadError(entry, "broken symbolic link"))
            return ""
        if is_link and not self.follow_symlinks:
            target = entry.resolve()
            if is_dir:
                self._skip(entry, "symbolic link to a folder (not followed; --follow-symlinks follows it)")
                return ""
            if not any(target == root or root in target.parents for root in self.roots):
                self._skip(
                    entry,
                    f"symbolic link to {shown_path(target)}, outside the folders being added "
                    "(not followed; --follow-symlinks follows it)",
                )
                return ""
        if is_dir:
            # Only a followed link can lead back to a folder already walked (resolving every
            # folder would cost a system call per level of its path).
            if is_link and entry.resolve() in visited:
                self._skip(entry, "symbolic link to a folder already walked (a loop)")
                return ""
            return "folder"
        if entry.is_file():
            return "file"
        self._skip(entry, "not a regular file")
        return ""

    def _skip(self, entry: Path, reason: str) -> None:
        self.skipped.append(SkippedFile(shown_path(entry), reason))


def _is_supported(path: Path, skipped: list[SkippedFile]) -> bool:
    suffix = path.suffix.lower()
    if suffix in SUPPORTED_SUFFIXES:
        return True
    reason = f"unsupported type {suffix}" if suffix else "unsupported type (no suffix)"
    skipped.append(SkippedFile(shown_path(path), reason))
    return False
