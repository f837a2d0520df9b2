"""The peers a user would pick instead of sealgate, measured beside it (docs/design.md §9).

- :mod:`.verify`: FastAPI on uvicorn answering ``/v1/verify/{code}`` from a dict of the
  population's statuses, or with one ``redis.asyncio`` GET per request;
- :mod:`.sealing`: pyHanko's PKCS#11 CMS signer behind FastAPI, each signed proof stored in
  SQLite, answering ``POST /v1/certificates`` with a batch.

Each runs as ``python -m sealgate.bench.peers KIND --port P ...`` (:mod:`.__main__`): one
uvicorn process on uvloop and httptools, access log off, as a user would deploy it.
"""
