"""Audit before effect, under real faults on a real `sealgate serve` with mixed load:

- the home on a small real filesystem filled to the last byte (SQLite home; PostgreSQL
  registry with the home's audit on the full disk);
- the audit writer stopped (SIGSTOP).

Each reconciles what the clients were told with the registry and the trail: a change
answered 503 had no effect (the registry holds exactly the proofs answered 201, and
exactly the revocations answered 200), every effect has an audit record, `/readyz`
is not ready within 1 s of the first failure and ready again once the fault is gone.
The figures are printed (``-s``) for the issue's note.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from sealgate.gateway.home import Settings
from sealgate.gateway.provision import init_home
from sealgate.verify.directory import Role
from tests.gateway.faultload import CHANGES, Answer, Load, audit_writer_pid, compact
from tests.gateway.full_disk import Filler, small_filesystem
from tests.gateway.serving import SEALGATE, free_port, serving
from tests.postgres_server import PostgresServer
from tests.waiting import eventually

pytestmark = [pytest.mark.processes, pytest.mark.slow]


def _load(settings: Settings, credentials: Any, port: int) -> Load:
    token = {c.role: t for c, t in credentials.clients}

    def auth(role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {token[role]}"}

    return Load(
        url=f"http://127.0.0.1:{port}",
        signer=auth(Role.SIGNER),
        issuer=auth(Role.ISSUER),
        verifier=auth(Role.VERIFIER),
        seal_id=credentials.seals[0].seal_id,
    )


def registry_effects(settings: Settings) -> tuple[set[str], set[str]]:
    """The registry's proofs and its revoked codes (compact)."""
    if settings.database_kind == "postgresql":
        with psycopg.connect(settings.database_url) as conn:
            proofs = {r[0] for r in conn.execute("SELECT code FROM proofs")}
            revoked = {
                r[0]
                for r in conn.execute("SELECT code FROM status_history WHERE to_status = 'revoked'")
            }
        return proofs, revoked
    conn = sqlite3.connect(settings.home / "registry.db")
    try:
        proofs = {r[0] for r in conn.execute("SELECT code FROM proofs")}
        revoked = {
            r[0]
            for r in conn.execute("SELECT code FROM status_history WHERE to_status = 'revoked'")
        }
    finally:
        conn.close()
    return proofs, revoked


def audited(settings: Settings) -> dict[tuple[str, str], set[str]]:
    """The trail's codes by (action, result): ("seal", "intent"), ("status", "200"), …"""
    conn = sqlite3.connect(settings.audit_path)
    try:
        out: dict[tuple[str, str], set[str]] = {}
        for action, result, code in conn.execute("SELECT action, result, code FROM audit"):
            if code:
                out.setdefault((action, result), set()).add(compact(code))
        return out
    finally:
        conn.close()


def reconcile(load: Load, settings: Settings) -> dict[str, Any]:
    """What clients were told against the registry and the trail (the server stopped,
    so every journal is chained)."""
    acknowledged = {c for a in load.of("seal", "batch") if a.status == 201 for c in a.codes}
    revoked_200 = {a.codes[0] for a in load.of("revoke") if a.status == 200}
    revoke_refused = {a.codes[0] for a in load.of("revoke") if a.status != 200}
    proofs, revoked = registry_effects(settings)
    trail = audited(settings)
    seal_records = trail.get(("seal", "intent"), set()) | trail.get(("seal", "201"), set())
    status_records = trail.get(("status", "intent"), set()) | trail.get(("status", "200"), set())
    figures = {
        "proofs_in_registry": len(proofs),
        "proofs_answered_201": len(acknowledged),
        "proofs_audited": len(proofs & seal_records),
        "proofs_with_intent_only": len(proofs - trail.get(("seal", "201"), set())),
        "revocations_in_registry": len(revoked),
        "revocations_answered_200": len(revoked_200),
        "revocations_refused": len(revoke_refused),
        "revocations_audited": len(revoked & status_records),
    }
    assert proofs == acknowledged, "a proof registered but not answered 201, or the reverse"
    assert revoked == revoked_200, "a revocation made but not answered 200, or the reverse"
    assert not revoked & revoke_refused
    assert proofs <= seal_records, "a registered proof without an audit record"
    assert revoked <= status_records, "a revocation without an audit record"
    return figures


