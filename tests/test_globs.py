"""The one glob rule, shared by `ingest --include/--exclude` and the `glob` filter."""

from __future__ import annotations

import pytest

from indexes import glob_matches


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.md", "a.md", True),
        ("*.md", "docs/a.md", False),  # `*` stays within one folder
        ("doc?/a.md", "docs/a.md", True),
        ("doc?/a.md", "doc//a.md", False),  # `?` never matches "/"
        ("**/a.md", "a.md", True),  # `**/` also matches no folder at all
        ("**/a.md", "x/y/a.md", True),
        ("docs/**", "docs/x/y/z.txt", True),
        ("docs/**/*.md", "docs/a.md", True),
        ("**.md", "x/a.md", False),  # `**` crosses folders only as a whole segment
        ("[ab]*.md", "b.md", True),  # `[...]` is a class
        ("[!ab]*.md", "b.md", False),
        ("[ab]*.md", "[ab].md", False),
        ("[[]ab]*", "[ab].md", True),  # a class holding "[" matches it
        ("\\[ab]*", "[ab].md", True),  # so does an escaped "["
        ("*.md", ".hidden.md", True),  # wildcards match dot files
        ("**/*.rst", "/home/u/.local/share/ix/uploads/x.rst", True),
        ("drafts/", "drafts/b.md", True),  # a trailing "/" means everything under the folder
        ("*.MD", "a.md", False),  # case counts
        ("/data/*/x", "/data/a/x", True),
    ],
)
def test_the_rule(pattern: str, path: str, expected: bool) -> None:
    assert glob_matches(pattern, path) is expected
