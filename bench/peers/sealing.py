"""The sealing peer: pyHanko's PKCS#11 CMS signer behind FastAPI, proofs stored in SQLite.

``POST /v1/certificates`` takes the gateway's batch body (``{"items": [proof, ...]}``),
signs each proof's JSON as a CMS SignedData with the seal's key in the token
(:class:`pyhanko.sign.pkcs11.PKCS11Signer`, ``async_sign_general_data``, content
embedded), stores it in SQLite and answers 201 with each proof's code and document.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asn1crypto import x509
from fastapi import FastAPI
from pydantic import BaseModel

SCHEMA = """
CREATE TABLE IF NOT EXISTS proofs (
    code TEXT PRIMARY KEY,
    seal_id TEXT NOT NULL,
    holder_id TEXT NOT NULL,
    issued_at REAL NOT NULL,
    document BLOB NOT NULL
)
"""


@dataclass(frozen=True)
class SignerConfig:
    """The token and key to sign with, and the database to store proofs in."""

    module: str
    token_label: str
    pin: str = field(repr=False)
    key_label: str
    certificate: bytes  # the seal's certificate, DER
    chain: tuple[bytes, ...]  # the certificates above it, DER
    database: Path
    softhsm2_conf: str = ""


class Holder(BaseModel):
    kind: str
    id: str
    name: str


class ProofIn(BaseModel):
    seal_id: str
    type: str
    holder: Holder
    content: dict[str, Any]
    valid_from: str
    valid_until: str | None = None


class Batch(BaseModel):
    items: list[ProofIn]


def open_database(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(SCHEMA)
    return db


def pyhanko_app(config: SignerConfig) -> FastAPI:
    from pyhanko.config.pkcs11 import TokenCriteria
    from pyhanko.sign.pkcs11 import PKCS11Signer, open_pkcs11_session

    if config.softhsm2_conf:
        os.environ["SOFTHSM2_CONF"] = config.softhsm2_conf
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # pyHanko signs in the loop's default executor; python-pkcs11 with SoftHSM2 aborts
        # when two threads sign at once (docs/design.md §9), so that executor has one thread.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
        session = open_pkcs11_session(
            config.module,
            token_criteria=TokenCriteria(label=config.token_label),
            user_pin=config.pin,
        )
        signer = PKCS11Signer(
            session,
            key_label=config.key_label,
            signing_cert=x509.Certificate.load(config.certificate),
            ca_chain=[x509.Certificate.load(c) for c in config.chain],
            other_certs_to_pull=(),
            # SoftHSM2 has no CKM_ECDSA_SHA256: pyHanko hashes, the token signs the digest
            use_raw_mechanism=True,
        )
        await signer.ensure_objects_loaded()  # type: ignore[no-untyped-call]
        state["signer"] = signer
        # one batch signs at a time, in the order they came: the token is used by one
        # thread, and a batch waits behind those before it rather than beside them
        state["turn"] = asyncio.Lock()
        state["db"] = open_database(config.database)
        try:
            yield
        finally:
            state["db"].close()
            session.close()

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.post("/v1/certificates", status_code=201)
    async def seal(batch: Batch) -> dict[str, Any]:
        signer = state["signer"]
        issued_at = time.time()
        rows = []
        answers = []
        async with state["turn"]:
            for proof in batch.items:
                code = uuid.uuid4().hex
                document = json.dumps(
                    {"code": code, "issued_at": issued_at, **proof.model_dump()},
                    ensure_ascii=False,
                    sort_keys=True,
                ).encode()
                signed = await signer.async_sign_general_data(document, "sha256", detached=False)
                der = signed.dump()
                rows.append((code, proof.seal_id, proof.holder.id, issued_at, der))
                answers.append({"code": code, "document": base64.b64encode(der).decode()})
        db: sqlite3.Connection = state["db"]
        with db:
            db.executemany("INSERT INTO proofs VALUES (?, ?, ?, ?, ?)", rows)
        return {"items": answers}

    return app