def readiness_figures(
    load: Load, first_failure: float, restored: float, *, held: bool = True
) -> dict[str, Any]:
    """When `/readyz` said not ready after the first failed change, and ready again.

    ``held``: nothing can mend the fault before ``restored`` (a full disk stays full), so
    every check from a second after the first failure says not ready. A stopped audit
    writer is not held: the watchdog kills and replaces it within about a second, and
    readiness may rightly come back before the test sends SIGCONT."""
    checks = [a for a in load.of("readyz") if a.asked >= first_failure - 1.0]
    not_ready = [a for a in checks if a.status == 503 and a.asked <= restored]
    assert not_ready, "/readyz never said not ready during the fault"
    if held:
        # Every readiness check asked from 1 s after the first failure until the fault
        # ended said not ready (a balancer would have sent nothing there).
        late = [a for a in checks if first_failure + 1.0 <= a.asked and a.answered <= restored]
        assert late and all(a.status == 503 for a in late), [(a.status, a.body) for a in late][:5]
    ready_again = [a for a in checks if a.asked >= restored and a.status == 200]
    return {
        "not_ready_after_first_failure_s": round(
            max(0.0, not_ready[0].answered - first_failure), 3
        ),
        "readyz_not_ready_cause": not_ready[0].body.get("audit") if not_ready[0].body else None,
        "ready_again_after_fault_end_s": round(ready_again[0].answered - restored, 3)
        if ready_again
        else None,
    }


def first_failed_change(load: Load, since: float) -> Answer:
    failed = [a for a in load.of(*CHANGES, since=since) if a.status >= 500]
    return min(failed, key=lambda a: a.answered)


async def _until_flowing(load: Load, since: float, what: str) -> None:
    def flowing() -> bool:
        done = load.of("seal", since=since)
        return (
            sum(a.status == 201 for a in done) >= 10
            and any(a.status == 201 for a in load.of("batch", since=since))
            and any(a.status == 200 for a in load.of("revoke", since=since))
        )

    await eventually(flowing, timeout=60, interval=0.1, what=what)


async def _hold_fault_past_a_second_of_failures(load: Load, since: float) -> None:
    """Keep the fault on until `/readyz` has been asked and answered 20 times from 1 s
    after the first failed change on (about 2 s more): what the readiness figures judge."""

    def held() -> bool:
        failed = [a for a in load.of(*CHANGES, since=since) if a.status >= 500]
        if not failed:
            return False
        first = min(a.answered for a in failed)
        return sum(a.asked >= first + 1.0 for a in load.of("readyz", since=since)) >= 20

    await eventually(held, timeout=30, what="readiness asked through the fault")


