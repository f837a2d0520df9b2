"""The signing process's batch loop, in this process: results in order, and word of
progress while a batch lasts (what lets the parent tell a long batch from a hung child)."""

from __future__ import annotations

import hashlib

import pytest

import sealgate.hsm.worker as worker
from sealgate.hsm import KeyAlgorithm, KeystoreConfig
from sealgate.hsm.keystore import open_keystore
from tests.hsm._support import unique_label, verify


def test_a_batch_says_how_far_it_got_and_signs_in_order(
    soft_keystore_config: KeystoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no pause between words: one before every item, saying how many were signed before it
    monkeypatch.setattr(worker, "PROGRESS_SECONDS", 0.0)
    with open_keystore(soft_keystore_config) as store:
        info = store.generate_key(unique_label("progress"), KeyAlgorithm.EC_P256)
        digests = [hashlib.sha256(f"item {i}".encode()).digest() for i in range(5)]
        said: list[int] = []
        results, token_failed = worker._sign_batch(
            store, [[info.label, d] for d in digests], said.append
        )
    assert said == [0, 1, 2, 3, 4]
    assert not token_failed
    for digest, signature in zip(digests, results, strict=True):
        verify(info, digest, signature)


def test_a_batch_shorter_than_the_pause_says_nothing_but_its_answer(
    soft_keystore_config: KeystoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker, "PROGRESS_SECONDS", 3600.0)
    with open_keystore(soft_keystore_config) as store:
        info = store.generate_key(unique_label("quiet"), KeyAlgorithm.EC_P256)
        said: list[int] = []
        results, _ = worker._sign_batch(store, [[info.label, bytes(32)], None], said.append)
    assert said == []
    assert results[1] == b""  # the readiness probe's empty answer
