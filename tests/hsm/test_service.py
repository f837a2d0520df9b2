"""The out-of-process signing service against a real SoftHSM2 token (and the soft store)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from typing import TypeVar

import pytest

from sealgate.hsm import (
    HsmUnavailable,
    KeyAlgorithm,
    KeyInfo,
    KeyNotFound,
    KeystoreConfig,
    KeystoreConfigError,
)
from sealgate.hsm.errors import KeyNotAllowed
from sealgate.hsm.keystore import open_keystore
from sealgate.hsm.pkcs11 import Pkcs11Keystore
from sealgate.hsm.service import InProcessSigningService, ProcessSigningService
from tests.hsm._support import unique_label, verify
from tests.waiting import eventually

pytestmark = pytest.mark.slow

T = TypeVar("T")


@pytest.fixture(scope="module")
def token_keys(softhsm_token: KeystoreConfig) -> Iterator[dict[str, KeyInfo]]:
    """Three EC keys and one RSA key (if the token can), generated once for this module."""
    with Pkcs11Keystore.open(softhsm_token) as store:
        if not store.supports(KeyAlgorithm.EC_P256):
            pytest.skip("token lacks ECDSA")
        keys = [store.generate_key(unique_label("svc-ec"), KeyAlgorithm.EC_P256) for _ in range(3)]
        if store.supports(KeyAlgorithm.RSA_3072):
            keys.append(store.generate_key(unique_label("svc-rsa"), KeyAlgorithm.RSA_3072))
    # Closed again: the signing process logs in on its own.
    yield {info.label: info for info in keys}


@pytest.fixture
async def service(softhsm_token: KeystoreConfig) -> AsyncIterator[ProcessSigningService]:
    async with ProcessSigningService(softhsm_token) as svc:
        yield svc


async def sign_and_verify(service: ProcessSigningService, keys: dict[str, KeyInfo], n: int) -> None:
    labels = list(keys)
    requests = [
        (labels[i % len(labels)], hashlib.sha256(f"proof {i}".encode()).digest()) for i in range(n)
    ]
    signatures = await asyncio.gather(
        *(service.sign_digest(label, digest) for label, digest in requests)
    )
    # Each signature must verify for its own caller's digest and key: a mix-up inside a
    # batch would fail here.
    for (label, digest), signature in zip(requests, signatures, strict=True):
        verify(keys[label], digest, signature)


async def test_concurrent_calls_come_back_to_their_callers(
    service: ProcessSigningService, token_keys: dict[str, KeyInfo]
) -> None:
    await sign_and_verify(service, token_keys, 2000)


async def test_a_list_of_digests_is_signed_in_order(
    service: ProcessSigningService, token_keys: dict[str, KeyInfo]
) -> None:
    labels = list(token_keys)
    items = [
        (labels[i % len(labels)], hashlib.sha256(f"batch {i}".encode()).digest())
        for i in range(500)
    ]
    # two lists at once, interleaved in the queue: each gets its own signatures back
    first, second = await asyncio.gather(
        service.sign_digests(items), service.sign_digests(items[::-1])
    )
    for (label, digest), signature in zip(items, first, strict=True):
        verify(token_keys[label], digest, signature)
    for (label, digest), signature in zip(items[::-1], second, strict=True):
        verify(token_keys[label], digest, signature)
    with pytest.raises(KeyNotFound):
        await service.sign_digests([items[0], (unique_label("absent"), items[0][1])])
    with pytest.raises(ValueError, match="32-byte"):
        await service.sign_digests([(labels[0], b"short")])
    assert await service.sign_digests([]) == []


async def test_per_item_errors_map_back_and_do_not_spoil_the_batch(
    service: ProcessSigningService, token_keys: dict[str, KeyInfo]
) -> None:
    label = next(iter(token_keys))
    digest = hashlib.sha256(b"ok").digest()
    results = await asyncio.gather(
        service.sign_digest(label, digest),
        service.sign_digest(unique_label("absent"), digest),
        service.sign_digest(label, digest),
        return_exceptions=True,
    )
    assert isinstance(results[1], KeyNotFound)
    for ok in (results[0], results[2]):
        assert isinstance(ok, bytes)
        verify(token_keys[label], digest, ok)
    with pytest.raises(ValueError, match="32-byte"):
        await service.sign_digest(label, b"too short")


async def test_the_signing_process_signs_only_with_the_labels_it_is_allowed(
    softhsm_token: KeystoreConfig, token_keys: dict[str, KeyInfo]
) -> None:
    first, second, *_ = token_keys
    digest = hashlib.sha256(b"allowed?").digest()
    async with ProcessSigningService(softhsm_token, restart_backoff=0.0) as service:
        service.allow({first})
        verify(token_keys[first], digest, await service.sign_digest(first, digest))
        with pytest.raises(KeyNotAllowed, match="may not sign"):
            await service.sign_digest(second, digest)
        service.allow({first, second})  # a rotation: the catalog names a new active key
        verify(token_keys[second], digest, await service.sign_digest(second, digest))
        # A replaced child is told the list before its first batch.
        pid = service.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        service.allow({second})
        signature = await retry_unavailable(lambda: service.sign_digest(second, digest))
        verify(token_keys[second], digest, signature)
        with pytest.raises(KeyNotAllowed):
            await service.sign_digest(first, digest)


async def test_killed_child_fails_pending_calls_then_recovers(
    softhsm_token: KeystoreConfig, token_keys: dict[str, KeyInfo]
) -> None:
    async with ProcessSigningService(softhsm_token, restart_backoff=0.5) as service:
        first_pid = service.pid
        assert first_pid is not None
        label = next(iter(token_keys))
        digest = hashlib.sha256(b"in flight").digest()
        # Enough RSA (slow) or EC work that the batch is still in flight at the kill.
        rsa = [lb for lb, info in token_keys.items() if info.algorithm is KeyAlgorithm.RSA_3072]
        slow_label = rsa[0] if rsa else label
        pending = [
            asyncio.ensure_future(service.sign_digest(slow_label, digest)) for _ in range(3000)
        ]
        # killed once the child is at work on the batch, most of it still to sign
        await eventually(lambda: any(p.done() for p in pending), interval=0.01)
        os.kill(first_pid, signal.SIGKILL)
        results = await asyncio.wait_for(
            asyncio.gather(*pending, return_exceptions=True), timeout=60
        )
        failures = [r for r in results if not isinstance(r, bytes)]
        assert failures, "the kill should have caught calls in flight"
        assert all(isinstance(r, HsmUnavailable) for r in failures)

        # Later calls succeed again, on a fresh child, without restarting the service.
        signature = await retry_unavailable(lambda: service.sign_digest(label, digest))
        verify(token_keys[label], digest, signature)
        assert service.pid not in (None, first_pid)
        await sign_and_verify(service, token_keys, 200)


async def test_a_hung_child_is_given_up_on_in_seconds_then_replaced(
    softhsm_token: KeystoreConfig, token_keys: dict[str, KeyInfo]
) -> None:
    """A signing process that stops answering (SIGSTOP: alive, silent) fails the seal
    once it has been silent for the stall limit, not in a fixed 30 s."""
    async with ProcessSigningService(softhsm_token, restart_backoff=0.5) as service:
        hung = service.pid
        assert hung is not None
        label = next(iter(token_keys))
        digest = hashlib.sha256(b"hung").digest()
        os.kill(hung, signal.SIGSTOP)
        try:
            with pytest.raises(HsmUnavailable):
                await asyncio.wait_for(service.sign_digest(label, digest), timeout=15)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(hung, signal.SIGCONT)
        signature = await retry_unavailable(lambda: service.sign_digest(label, digest))
        verify(token_keys[label], digest, signature)
        assert service.pid not in (None, hung)


async def stopped_batch(
    service: ProcessSigningService, items: list[tuple[str, bytes]]
) -> tuple[float, BaseException | None]:
    """``items`` sent to the signing process stopped (the batch it is sent: nothing else
    in flight); how long until the call ended, and what it raised. Then recovered."""
    hung = service.pid
    assert hung is not None
    os.kill(hung, signal.SIGSTOP)
    started = time.monotonic()
    error: BaseException | None = None
    try:
        await asyncio.wait_for(service.sign_digests(items), timeout=60)
    except HsmUnavailable as exc:
        error = exc
    finally:
        waited = time.monotonic() - started
        with contextlib.suppress(ProcessLookupError):
            os.kill(hung, signal.SIGCONT)
    await retry_unavailable(lambda: service.sign_digests(items[:1]))
    assert service.pid not in (None, hung)
    return waited, error


async def test_a_stopped_child_fails_a_batch_of_1000_no_later_than_one_of_10(
    softhsm_token: KeystoreConfig, token_keys: dict[str, KeyInfo]
) -> None:
    labels = list(token_keys)
    items = [
        (labels[i % len(labels)], hashlib.sha256(f"stopped {i}".encode()).digest())
        for i in range(1000)
    ]
    async with ProcessSigningService(softhsm_token, restart_backoff=0.1) as service:
        # the margin: what signing 1,000 costs when nothing is wrong, measured here
        started = time.monotonic()
        await service.sign_digests(items)
        healthy = time.monotonic() - started
        small, small_error = await stopped_batch(service, items[:10])
        large, large_error = await stopped_batch(service, items)
    print(f"\nstopped child: 10 failed after {small:.3f} s, 1000 after {large:.3f} s")
    assert isinstance(small_error, HsmUnavailable)
    assert isinstance(large_error, HsmUnavailable)
    assert "silent for" in str(large_error)
    # 3 s + 20 ms a signature (23 s for 1,000) would fail this
    assert large <= small + healthy


async def test_a_long_batch_that_keeps_signing_is_not_taken_for_hung(
    softhsm_token: KeystoreConfig, token_keys: dict[str, KeyInfo]
) -> None:
    """A batch far longer than the stall limit (RSA-3072, a few ms a signature) is left
    to finish: the child says how far it got while it signs."""
    rsa = [lb for lb, info in token_keys.items() if info.algorithm is KeyAlgorithm.RSA_3072]
    if not rsa:
        pytest.skip("token lacks RSA")
    items = [(rsa[0], hashlib.sha256(f"long {i}".encode()).digest()) for i in range(1000)]
    async with ProcessSigningService(softhsm_token, stall_timeout=0.3) as service:
        await service.check()
        pid = service.pid
        started = time.monotonic()
        signatures = await service.sign_digests(items)
        took = time.monotonic() - started
        assert service.pid == pid, "a child at work was taken for hung"
    print(f"\n1000 RSA-3072 signatures in {took:.3f} s under a 0.3 s stall limit")
    for (label, digest), signature in zip(items[:5], signatures, strict=False):
        verify(token_keys[label], digest, signature)
    assert took > 0.3, "the batch was too short to show anything; sign more"


async def test_restart_backoff_fails_fast_with_retry_after(
    softhsm_token: KeystoreConfig, token_keys: dict[str, KeyInfo]
) -> None:
    async with ProcessSigningService(softhsm_token, restart_backoff=30.0) as service:
        pid = service.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await eventually(lambda: service.pid is None, interval=0.01)
        with pytest.raises(HsmUnavailable) as info:
            await service.sign_digest(next(iter(token_keys)), bytes(32))
        assert info.value.retry_after is not None
        assert 0 < info.value.retry_after <= 30.0
        with pytest.raises(HsmUnavailable):
            await service.check()


async def test_wrong_pin_is_a_config_error_not_a_hang(softhsm_token: KeystoreConfig) -> None:
    service = ProcessSigningService(replace(softhsm_token, pin="not-the-pin"), start_timeout=20)
    try:
        with pytest.raises(KeystoreConfigError) as info:
            await asyncio.wait_for(service.start(), timeout=30)
        assert "not-the-pin" not in str(info.value)
        # Inside the backoff window a retry says the same thing, at once.
        with pytest.raises(KeystoreConfigError):
            await asyncio.wait_for(service.sign_digest("any", bytes(32)), timeout=5)
        # A readiness probe reports it as "cannot sign".
        with pytest.raises(HsmUnavailable):
            await service.check()
    finally:
        await service.close()


async def test_check_and_close(softhsm_token: KeystoreConfig) -> None:
    service = ProcessSigningService(softhsm_token)
    await service.check()  # starts the child on demand
    pid = service.pid
    assert pid is not None
    await service.close()
    assert service.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # exited and reaped
    with pytest.raises(HsmUnavailable):
        await service.sign_digest("any", bytes(32))


async def test_process_service_over_the_soft_keystore(
    soft_keystore_config: KeystoreConfig,
) -> None:
    with open_keystore(soft_keystore_config) as store:
        keys = {
            info.label: info
            for info in (
                store.generate_key(unique_label("soft-ec"), KeyAlgorithm.EC_P256),
                store.generate_key(unique_label("soft-rsa"), KeyAlgorithm.RSA_3072),
            )
        }
    async with ProcessSigningService(soft_keystore_config) as service:
        await service.check()
        await sign_and_verify(service, keys, 300)


async def test_in_process_service(softhsm_token: KeystoreConfig) -> None:
    store = Pkcs11Keystore.open(softhsm_token)
    label = unique_label("inproc")
    info = store.generate_key(label, KeyAlgorithm.EC_P256)
    async with InProcessSigningService(store) as service:
        await service.check()
        digest = hashlib.sha256(b"cli").digest()
        verify(info, digest, await service.sign_digest(label, digest))
    with pytest.raises(HsmUnavailable):
        store.check()  # closed with the service


async def retry_unavailable(call: Callable[[], Awaitable[T]], attempts: int = 50) -> T:
    for _ in range(attempts):
        try:
            return await call()
        except HsmUnavailable as exc:
            await asyncio.sleep(exc.retry_after or 0.05)
    raise AssertionError("the service did not recover")
