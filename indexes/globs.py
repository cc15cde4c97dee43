"""The one glob rule, for `ingest --include/--exclude` and the `glob` filter (wcmatch's glob).

`*` and `?` match within one folder, `**` as a whole segment crosses folders (`**/` also
matches no folder at all), `[...]` is a character class (`[!...]` negated) and a backslash
escapes the next character. Wildcards match names that start with a dot. A pattern that
ends in `/` matches everything under that folder. Matching is on the whole path.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wcmatch.glob import WcMatcher


def glob_matches(pattern: str, path: str) -> bool:
    """Whether the whole of `path` matches the glob `pattern`."""
    return _matcher(pattern).match(path)


@lru_cache(maxsize=512)
def _matcher(pattern: str) -> WcMatcher[str]:
    from wcmatch import glob  # on first use: `semsearch --help` need not load it

    if pattern.endswith("/"):
        pattern += "**"
    # FORCEUNIX: "/" separates folders and case counts, whatever the platform.
    return glob.compile(pattern, flags=glob.GLOBSTAR | glob.DOTGLOB | glob.FORCEUNIX)
