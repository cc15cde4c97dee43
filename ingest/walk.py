"""Find the documents to ingest under a list of files and folders.

`walk` yields a `FoundFile` for every supported document and a `SkippedFile`
for every file the user will want to hear about (too large, unreadable, an
explicitly included but unsupported type, a symbolic link not followed, a FIFO,
socket or device). Noise (hidden files, `.git`, `node_modules`, files that are
not documents) is passed over silently.
Both records carry absolute paths, so they can be compared with an index's paths.
A name that is not UTF-8 is stored and shown through `path_key` (its odd bytes as `\\xNN`).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from indexes import glob_matches
from ingest.errors import UnreadableDocument
from ingest.records import FoundFile, SkippedFile

_TYPES: dict[str, str] = {
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(_TYPES)

_JUNK_FOLDERS = frozenset({"__pycache__", "node_modules", ".git", ".venv"})
_MB = 2**20


def path_key(path: Path | str) -> str:
    """A path as the index stores and shows it: bytes that are not UTF-8 become `\\xNN` escapes.

    Lossless (`$'ok_\\xff.txt'` in a shell names the file again), and the identity for UTF-8 names.
    """
    text = str(path)
    try:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that did not come from the file system
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def file_type(path: Path) -> str:
    """The document type of `path` from its extension: text, markdown, rst, html or pdf."""
    ext = path.suffix.lower()
    if ext not in _TYPES:
        raise UnreadableDocument(str(path), _unsupported(path))
    return _TYPES[ext]


def walk(
    paths: Sequence[Path],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    max_bytes: int = 50 * _MB,
    follow_symlinks: bool = False,
) -> Iterator[FoundFile | SkippedFile]:
    """Yield the documents under `paths` (files or folders) in a stable, sorted order.

    Globs (the rule of `indexes.globs`) match the path relative to the walked folder and the
    bare file name; exclude wins.
    """
    rules = _Rules.build(include, exclude, max_bytes, follow_symlinks)
    seen: dict[str, Path] = {}
    for root in paths:
        for item in _walk_root(Path(root), rules):
            if isinstance(item, FoundFile):
                key = path_key(item.path)
                # Overlapping arguments or symlinks must not load a file twice.
                if seen.get(key) == item.path:
                    continue
                if key in seen:  # a literal `\\xff` in one name, the byte 0xFF in another
                    yield SkippedFile(key, "another file's name is shown the same way; rename one of them")
                    continue
                seen[key] = item.path
            yield item


@dataclass(frozen=True)
class _Rules:
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    max_bytes: int
    follow_symlinks: bool

    @classmethod
    def build(cls, include: Sequence[str], exclude: Sequence[str], max_bytes: int, follow: bool) -> _Rules:
        return cls(
            tuple(_relative(p) for p in include),
            tuple(_relative(p) for p in exclude),
            max_bytes,
            follow,
        )

    def excludes(self, *candidates: str) -> bool:
        return _matches(self.exclude, candidates)

    def includes(self, *candidates: str) -> bool:
        return _matches(self.include, candidates)


def _matches(patterns: tuple[str, ...], candidates: tuple[str, ...]) -> bool:
    return any(glob_matches(p, c) for p in patterns for c in candidates)


def _relative(pattern: str) -> str:
    """A glob as typed, read relative to the walked folder (a leading `/` means its top)."""
    return pattern.strip().lstrip("/")


def _walk_root(root: Path, rules: _Rules) -> Iterator[FoundFile | SkippedFile]:
    # A path the user names is always followed, even when it is a symlink.
    try:
        info = root.stat()
    except OSError as exc:
        yield SkippedFile(_shown(root), _reason(exc, root))
        return
    if stat.S_ISDIR(info.st_mode):
        yield from _walk_dir(root, "", rules, frozenset({(info.st_dev, info.st_ino)}))
    elif stat.S_ISREG(info.st_mode):
        yield from _check_file(root, root.name, info, rules, named=True)
    else:
        yield SkippedFile(_shown(root), _not_regular(info.st_mode))


def _walk_dir(
    folder: Path, rel: str, rules: _Rules, ancestors: frozenset[tuple[int, int]]
) -> Iterator[FoundFile | SkippedFile]:
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as exc:
        yield SkippedFile(_shown(folder), _reason(exc, folder))
        return
    for entry in entries:
        if not (entry.name.startswith(".") or entry.name in _JUNK_FOLDERS):
            yield from _visit(entry, f"{rel}{entry.name}", rules, ancestors)


def _visit(
    entry: os.DirEntry[str], rel: str, rules: _Rules, ancestors: frozenset[tuple[int, int]]
) -> Iterator[FoundFile | SkippedFile]:
    path = Path(entry.path)
    if entry.is_symlink() and not rules.follow_symlinks:
        yield from _unfollowed_link(path, rel, rules)
        return
    try:
        info = path.stat()
    except OSError as exc:
        yield SkippedFile(_shown(path), _reason(exc, path))
        return
    if stat.S_ISDIR(info.st_mode):
        key = (info.st_dev, info.st_ino)
        if rules.excludes(rel, rel + "/", entry.name):
            return
        if key in ancestors:  # a folder that is its own ancestor: walked once already
            yield SkippedFile(_shown(path), "symbolic link loop (a folder inside itself)")
            return
        yield from _walk_dir(path, rel + "/", rules, ancestors | {key})
    elif stat.S_ISREG(info.st_mode):
        yield from _check_file(path, rel, info, rules)
    elif _selected(rules, rel, path.name):
        yield SkippedFile(_shown(path), _not_regular(info.st_mode))


def _unfollowed_link(path: Path, rel: str, rules: _Rules) -> Iterator[SkippedFile]:
    """Say why a symbolic link in a walked folder is not followed (when it could have been a document)."""
    if rules.excludes(rel, rel + "/", path.name):
        return
    try:
        info = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            yield SkippedFile(_shown(path), "symbolic link loop")
        elif path.suffix.lower() in _TYPES and _selected(rules, rel, path.name):
            yield SkippedFile(_shown(path), _reason(exc, path))
        return
    is_dir = stat.S_ISDIR(info.st_mode)
    if is_dir or (path.suffix.lower() in _TYPES and _selected(rules, rel, path.name)):
        root = path.parents[rel.count("/")]
        outside = not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))
        what = "symbolic link to a folder" if is_dir else "symbolic link"
        yield SkippedFile(_shown(path), f"{what}{' out of the walked folder' if outside else ''}, not followed")


def _selected(rules: _Rules, rel: str, name: str) -> bool:
    """Whether the include and exclude globs let this file through."""
    if rules.excludes(rel, name):
        return False
    return not rules.include or rules.includes(rel, name)


def _not_regular(mode: int) -> str:
    kind = "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
    return f"not a regular file ({kind})"


def _check_file(
    path: Path, rel: str, info: os.stat_result, rules: _Rules, *, named: bool = False
) -> Iterator[FoundFile | SkippedFile]:
    if rules.excludes(rel, path.name):
        return
    included = rules.includes(rel, path.name)
    if rules.include and not included:
        return
    if path.suffix.lower() not in _TYPES:
        if included or named:
            yield SkippedFile(_shown(path), _unsupported(path))
    elif info.st_size > rules.max_bytes:
        limit, size = _human_size(rules.max_bytes), _human_size(info.st_size)
        yield SkippedFile(_shown(path), f"larger than the {limit} limit ({size})")
    elif not os.access(path, os.R_OK):
        yield SkippedFile(_shown(path), "permission denied")
    else:
        yield FoundFile(path.resolve(), info.st_size, info.st_mtime)


def _shown(path: Path) -> str:
    """An absolute path that matches FoundFile paths but keeps a symlink's own name."""
    if path.name in {"", ".."}:
        return path_key(path.resolve())
    return path_key(path.parent.resolve() / path.name)


def _unsupported(path: Path) -> str:
    ext = path.suffix.lower()
    return f"unsupported file type {ext}" if ext else "unsupported file type (no extension)"


def _reason(exc: OSError, path: Path) -> str:
    """A few words for a failed stat or listing, as shown next to a skipped file."""
    if isinstance(exc, FileNotFoundError) and path.is_symlink():
        return "broken symbolic link"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return (exc.strerror or type(exc).__name__).lower()


def _human_size(size: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"
