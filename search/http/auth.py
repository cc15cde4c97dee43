"""API keys: who may call the service, whether they may change data, and on which indexes.

Keys come from `SEMSEARCH_API_KEYS` (comma-separated) or an `--api-keys-file` (one entry a line,
`#` starts a comment, blank lines are ignored). Each entry is `KEY[:ACCESS[:INDEXES]]`:

    KEY                  read-write, every index
    KEY:ro               read-only: searches, answers and listings; no uploads, deletes or jobs
    KEY:rw:docs|wiki     read-write, but only on the indexes named docs and wiki
    KEY:ro:docs          read-only, only on docs

A key is at least 16 visible ASCII characters without `,`, `:` or `#`, for example the output
of `python -c "import secrets; print(secrets.token_urlsafe(32))"`. No keys at all: the service is open.
Keys never appear in messages or logs; a Principal's `id` (8 hex digits of the key's SHA-256) does.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from search.errors import Forbidden, KeyConfigError, Unauthorized

from .limits import RateLimit
from .metrics import flat_routes

MIN_KEY_CHARS = 16
_KEY_CHARS = frozenset(map(chr, range(0x21, 0x7F))) - set(",:#")
_ACCESS = {"": True, "rw": True, "ro": False}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a non-secret id (for logs and rate limits) and what the key may do."""

    id: str
    write: bool = True
    indexes: frozenset[str] | None = None  # None: every index

    def may_use(self, index: str | None) -> bool:
        """Whether this key reaches `index` (None: a route that is about no one index)."""
        return index is None or self.indexes is None or index in self.indexes

    def refusal(self, index: str) -> str:
        """Why this key may not use `index`, naming the indexes it may use."""
        allowed = ", ".join(repr(name) for name in sorted(self.indexes or ())) or "none"
        return f"API key {self.id} has no access to the index {index!r}; the indexes it may use: {allowed}"


ANONYMOUS = Principal(id="anonymous")  # every caller when no keys are configured


@dataclass(frozen=True)
class _Key:
    digest: bytes  # SHA-256 of the key: equal lengths, so comparing leaks no length either
    principal: Principal
    where: str  # "line 3 of keys.txt": for messages, which never show the key itself


class ApiKeys:
    """The configured keys; `check` turns an Authorization header into a Principal or a 401/403."""

    def __init__(self, keys: Iterable[_Key] = ()) -> None:
        self._keys = tuple(keys)

    def __len__(self) -> int:
        return len(self._keys)

    @classmethod
    def parse(cls, spec: str, *, source: str = "SEMSEARCH_API_KEYS") -> ApiKeys:
        """Keys from a comma-separated spec; errors name the entry by its position in `source`."""
        entries = (entry.strip() for entry in spec.split(","))
        return cls(
            _unique(_parse_entry(f"entry {n} of {source}", entry) for n, entry in enumerate(entries, 1) if entry)
        )

    @classmethod
    def load(cls, path: Path) -> ApiKeys:
        """Keys from a file, one entry a line; errors name the line."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyConfigError(
                f"cannot read the API keys file {path}: {exc}; check the path given to --api-keys-file"
            ) from exc
        lines = ((f"line {n} of {path}", line.split("#", 1)[0].strip()) for n, line in enumerate(text.splitlines(), 1))
        return cls(_unique(_parse_entry(where, entry) for where, entry in lines if entry))

    @classmethod
    def configure(cls, spec: str | None = None, path: Path | None = None) -> ApiKeys:
        """The keys of both sources together (either may be None); no keys means an open service."""
        keys = [*(cls.parse(spec)._keys if spec else ()), *(cls.load(path)._keys if path else ())]
        return cls(_unique(keys))

    def check(self, authorization: str | None, *, write: bool, index: str | None) -> Principal:
        """The caller behind an `Authorization: Bearer KEY` header, or Unauthorized (401) / Forbidden (403)."""
        if not self._keys:
            return ANONYMOUS
        token = _bearer_token(authorization)
        if token is None:
            raise Unauthorized(
                "this route needs an API key: send the header `Authorization: Bearer <key>`", headers=_CHALLENGE
            )
        principal = self._match(token)
        if principal is None:
            raise Unauthorized(
                "the API key is not valid: check the key sent in the Authorization header", headers=_CHALLENGE
            )
        if write:
            _check_write(principal)
        if not principal.may_use(index):
            raise Forbidden(principal.refusal(str(index)))
        return principal

    def _match(self, token: str) -> Principal | None:
        """Compares against every key, with no early exit: the time taken says nothing about which key matched."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found = None
        for key in self._keys:
            if hmac.compare_digest(key.digest, digest):
                found = key.principal
        return found


_CHALLENGE = {"www-authenticate": "Bearer"}


