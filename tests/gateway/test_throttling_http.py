"""Enumeration through the API: failed lookups are throttled per client, and every kind of
failure looks and takes alike."""

from __future__ import annotations

import time
from typing import Any

from aiohttp.test_utils import TestClient

from sealgate.gateway.provision import Provisioner
from sealgate.gateway.throttle import FAILURE_FLOOR_SECONDS
from sealgate.verify.code import CodeAuthority
from sealgate.verify.directory import Role
from sealgate.verify.holders import resident_id_check
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.test_checking import random_codes


def new_client(demo: Demo, role: Role, **grants: Any) -> dict[str, str]:
    """A client of its own (its own failure budget), as its Authorization header."""
    provisioner = Provisioner(demo.settings)
    directory = provisioner.directory()
    try:
        _, token = provisioner.add_client(directory, name=f"a {role.value}", role=role, **grants)
    finally:
        directory.close()
    return {"Authorization": f"Bearer {token}"}


def new_verifier(demo: Demo) -> dict[str, str]:
    return new_client(demo, Role.VERIFIER, purposes=["demo"])


async def test_the_101st_failure_is_429_and_other_clients_go_on(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    r = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    real = (await r.json())["code"]
    attacker, bank = new_verifier(demo), new_verifier(demo)
    for n, code in enumerate(random_codes(100, seed=5)):
        r = await api.get(f"/v1/verify/{code}?purpose=demo", headers=attacker)
        assert r.status == 404, n
        if n % 10 == 0:  # a valid code in between does not reset the count
            assert (
                await api.get(f"/v1/verify/{real}?purpose=demo", headers=attacker)
            ).status == 200
    r = await api.get(f"/v1/verify/{random_codes(1, seed=6)[0]}?purpose=demo", headers=attacker)
    assert r.status == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert (await r.json())["code"] == "too-many-failed-lookups"
    # refused before any lookup, even for a real code, and on the document route too
    assert (await api.get(f"/v1/verify/{real}?purpose=demo", headers=attacker)).status == 429
    assert (
        await api.get(f"/v1/certificates/{real}/document?purpose=demo", headers=attacker)
    ).status == 429
    assert (await api.get(f"/v1/verify/{real}?purpose=demo", headers=bank)).status == 200


async def test_malformed_forged_and_unknown_codes_take_the_same_floor(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    client = new_verifier(demo)
    codes = CodeAuthority(demo.settings.read_secret("code-key"), demo.settings.region)
    kinds = {
        "malformed": "not-a-code",
        "mistyped": "430900-ZDXE31-DD2417-Z7GDV0",
        "forged": random_codes(1, seed=9)[0],
        "unknown": str(codes.issue()),
    }
    bodies = set()
    for kind, code in kinds.items():
        for _ in range(3):
            started = time.perf_counter()
            r = await api.get(f"/v1/verify/{code}?purpose=demo", headers=client)
            elapsed = time.perf_counter() - started
            assert r.status == 404, kind
            # a lower bound only: none answers sooner than the floor, whatever its path
            assert elapsed >= FAILURE_FLOOR_SECONDS, (kind, elapsed)
            assert r.headers["Cache-Control"] == "no-store"  # as a 200 is: no shared copy
            problem = await r.json()
            problem.pop("request_id")
            bodies.add(tuple(sorted(problem.items())))
    assert len(bodies) == 1


def resident_ids(count: int, start: int = 0) -> list[str]:
    """Well-formed identity numbers (valid check character) nobody here holds."""
    first = [f"32050219800101{n:03d}" for n in range(start, start + count)]
    return [f + resident_id_check(f) for f in first]


async def test_guessing_identity_numbers_on_the_reuse_route_is_throttled(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    holder = resident_ids(1, start=900)[0]
    body = proof_request(demo.proof_seal, holder={"kind": "person", "id": holder, "name": "钱七"})
    r = await api.post("/v1/certificates", json=body, headers=demo.auth(Role.SIGNER))
    assert r.status == 201
    attacker, bank = new_verifier(demo), new_verifier(demo)

    def query(holder_id: str) -> dict[str, str]:
        return {"holder_id": holder_id, "type": "无犯罪记录证明", "purpose": "demo"}

    started = time.monotonic()
    for n, guess in enumerate(resident_ids(100)):
        r = await api.get("/v1/proofs", params=query(guess), headers=attacker)
        assert r.status == 200 and (await r.json())["items"] == [], n
    # each empty answer waited out the floor, as an unknown code's 404 does
    assert time.monotonic() - started >= 100 * FAILURE_FLOOR_SECONDS
    r = await api.get("/v1/proofs", params=query(holder), headers=attacker)
    assert r.status == 429  # refused before the lookup, even for a holder with proofs
    assert (await r.json())["code"] == "too-many-failed-lookups"
    assert (
        await api.get(f"/v1/verify/{random_codes(1, seed=7)[0]}?purpose=demo", headers=attacker)
    ).status == 429
    for _ in range(3):  # found proofs are not failures
        r = await api.get("/v1/proofs", params=query(holder), headers=bank)
        assert r.status == 200 and len((await r.json())["items"]) == 1


async def test_unknown_codes_on_the_issuers_routes_are_failed_lookups(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    issuer = new_client(demo, Role.ISSUER, office="11430900006151330B")
    change = {"status": "revoked", "reason": "x"}
    started = time.monotonic()
    for n, code in enumerate(random_codes(100, seed=8)):
        if n % 2:
            r = await api.get(f"/v1/certificates/{code}/status", headers=issuer)
        else:
            r = await api.post(f"/v1/certificates/{code}/status", json=change, headers=issuer)
        assert r.status == 404, n
    assert time.monotonic() - started >= 100 * FAILURE_FLOOR_SECONDS
    r = await api.post(
        "/v1/certificates", json=proof_request(demo.proof_seal), headers=demo.auth(Role.SIGNER)
    )
    real = (await r.json())["code"]
    r = await api.get(f"/v1/certificates/{real}/status", headers=issuer)
    assert r.status == 429  # refused before the lookup
    r = await api.post(f"/v1/certificates/{real}/status", json=change, headers=issuer)
    assert r.status == 429
    r = await api.get(f"/v1/certificates/{real}/status", headers=demo.auth(Role.ISSUER))
    assert r.status == 200 and (await r.json())["status"] == "valid"  # nothing changed


async def test_a_clients_own_limit_and_cheaper_typing_errors(
    api: TestClient[Any, Any], demo: Demo
) -> None:
    """`client set-limits` gives a client its own budget; a code its check character
    refuses (a typing error, never a hit) costs a tenth of a guess (docs/design.md §8)."""
    from sealgate.verify.directory import LookupLimit

    provisioner = Provisioner(demo.settings)
    directory = provisioner.directory()
    try:
        client, token = provisioner.add_client(
            directory, name="a branch", role=Role.VERIFIER, purposes=["demo"]
        )
        directory.set_lookup_limit(client.client_id, LookupLimit(5, 600.0))
    finally:
        directory.close()
    branch = {"Authorization": f"Bearer {token}"}
    guesses = random_codes(6, seed=21)
    for code in guesses[:3]:
        assert (await api.get(f"/v1/verify/{code}?purpose=demo", headers=branch)).status == 404
    # ten typing errors: one guess's worth, so one more guess is still looked up
    mistyped = [code[:-1] + ("0" if code[-1] != "0" else "1") for code in random_codes(10, 22)]
    for code in mistyped:
        assert (await api.get(f"/v1/verify/{code}?purpose=demo", headers=branch)).status == 404
    assert (await api.get(f"/v1/verify/{guesses[3]}?purpose=demo", headers=branch)).status == 404
    r = await api.get(f"/v1/verify/{guesses[4]}?purpose=demo", headers=branch)
    assert r.status == 429
