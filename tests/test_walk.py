from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from ingest.errors import UnreadableDocument
from ingest.records import FoundFile, SkippedFile
from ingest.walk import SUPPORTED_EXTENSIONS, file_type, path_key, walk

as_root = os.geteuid() == 0


def make_tree(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"text of {name}\n")


def found(root: Path, **options: object) -> list[str]:
    """Relative posix paths of the files found under `root`."""
    items = list(walk([root], **options))  # type: ignore[arg-type]
    return [f.path.relative_to(root.resolve()).as_posix() for f in items if isinstance(f, FoundFile)]


def found_file(path: Path) -> FoundFile:
    stat = path.stat()
    return FoundFile(path.resolve(), stat.st_size, stat.st_mtime)


def skipped(paths: list[Path], **options: object) -> list[SkippedFile]:
    return [s for s in walk(paths, **options) if isinstance(s, SkippedFile)]  # type: ignore[arg-type]


def test_walks_folders_recursively_in_sorted_order(tmp_path: Path) -> None:
    make_tree(tmp_path, "b.md", "a.txt", "sub/z.rst", "sub/deeper/c.pdf", "sub/a.html", "c.htm")
    expected = ["a.txt", "b.md", "c.htm", "sub/a.html", "sub/deeper/c.pdf", "sub/z.rst"]
    assert found(tmp_path) == expected


def test_order_does_not_depend_on_creation_order(tmp_path: Path) -> None:
    make_tree(tmp_path / "one", "c.md", "b.md", "a.md")
    make_tree(tmp_path / "two", "a.md", "b.md", "c.md")
    assert found(tmp_path / "one") == found(tmp_path / "two") == ["a.md", "b.md", "c.md"]


def test_paths_are_walked_in_the_order_given(tmp_path: Path) -> None:
    make_tree(tmp_path, "b/one.md", "a/two.md", "single.txt")
    items = list(walk([tmp_path / "b", tmp_path / "single.txt", tmp_path / "a"]))
    assert [Path(item.path).name for item in items] == ["one.md", "single.txt", "two.md"]


def test_found_file_has_resolved_absolute_path_size_and_mtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path, "doc.md")
    monkeypatch.chdir(tmp_path)
    (item,) = walk([Path("doc.md")])
    assert isinstance(item, FoundFile)
    stat = (tmp_path / "doc.md").stat()
    assert item.path == (tmp_path / "doc.md").resolve()
    assert item.path.is_absolute()
    assert (item.size, item.mtime) == (stat.st_size, stat.st_mtime)


def test_hidden_files_git_and_junk_folders_are_skipped_silently(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        "keep.md",
        ".hidden.md",
        ".git/notes.md",
        ".obsidian/workspace.md",
        "sub/.secret.txt",
        "node_modules/pkg/readme.md",
        "src/__pycache__/mod.txt",
        ".venv/lib/readme.rst",
    )
    assert list(walk([tmp_path])) == [found_file(tmp_path / "keep.md")]


def test_a_hidden_root_folder_is_still_walked(tmp_path: Path) -> None:
    make_tree(tmp_path / ".notes", "idea.md")
    assert found(tmp_path / ".notes") == ["idea.md"]


def test_extensions_are_case_insensitive(tmp_path: Path) -> None:
    make_tree(tmp_path, "REPORT.PDF", "Notes.Md", "page.HTM", "guide.markdown")
    assert found(tmp_path) == ["Notes.Md", "REPORT.PDF", "guide.markdown", "page.HTM"]


def test_files_that_are_not_documents_are_ignored_silently(tmp_path: Path) -> None:
    make_tree(tmp_path, "photo.png", "data.csv", "Makefile", "notes.txt")
    assert [Path(item.path).name for item in walk([tmp_path])] == ["notes.txt"]


def test_unsupported_file_matched_by_include_is_reported(tmp_path: Path) -> None:
    make_tree(tmp_path, "report.docx", "notes.md", "photo.png")
    items = list(walk([tmp_path], include=["*.docx", "*.md"]))
    assert [type(i).__name__ for i in items] == ["FoundFile", "SkippedFile"]
    assert items[1] == SkippedFile(str(tmp_path.resolve() / "report.docx"), "unsupported file type .docx")


def test_a_named_unsupported_file_is_reported(tmp_path: Path) -> None:
    make_tree(tmp_path, "slides.pptx", "LICENSE")
    assert skipped([tmp_path / "slides.pptx", tmp_path / "LICENSE"]) == [
        SkippedFile(str(tmp_path.resolve() / "slides.pptx"), "unsupported file type .pptx"),
        SkippedFile(str(tmp_path.resolve() / "LICENSE"), "unsupported file type (no extension)"),
    ]


