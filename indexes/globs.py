"""The one glob rule, for `ingest --include/--exclude` and the `glob` filter (wcmatch's glob).

`*` and `?` match within one folder, `**` as a whole segment crosses folders (`**/` also
matches no folder at all), `[...]` is a character class (`[!...]` negated) and a backslash
escapes the next character. Wildcards match names that start with a dot. A pattern that
ends in `/` matches everything under that folder. Matching is on the whole path.
"""

from __future__ import annotations

from functools import lru_cache

from wcmatch import glob

# FORCEUNIX: "/" separates folders and case counts, whatever the platform.
_FLAGS = glob.GLOBSTAR | glob.DOTGLOB | glob.FORCEUNIX


def glob_matches(pattern: str, path: str) -> bool:
    """Whether the whole of `path` matches the glob `pattern`."""
    return _matcher(pattern).match(path)


@lru_cache(maxsize=512)
def _matcher(pattern: str) -> glob.WcMatcher[str]:
    if pattern.endswith("/"):
        pattern += "**"
    return glob.compile(pattern, flags=_FLAGS)
