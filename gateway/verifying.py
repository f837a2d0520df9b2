"""``GET /v1/verify/{code}``: the route the whole city calls, kept cheap per request.

What a request needs is mostly known from earlier ones: the client behind a bearer
header, the purpose in a query string, the compact form of a code already checked, the
answer's JSON for a status version. Each is remembered (bounded), so a verification of a
popular code is a few dictionary reads, a check of the client's failure budget and one
string join; only ``checked_at`` is new in each answer. Anything not remembered takes
the full path (code check, cache tiers, registry), which fills the memories.

Nothing here weakens a check: remembered codes passed the keyed-tag check (a code's
check is a pure function of its text, and only genuine codes are remembered); statuses
come from the in-process tier, which invalidation and the change feed keep right; the
answer's status is derived anew (``not-yet-valid``, ``expired``) at every request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from sealgate.gateway.audit import AUDIT_NOTE
from sealgate.gateway.auth import Authenticator, require_purpose
from sealgate.gateway.checking import StatusChecker, status_view
from sealgate.gateway.instants import rfc3339
from sealgate.gateway.language import asks_chinese
from sealgate.gateway.requests import parse_purpose
from sealgate.gateway.throttle import (
    FailedLookupLimiter,
    Throttled,
    limited_lookup,
    too_many_failed_lookups,
)
from sealgate.verify.directory import Client, Role
from sealgate.verify.registry import ProofStatus, Status

MAX_REMEMBERED = 100_000
# Every answer's fixed headers, on either way (the application's or the dispatch's).
ANSWER_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}
_HEADERS = CIMultiDict(ANSWER_HEADERS)
_VALUES = {member: member.value for member in Status}
FIELDS = "fields"  # ?fields=content: a content read (sealgate.gateway.content_reads)


def asks_content(request: web.Request) -> bool:
    """Whether the query names ``fields`` at all (then only a content read answers)."""
    return FIELDS in request.query

# A status's view as of a time, in Chinese or not (:func:`status_view`'s form).
StatusView = Callable[[ProofStatus, float, bool], dict[str, Any]]


def _plain_view(status: ProofStatus, now: float, chinese: bool) -> dict[str, Any]:
    return status_view(status, now, chinese=chinese)


class StatusAnswers:
    """The JSON of status answers, per (code, status version) and derived status; only
    ``checked_at`` is appended per request."""

    def __init__(
        self,
        max_entries: int = MAX_REMEMBERED,
        *,
        chinese: bool = False,
        view: StatusView = _plain_view,
    ) -> None:
        self._max_entries = max_entries
        self._chinese = chinese  # with the status's label in Chinese
        # What the directory adds (the seal's kind, the data owner's name) is remembered
        # with the rest: a seal's kind is fixed for its life, an office's name near enough.
        self._view = view
        # (code, version) -> (derived status's value, JSON prefix): strings and numbers
        # only, so the garbage collector stops tracking them (see sealgate.cache.local)
        self._prefixes: dict[tuple[str, int], tuple[str, bytes]] = {}
        self._second = -1  # the whole second of the last answer, and its ending
        self._ending = b""

    def body(self, status: ProofStatus, now: float) -> bytes:
        key = (status.code, status.version)
        current = _VALUES[status.current_status(now)]
        entry = self._prefixes.get(key)
        if entry is None or entry[0] != current:
            view = self._view(status, now, self._chinese)
            del view["checked_at"]
            text = json.dumps(view, ensure_ascii=False, separators=(",", ":"))
            entry = (current, (text[:-1] + ',"checked_at":"').encode())
            if len(self._prefixes) >= self._max_entries:
                self._prefixes.clear()
            self._prefixes[key] = entry
        second = int(now)
        if second != self._second:
            self._second, self._ending = second, rfc3339(second).encode() + b'"}\n'
        return entry[1] + self._ending


class VerifyEndpoint:
    def __init__(
        self,
        *,
        auth: Authenticator,
        checker: StatusChecker,
        limiter: FailedLookupLimiter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._auth = auth
        self._checker = checker
        self._limiter = limiter
        self._clock = clock

        def view(status: ProofStatus, now: float, chinese: bool) -> dict[str, Any]:
            return self._checker.view(status, now, chinese=chinese)

        self._answers = StatusAnswers(view=view)
        self._answers_zh = StatusAnswers(chinese=True, view=view)
        self._purposes: dict[str, str] = {}  # raw query string → its checked purpose

    def purpose(self, request: web.Request) -> str:
        # The raw (still percent-encoded) query: decoded forms of different queries can
        # coincide (a%2526 and a%26), and a memo must not let one answer for another.
        query = request.rel_url.raw_query_string
        purpose = self._purposes.get(query)
        if purpose is None:
            purpose = parse_purpose(request.query.get("purpose"))
            if asks_content(request):
                return purpose  # not remembered: a content read never takes the dispatch
            if len(self._purposes) >= 1024:
                self._purposes.clear()
            self._purposes[query] = purpose
        return purpose

    def remembered_answer(
        self, authorization: str, raw_query: str, code_text: str
    ) -> tuple[Client, str, bytes] | None:
        """The client, purpose and answer's body of a verification whose every input is
        remembered (the client behind the header, the purpose of the raw query, the
        status of the typed code) and which passes every check :meth:`answer` makes.

        ``None`` in any other case, refusals included: :meth:`answer` then takes the
        full way, which remembers what it learns and answers or refuses.
        """
        client = self._auth.remembered(authorization)
        if client is None or client.role is not Role.VERIFIER:
            return None
        purpose = self._purposes.get(raw_query)
        if purpose is None or purpose not in client.purposes:
            return None
        status = self._checker.remembered(code_text)
        if status is None:
            return None
        try:
            self._limiter.admit(client.client_id, client.lookup_limit)
        except Throttled:
            return None
        return client, purpose, self._answers.body(status, self._clock())

    async def answer(self, request: web.Request) -> web.Response:
        client = await self._auth.require(request, Role.VERIFIER)
        purpose = self.purpose(request)
        request[AUDIT_NOTE].purpose = purpose
        require_purpose(client, purpose)
        code_text = request.match_info["code"]
        chinese = asks_chinese(request)
        now = self._clock()
        remembered = self._checker.remembered(code_text)
        if remembered is not None:
            try:
                self._limiter.admit(client.client_id, client.lookup_limit)
            except Throttled as exc:
                raise too_many_failed_lookups(exc) from None
            status = remembered
        else:
            checker = self._checker
            status, as_of = await limited_lookup(
                self._limiter,
                client.client_id,
                lambda: checker.found(code_text),
                limit=client.lookup_limit,
            )
            if as_of is not None:
                # Through a registry outage (docs/design.md §11): the answer says how
                # fresh it is. Rare, so built in full rather than remembered.
                view = checker.view(status, now, as_of, chinese=chinese)
                body = json.dumps(view, ensure_ascii=False, separators=(",", ":")).encode()
                return web.Response(body=body + b"\n", headers=_HEADERS)
        answers = self._answers_zh if chinese else self._answers
        return web.Response(body=answers.body(status, now), headers=_HEADERS)