def _bearer_token(header: str | None) -> str | None:
    scheme, _, token = (header or "").strip().partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def _unique(keys: Iterable[_Key]) -> Iterator[_Key]:
    """The keys, refusing the same key twice (or two keys whose ids collide)."""
    seen: dict[str, str] = {}
    for key in keys:
        if key.principal.id in seen:
            raise KeyConfigError(f"{key.where}: the same key as {seen[key.principal.id]}; keep one entry per key")
        seen[key.principal.id] = key.where
        yield key


def _parse_entry(where: str, entry: str) -> _Key:
    """`KEY[:ro|rw[:INDEX|INDEX...]]` -> a key; messages say where, never what the key is."""
    secret, _, rest = entry.partition(":")
    access, _, scope = rest.partition(":")
    if len(secret) < MIN_KEY_CHARS:
        raise KeyConfigError(f"{where}: the key is shorter than {MIN_KEY_CHARS} characters; use a longer random key")
    if not set(secret) <= _KEY_CHARS:
        raise KeyConfigError(
            f"{where}: the key has a character that is not visible ASCII (spaces, ',', ':' and '#' are not allowed)"
        )
    if access not in _ACCESS or ":" in scope:
        raise KeyConfigError(f"{where}: after the key write ':ro' or ':rw', then optionally ':index1|index2'")
    indexes = frozenset(name.strip() for name in scope.split("|")) if scope else None
    if indexes is not None and "" in indexes:
        raise KeyConfigError(f"{where}: an empty index name in the key's scope; write ':rw:name1|name2'")
    digest = hashlib.sha256(secret.encode()).digest()
    return _Key(digest, Principal(id=digest.hex()[:8], write=_ACCESS[access], indexes=indexes), where)


async def writes(request: Request) -> None:
    """Marks a route that changes data, so read-only keys get a 403: `dependencies=[Depends(writes)]`.

    Works whichever of it and the route's Guard runs first: the second one to run makes the check.
    """
    request.state.writes = True
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Principal):
        _check_write(principal)


class Guard:
    """The dependency `require` returns: checks the key, then spends one request of its rate budget."""

    def __init__(
        self,
        keys: ApiKeys,
        *,
        write: bool,
        limit: RateLimit | None,
        default_index: str | None,
        every_index: bool = False,
    ) -> None:
        self.keys, self.write, self.limit, self.default_index = keys, write, limit, default_index
        self.every_index = every_index

    async def __call__(self, request: Request) -> Principal:
        index = request.path_params.get("name", self.default_index)
        write = self.write or getattr(request.state, "writes", False)
        principal = self.keys.check(request.headers.get("authorization"), write=write, index=index)
        if self.every_index and principal.indexes is not None:
            raise Forbidden(
                f"API key {principal.id} reaches only some indexes and this route covers the whole server: "
                "use a key without an index scope"
            )
        request.state.principal = principal  # for `writes`, the access log, and routes that list indexes
        if self.limit is not None and not getattr(request.state, "rate_counted", False):
            request.state.rate_counted = True  # two guards on one route spend one request, not two
            client = request.client.host if request.client else "unknown"
            self.limit.take(principal.id if self.keys else f"client {client}")
        return principal


def require(
    keys: ApiKeys,
    *,
    write: bool = False,
    limit: RateLimit | None = None,
    default_index: str | None = None,
    every_index: bool = False,
) -> Guard:
    """A FastAPI dependency guarding routes: `APIRouter(dependencies=[Depends(require(keys))])`.

    `write=True`, or a `writes` marker on the route, refuses read-only keys. The index checked against a
    key's scope is the `{name}` path parameter, else `default_index`; `every_index=True` (a route about
    all indexes, such as /metrics) refuses keys scoped to some. With no keys, callers are ANONYMOUS
    and the rate limit counts per client address.
    """
    return Guard(keys, write=write, limit=limit, default_index=default_index, every_index=every_index)


def route_access(app: FastAPI) -> dict[str, str]:
    """`"METHOD /path" -> public | read | write` for every API route: a table for tests to pin down."""
    table: dict[str, str] = {}
    for route in flat_routes(app):
        if isinstance(getattr(route, "original_route", route), APIRoute):
            calls = list(_calls(route.dependant))
            guards = [c for c in calls if isinstance(c, Guard)]
            access = "public" if not guards else "write" if writes in calls or any(g.write for g in guards) else "read"
            table.update({f"{method} {route.path}": access for method in sorted(route.methods or ())})
    return table


def _check_write(principal: Principal) -> None:
    if not principal.write:
        raise Forbidden(f"API key {principal.id} is read-only and this route changes data: use a read-write key")


def _calls(dependant: Dependant) -> Iterator[object]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)