def test_include_takes_only_matching_files(tmp_path: Path) -> None:
    make_tree(tmp_path, "a.md", "b.txt", "docs/c.md", "docs/deep/d.md", "other/e.md")
    assert found(tmp_path, include=["*.md"]) == [
        "a.md",
        "docs/c.md",
        "docs/deep/d.md",
        "other/e.md",
    ]
    assert found(tmp_path, include=["docs/**/*.md"]) == ["docs/c.md", "docs/deep/d.md"]
    assert found(tmp_path, include=["docs/*.md"]) == ["docs/c.md"]
    assert found(tmp_path, include=["**/d.md", "b.tx?"]) == ["b.txt", "docs/deep/d.md"]


def test_exclude_wins_over_include(tmp_path: Path) -> None:
    make_tree(tmp_path, "a.md", "drafts/b.md", "notes/drafts/c.md", "secret.md", "d.txt")
    options = {"include": ["*.md"], "exclude": ["drafts/**", "secret.md"]}
    assert found(tmp_path, **options) == ["a.md", "notes/drafts/c.md"]


def test_exclude_by_folder_name_prunes_it_anywhere(tmp_path: Path) -> None:
    make_tree(tmp_path, "a.md", "drafts/b.md", "notes/drafts/c.md", "notes/d.md")
    assert found(tmp_path, exclude=["drafts"]) == ["a.md", "notes/d.md"]
    assert found(tmp_path, exclude=["**/drafts/"]) == ["a.md", "notes/d.md"]
    assert found(tmp_path, exclude=["[dn]*"]) == ["a.md"]


def test_excluded_unsupported_files_are_not_reported(tmp_path: Path) -> None:
    make_tree(tmp_path, "a.docx")
    assert list(walk([tmp_path], include=["*.docx"], exclude=["a.*"])) == []


def test_files_over_the_size_limit_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("x" * 150)
    (tmp_path / "small.txt").write_text("x" * 100)
    items = list(walk([tmp_path], max_bytes=100))
    assert items[0] == SkippedFile(str(tmp_path.resolve() / "big.txt"), "larger than the 100 bytes limit (150 bytes)")
    assert isinstance(items[1], FoundFile) and items[1].path.name == "small.txt"


def test_size_limit_reason_in_megabytes(tmp_path: Path) -> None:
    with open(tmp_path / "scan.pdf", "wb") as sparse:
        sparse.truncate(int(73.2 * 2**20))
    assert skipped([tmp_path]) == [
        SkippedFile(str(tmp_path.resolve() / "scan.pdf"), "larger than the 50 MB limit (73.2 MB)")
    ]


def test_a_missing_path_is_reported_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    missing = str(tmp_path.resolve() / "nowhere")
    assert list(walk([Path("nowhere")])) == [SkippedFile(missing, "no such file or directory")]


def test_overlapping_paths_yield_each_file_once(tmp_path: Path) -> None:
    make_tree(tmp_path, "a.md", "sub/b.md")
    items = list(walk([tmp_path, tmp_path / "sub", tmp_path / "sub" / "b.md"]))
    assert [Path(item.path).name for item in items] == ["a.md", "b.md"]


def test_symlinks_are_not_followed_by_default(tmp_path: Path) -> None:
    make_tree(tmp_path / "elsewhere", "linked.md", "folder/inner.md")
    make_tree(tmp_path / "root", "own.md")
    (tmp_path / "root" / "link.md").symlink_to(tmp_path / "elsewhere" / "linked.md")
    (tmp_path / "root" / "dir").symlink_to(tmp_path / "elsewhere" / "folder")
    (tmp_path / "root" / "broken.md").symlink_to(tmp_path / "gone.md")
    (tmp_path / "root" / "inner.md").symlink_to("own.md")
    (tmp_path / "root" / "loop").symlink_to("loop")
    (tmp_path / "root" / "lib.so").symlink_to(tmp_path / "gone.so")  # not a document: noise
    root = tmp_path.resolve() / "root"
    assert list(walk([tmp_path / "root"])) == [
        SkippedFile(str(root / "broken.md"), "broken symbolic link"),
        SkippedFile(str(root / "dir"), "symbolic link to a folder out of the walked folder, not followed"),
        SkippedFile(str(root / "inner.md"), "symbolic link, not followed"),
        SkippedFile(str(root / "link.md"), "symbolic link out of the walked folder, not followed"),
        SkippedFile(str(root / "loop"), "symbolic link loop"),
        found_file(tmp_path / "root" / "own.md"),
    ]
    assert [Path(item.path).name for item in walk([tmp_path / "root"], exclude=["*.md", "dir", "loop"])] == []