def _audit_verify(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SEALGATE, "--home", str(home), "audit", "verify"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _report(name: str, figures: dict[str, Any]) -> None:
    print(f"\n{name}: {json.dumps(figures, ensure_ascii=False, indent=1)}")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_full_disk_under_load_leaves_no_unaudited_change_and_no_false_503(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database_url = None
    if backend == "postgres":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        database_url = server.create_database("auditfull")
    with small_filesystem(tmp_path / "disk", 96) as kind:
        settings, credentials = init_home(
            tmp_path / "disk" / "home", demo=True, database_url=database_url
        )
        port = free_port()
        load = _load(settings, credentials, port)
        with serving(settings.home, port, log=tmp_path / "serve.log"):
            running = asyncio.create_task(load.run())
            try:
                await _until_flowing(load, 0.0, "load before the fault")
                filled = time.monotonic()
                filler = Filler(tmp_path / "disk")
                filler.fill()

                def changes_refused() -> bool:
                    refused = [a for a in load.of(*CHANGES, since=filled) if a.status == 503]
                    return len(refused) >= 20

                await eventually(changes_refused, timeout=60, what="changes refused on a full disk")
                await eventually(
                    lambda: any(a.status == 503 for a in load.of("readyz", since=filled)),
                    timeout=10,
                    what="/readyz not ready on a full disk",
                )
                await _hold_fault_past_a_second_of_failures(load, filled)
                restored = time.monotonic()
                await filler.free()
                await eventually(
                    lambda: any(a.status == 200 for a in load.of("readyz", since=restored)),
                    timeout=15,
                    what="/readyz ready once space is freed",
                )
                await _until_flowing(load, time.monotonic(), "load after the fault")
            finally:
                load.stop.set()
                await running
        # stopped: the writer chained every journal before it ended
        assert not list((settings.home / "audit-journal").glob("*.jnl"))
        figures: dict[str, Any] = {"filesystem": kind, "backend": backend}
        figures |= load.summary()
        figures |= reconcile(load, settings)
        first = first_failed_change(load, filled)
        figures["first_failure"] = f"{first.kind} {first.status} {first.problem}"
        figures |= readiness_figures(load, first.answered, restored)
        verified = _audit_verify(settings.home)
        figures["audit_verify"] = verified.stdout.strip() or verified.stderr.strip()
        _report(f"full disk, {backend} registry", figures)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert not any(a.status == 0 for a in load.answers), "a request got no answer"
        # a change answered 503 was refused as not made, never as "done but unaudited"
        refused = [a for a in load.of(*CHANGES, since=filled) if a.status == 503]
        assert refused and all(a.problem is not None for a in refused)


async def test_a_stopped_audit_writer_under_load_leaves_no_unaudited_change(
    tmp_path: Path,
) -> None:
    settings, credentials = init_home(tmp_path / "home", demo=True)
    port = free_port()
    load = _load(settings, credentials, port)
    with serving(settings.home, port, log=tmp_path / "serve.log") as process:
        running = asyncio.create_task(load.run())
        try:
            await _until_flowing(load, 0.0, "load before the fault")
            writer = audit_writer_pid(process.pid)
            assert writer is not None
            stopped = time.monotonic()
            os.kill(writer, signal.SIGSTOP)
            try:
                await eventually(
                    lambda: sum(a.status == 503 for a in load.of(*CHANGES, since=stopped)) >= 10,
                    timeout=30,
                    what="changes refused while the audit writer is stopped",
                )
                await eventually(
                    lambda: any(a.status == 503 for a in load.of("readyz", since=stopped)),
                    timeout=10,
                    what="/readyz not ready while the audit writer is stopped",
                )
                await _hold_fault_past_a_second_of_failures(load, stopped)
            finally:
                restored = time.monotonic()
                with contextlib.suppress(ProcessLookupError):  # the watchdog killed it
                    os.kill(writer, signal.SIGCONT)
            await eventually(
                lambda: any(a.status == 200 for a in load.of("readyz", since=restored)),
                timeout=20,
                what="/readyz ready once the writer runs again",
            )
            await _until_flowing(load, time.monotonic(), "load after the fault")
        finally:
            load.stop.set()
            await running
    figures: dict[str, Any] = {"fault": "audit writer SIGSTOPped"}
    figures |= load.summary()
    figures |= reconcile(load, settings)
    first = first_failed_change(load, stopped)
    figures["first_failure"] = f"{first.kind} {first.status} {first.problem}"
    figures |= readiness_figures(load, first.answered, restored, held=False)
    verified = _audit_verify(settings.home)
    figures["audit_verify"] = verified.stdout.strip() or verified.stderr.strip()
    _report("audit writer stopped", figures)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert not any(a.status == 0 for a in load.answers), "a request got no answer"
