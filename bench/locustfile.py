"""Locust scenarios: the citywide peak mix against a running gateway (docs/design.md §9, issue 4).

Run by hand (the gateway already serving, the population already issued)::

    SEALGATE_BENCH_CREDENTIALS=.sealgate/demo.tsv SEALGATE_BENCH_CODES=codes.txt \\
        .venv/bin/locust -f bench/locustfile.py --headless --host http://127.0.0.1:8080 \\
        -u 64 -r 16 -t 60s --only-summary

or through :func:`sealgate.bench.load.run_locust`. Configuration, all by environment:

``SEALGATE_BENCH_CREDENTIALS``
    what ``sealgate init --demo`` printed (``seal<TAB>id<TAB>kind``, ``role<TAB>id<TAB>token``).
``SEALGATE_BENCH_CODES``
    the pre-issued population: one verification code a line (≥ 1 M at city scale), read
    once per locust process.
``SEALGATE_BENCH_ZIPF``
    the popularity exponent s (probability ∝ 1 / rank^s), default 1.0.
``SEALGATE_BENCH_SEED``
    the seed of the popularity ranking, default 1: the same in every process, so all of
    them agree on which codes are popular; each process draws from it with a stream of
    its own (seeded by its worker index).
``SEALGATE_BENCH_RATE``
    if set, each user's pace in tasks per second (``constant_throughput``); unset, users
    send their next request as soon as the last one is answered.

The mix, by task weight (status changes send two requests, so by requests it is about
93 / 3 / 2 / 2):

====  ========================================  ===========  =========
 94   ``GET /v1/verify/{code}?purpose=demo``     verifier     Zipf code
  3   ``GET /v1/certificates/{code}/document``   verifier     Zipf code
  2   ``POST /v1/certificates`` (one proof)      signer       fresh
  1   ``POST /v1/certificates/{code}/status``    issuer       own proof
====  ========================================  ===========  =========

Status changes touch only proofs this user sealed itself, never the shared population:
pledge then release (``pledged`` → ``valid``), and one time in ten the revocation of a
freshly sealed proof. Every response other than the expected 200/201 is a failure.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, constant_throughput, events, task
from locust.env import Environment
from locust.runners import MasterRunner

from sealgate.bench.population import Credentials, ZipfSampler, proof_request, read_codes

VERIFY = "/v1/verify/{code}"
DOCUMENT = "/v1/certificates/{code}/document"
SEAL = "/v1/certificates"
STATUS = "/v1/certificates/{code}/status"
PURPOSE = "demo"
REVOKE_ONE_IN = 10  # of the status tasks, the share that revokes a fresh proof instead
OWN_PROOFS_KEPT = 32  # each user pledges and releases among its latest own proofs


class _Population:
    """What every user of one locust process shares: tokens, seal, popular codes."""

    credentials: Credentials
    sampler: ZipfSampler
    size: int
    reseeded = False

    @classmethod
    def load(cls) -> None:
        cls.credentials = Credentials.read(Path(_required("SEALGATE_BENCH_CREDENTIALS")))
        codes = read_codes(Path(_required("SEALGATE_BENCH_CODES")))
        exponent = float(os.environ.get("SEALGATE_BENCH_ZIPF", "1.0"))
        seed = int(os.environ.get("SEALGATE_BENCH_SEED", "1"))
        cls.sampler = ZipfSampler(codes, exponent, seed)
        cls.size = len(codes)

    @classmethod
    def reseed_draws(cls, environment: Environment) -> None:
        """Give this process a draw stream of its own, keeping the shared ranking.

        ZipfSampler ranks and draws with one generator; the worker index is known only
        once the worker has joined the master, hence here and not at load.
        """
        if cls.reseeded:
            return
        cls.reseeded = True
        worker = getattr(environment.runner, "worker_index", 0)
        cls.sampler._rng.seed(f"sealgate-bench-draws-{worker}")


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"{name} is not set (see bench/locustfile.py)")
    return value


def _load_population(environment: Environment, **_kwargs: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        return  # the master sends no requests
    _Population.load()


events.init.add_listener(_load_population)  # type: ignore[no-untyped-call]


def _pace() -> Any:
    rate = os.environ.get("SEALGATE_BENCH_RATE")
    if rate:
        return constant_throughput(float(rate))
    return constant(0)


class CitywidePeak(FastHttpUser):
    """One client of the city's gateway doing a bit of everything, mostly verifying."""

    wait_time = _pace()

    def on_start(self) -> None:
        _Population.reseed_draws(self.environment)
        credentials = _Population.credentials
        self.verifier = credentials.auth("verifier")
        self.signer = {**credentials.auth("signer"), "Content-Type": "application/json"}
        self.issuer = {**credentials.auth("issuer"), "Content-Type": "application/json"}
        self.seal_id = credentials.proof_seal
        self.own: list[str] = []  # codes this user sealed and may pledge and release

    @task(94)
    def verify(self) -> None:
        code = _Population.sampler.draw()
        with self.client.get(
            f"/v1/verify/{code}?purpose={PURPOSE}",
            headers=self.verifier,
            name=VERIFY,
            catch_response=True,
        ) as response:
            _expect(response, 200)

    @task(3)
    def document(self) -> None:
        code = _Population.sampler.draw()
        with self.client.get(
            f"/v1/certificates/{code}/document?purpose={PURPOSE}",
            headers=self.verifier,
            name=DOCUMENT,
            catch_response=True,
        ) as response:
            _expect(response, 200)

    @task(2)
    def seal(self) -> None:
        code = self._seal_one()
        if code is not None:
            self.own.append(code)
            del self.own[:-OWN_PROOFS_KEPT]

    @task(1)
    def change_status(self) -> None:
        if random.randrange(REVOKE_ONE_IN) == 0:
            fresh = self._seal_one()
            if fresh is not None:
                self._status(fresh, "revoked", "load test: sealed by mistake")
            return
        code = random.choice(self.own) if self.own else self._seal_one()
        if code is None:
            return
        if code not in self.own:
            self.own.append(code)
        if self._status(code, "pledged", "load test: pledged as collateral"):
            self._status(code, "valid", "load test: pledge released")

    def _seal_one(self) -> str | None:
        body = proof_request(self.seal_id, random.randrange(10_000_000))
        with self.client.post(
            SEAL, json=body, headers=self.signer, name=SEAL, catch_response=True
        ) as response:
            if not _expect(response, 201):
                return None
            try:
                code: str = response.json()["code"]
            except (ValueError, KeyError, TypeError):
                response.failure("201 without a code")
                return None
            return code

    def _status(self, code: str, status: str, reason: str) -> bool:
        with self.client.post(
            f"/v1/certificates/{code}/status",
            json={"status": status, "reason": reason},
            headers=self.issuer,
            name=STATUS,
            catch_response=True,
        ) as response:
            if not _expect(response, 200):
                return False
            try:
                answered = response.json()["status"]
            except (ValueError, KeyError, TypeError):
                answered = None
            if answered != status:
                response.failure(f"asked for {status}, the proof is now {answered}")
                return False
            return True


def _expect(response: Any, status: int) -> bool:
    """Mark the response a success only if it has the expected status."""
    if response.status_code == status:
        response.success()
        return True
    detail = (response.text or "")[:200] if response.status_code else str(response.error)
    response.failure(f"HTTP {response.status_code}, expected {status}: {detail}")
    return False