def test_symlinks_are_followed_when_asked(tmp_path: Path) -> None:
    make_tree(tmp_path / "elsewhere", "linked.md", "folder/inner.md")
    make_tree(tmp_path / "root", "own.md")
    (tmp_path / "root" / "link.md").symlink_to(tmp_path / "elsewhere" / "linked.md")
    (tmp_path / "root" / "dir").symlink_to(tmp_path / "elsewhere" / "folder")
    (tmp_path / "root" / "broken.md").symlink_to(tmp_path / "gone.md")
    items = list(walk([tmp_path / "root"], follow_symlinks=True))
    assert items[0] == SkippedFile(str(tmp_path.resolve() / "root" / "broken.md"), "broken symbolic link")
    assert [item.path for item in items[1:]] == [
        (tmp_path / "elsewhere" / "folder" / "inner.md").resolve(),
        (tmp_path / "elsewhere" / "linked.md").resolve(),
        (tmp_path / "root" / "own.md").resolve(),
    ]


def test_symlink_loops_end(tmp_path: Path) -> None:
    make_tree(tmp_path, "a/doc.md")
    (tmp_path / "a" / "loop").symlink_to(tmp_path / "a")
    assert found(tmp_path, follow_symlinks=True) == ["a/doc.md"]
    loop = SkippedFile(str(tmp_path.resolve() / "a" / "loop"), "symbolic link loop (a folder inside itself)")
    assert skipped([tmp_path], follow_symlinks=True) == [loop]


def test_fifos_and_sockets_are_listed_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "sock"))
        make_tree(tmp_path, "doc.md")
        items = list(walk([tmp_path]))
        named = list(walk([tmp_path / "pipe.txt"]))
    assert items == [
        found_file(tmp_path / "doc.md"),
        SkippedFile(str(tmp_path.resolve() / "pipe.txt"), "not a regular file (FIFO)"),
        SkippedFile(str(tmp_path.resolve() / "sock"), "not a regular file (socket)"),
    ]
    assert named == [SkippedFile(str(tmp_path.resolve() / "pipe.txt"), "not a regular file (FIFO)")]
    assert list(walk([tmp_path], include=["*.md"])) == [found_file(tmp_path / "doc.md")]


def test_a_named_symlink_is_followed(tmp_path: Path) -> None:
    make_tree(tmp_path, "real/doc.md")
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    items = list(walk([tmp_path / "alias", tmp_path / "dangling"]))
    assert items[0] == found_file(tmp_path / "real" / "doc.md")
    assert items[1] == SkippedFile(str(tmp_path.resolve() / "dangling"), "broken symbolic link")


@pytest.mark.skipif(as_root, reason="root can read any file")
def test_unreadable_folders_and_files_are_reported(tmp_path: Path) -> None:
    make_tree(tmp_path, "locked/a.md", "closed.md", "open.md")
    (tmp_path / "locked").chmod(0)
    (tmp_path / "closed.md").chmod(0)
    try:
        items = list(walk([tmp_path]))
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert items[0] == SkippedFile(str(tmp_path.resolve() / "closed.md"), "permission denied")
    assert items[1] == SkippedFile(str(tmp_path.resolve() / "locked"), "permission denied")
    assert isinstance(items[2], FoundFile) and items[2].path.name == "open.md"


def test_file_type_by_extension() -> None:
    assert set(SUPPORTED_EXTENSIONS) == {
        ".txt",
        ".md",
        ".markdown",
        ".rst",
        ".html",
        ".htm",
        ".pdf",
    }
    types = [file_type(Path(n)) for n in ("a.TXT", "b.md", "c.markdown", "d.rst", "e.htm", "f.Pdf")]
    assert types == ["text", "markdown", "markdown", "rst", "html", "pdf"]


def test_file_type_rejects_other_extensions() -> None:
    with pytest.raises(UnreadableDocument) as error:
        file_type(Path("deck.key"))
    assert error.value.reason == "unsupported file type .key"


def test_a_name_that_is_not_utf8_is_found_and_keyed_losslessly(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/ok_\xff.txt"
    with open(raw, "wb") as file:
        file.write(b"rain")
    (item,) = walk([tmp_path])
    assert isinstance(item, FoundFile)
    assert item.path.read_bytes() == b"rain"  # the path still opens the file
    assert path_key(item.path) == f"{tmp_path.resolve()}/ok_\\xff.txt"
    assert path_key(tmp_path / "café.txt") == str(tmp_path / "café.txt")  # UTF-8 names are their own key


def test_two_names_shown_alike_are_not_confused(tmp_path: Path) -> None:
    with open(os.fsencode(tmp_path) + b"/ok_\xff.txt", "wb") as file:
        file.write(b"byte")
    (tmp_path / "ok_\\xff.txt").write_text("backslash")  # a literal backslash, x, f, f
    items = list(walk([tmp_path]))
    assert isinstance(items[0], FoundFile)
    assert items[1] == SkippedFile(
        f"{tmp_path.resolve()}/ok_\\xff.txt", "another file's name is shown the same way; rename one of them"
    )
