"""Mixed load on a real `sealgate serve` while a fault is played, and what it was told.

Single sealings, batches of 50, revocations of proofs sealed earlier and verifications
run side by side; `/readyz` is polled throughout. Every answer is kept (kind, status,
problem code, when it was asked and answered, the codes it concerned), so a test can
reconcile what clients were told with what the registry and the audit trail hold.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.gateway.conftest import proof_request
from tests.gateway.serving import child_pid

CHANGES = ("seal", "batch", "revoke")
BATCH = 50


@dataclass(frozen=True, slots=True)
class Answer:
    kind: str  # seal, batch, revoke, verify, readyz
    status: int  # 0: no answer (the connection failed or timed out)
    problem: str | None
    asked: float  # time.monotonic()
    answered: float
    codes: tuple[str, ...] = ()  # compact: sealed (201), or the one a revocation named
    body: Any = None  # readyz: its checks


def compact(code: str) -> str:
    return code.replace("-", "")


@dataclass
class Load:
    """The load's clients and every answer they got."""

    url: str
    signer: dict[str, str]
    issuer: dict[str, str]
    verifier: dict[str, str]
    seal_id: str
    answers: list[Answer] = field(default_factory=list)
    # sealed and answered 201, not yet revoked: what revocations and verifications name
    sealed: collections.deque[str] = field(default_factory=collections.deque)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def of(self, *kinds: str, since: float = 0.0) -> list[Answer]:
        return [a for a in self.answers if a.kind in kinds and a.asked >= since]

    async def run(self) -> None:
        """Until :attr:`stop`: 3 single sealers, 1 batch sealer, 1 revoker, 1 verifier,
        and `/readyz` every 50 ms."""
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(
                *(self._loop(session, self._seal, n) for n in range(3)),
                self._loop(session, self._batch, 0),
                self._loop(session, self._revoke, 0),
                self._loop(session, self._verify, 0),
                self._loop(session, self._readyz, 0, pause=0.05),
            )

    async def _loop(
        self, session: aiohttp.ClientSession, step: Any, n: int, pause: float = 0.0
    ) -> None:
        i = 0
        while not self.stop.is_set():
            await step(session, n, i)
            i += 1
            if pause:
                await asyncio.sleep(pause)

    async def _ask(
        self, session: aiohttp.ClientSession, kind: str, method: str, path: str, **kwargs: Any
    ) -> tuple[int, Any]:
        asked = time.monotonic()
        try:
            async with session.request(method, self.url + path, **kwargs) as r:
                body = await r.json(content_type=None)
                status = r.status
        except (aiohttp.ClientError, TimeoutError, ValueError):
            self.answers.append(Answer(kind, 0, None, asked, time.monotonic()))
            return 0, None
        problem = body.get("code") if status >= 400 and isinstance(body, dict) else None
        codes: tuple[str, ...] = ()
        if kind == "seal" and status == 201:
            codes = (compact(body["code"]),)
        elif kind == "batch" and status == 201:
            codes = tuple(compact(item["code"]) for item in body["items"])
        self.answers.append(
            Answer(
                kind,
                status,
                problem,
                asked,
                time.monotonic(),
                codes,
                body.get("checks") if kind == "readyz" else None,
            )
        )
        return status, body

    async def _seal(self, session: aiohttp.ClientSession, n: int, i: int) -> None:
        body = proof_request(self.seal_id, content={"sealer": n, "n": i})
        status, answer = await self._ask(
            session, "seal", "POST", "/v1/certificates", json=body, headers=self.signer
        )
        if status == 201:
            self.sealed.append(compact(answer["code"]))

    async def _batch(self, session: aiohttp.ClientSession, n: int, i: int) -> None:
        items = [proof_request(self.seal_id, content={"batch": i, "n": k}) for k in range(BATCH)]
        await self._ask(
            session, "batch", "POST", "/v1/certificates", json={"items": items}, headers=self.signer
        )

    async def _revoke(self, session: aiohttp.ClientSession, n: int, i: int) -> None:
        if not self.sealed:
            await asyncio.sleep(0.01)
            return
        code = self.sealed.popleft()  # each code is revoked once at most: 200 or not
        asked = time.monotonic()
        try:
            async with session.post(
                f"{self.url}/v1/certificates/{code}/status",
                json={"status": "revoked", "reason": "fault test"},
                headers=self.issuer,
            ) as r:
                body = await r.json(content_type=None)
                status = r.status
        except (aiohttp.ClientError, TimeoutError, ValueError):
            self.answers.append(Answer("revoke", 0, None, asked, time.monotonic(), (code,)))
            return
        problem = body.get("code") if status >= 400 and isinstance(body, dict) else None
        self.answers.append(Answer("revoke", status, problem, asked, time.monotonic(), (code,)))

    async def _verify(self, session: aiohttp.ClientSession, n: int, i: int) -> None:
        if not self.sealed:
            await asyncio.sleep(0.01)
            return
        code = self.sealed[-1]
        await self._ask(
            session, "verify", "GET", f"/v1/verify/{code}?purpose=demo", headers=self.verifier
        )

    async def _readyz(self, session: aiohttp.ClientSession, n: int, i: int) -> None:
        await self._ask(session, "readyz", "GET", "/readyz")

    def summary(self) -> dict[str, Any]:
        """Per kind, answers by status (and problem code), and the longest wait."""
        out: dict[str, Any] = {"requests": len(self.answers)}
        for kind in ("seal", "batch", "revoke", "verify", "readyz"):
            answers = self.of(kind)
            by_status = collections.Counter(
                f"{a.status}" + (f" {a.problem}" if a.problem else "") for a in answers
            )
            out[kind] = {
                "sent": len(answers),
                "answers": dict(sorted(by_status.items())),
                "longest_wait_s": round(max((a.answered - a.asked for a in answers), default=0), 3),
            }
        out["longest_wait_s"] = round(
            max((a.answered - a.asked for a in self.answers if a.kind != "readyz"), default=0), 3
        )
        return out


def audit_writer_pid(session: int) -> int | None:
    """The audit writer process in the session ``session`` leads, if one runs."""
    return child_pid(session, "sealgate.gateway.audit_writer")
