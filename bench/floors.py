"""The floors the gateway is measured against (docs/design.md §9), each as plain as it can be.

- ``trivial``: aiohttp on uvloop answering a constant JSON body on the verify route;
- ``redis-get``: the same, doing one redis-py GET per request for the code in the path;
- :func:`sign_rate`: raw python-pkcs11 signatures with the seal key, one thread.

The servers run as ``python -m sealgate.bench.floors trivial|redis-get --port P [--redis URL]``,
the same way (one process, uvloop, no access log) the harness runs the gateway's worker.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

from aiohttp import web

from sealgate.hsm.keystore import KeystoreConfig

BODY = b'{"status":"valid"}'
REDIS_PREFIX = b"bench:"


async def trivial(request: web.Request) -> web.Response:
    return web.Response(body=BODY, content_type="application/json")


def trivial_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/v1/verify/{code}", trivial)
    return app


def redis_get_app(url: str) -> web.Application:
    import redis.asyncio as redis

    client = redis.Redis.from_url(url, max_connections=64)

    async def one_get(request: web.Request) -> web.Response:
        value = await client.get(REDIS_PREFIX + request.match_info["code"].encode())
        if value is None:
            raise web.HTTPNotFound()
        return web.Response(body=value, content_type="application/json")

    async def close(app: web.Application) -> None:
        await client.aclose()

    app = web.Application()
    app.router.add_get("/v1/verify/{code}", one_get)
    app.on_cleanup.append(close)
    return app


def sign_rate(config: KeystoreConfig, key_label: str, seconds: float) -> tuple[float, float]:
    """Signatures per second and CPU-µs per signature of the raw python-pkcs11 path."""
    import pkcs11
    from pkcs11 import KeyType, Mechanism, ObjectClass

    if config.backend != "pkcs11":
        raise ValueError("the raw sign floor needs a PKCS#11 home")
    if config.softhsm2_conf:
        os.environ["SOFTHSM2_CONF"] = config.softhsm2_conf
    library = pkcs11.lib(config.module)
    token = library.get_token(token_label=config.token_label)
    digest = hashlib.sha256(b"sealgate floor").digest()
    with token.open(user_pin=config.pin) as session:
        # a runtime class mixing PrivateKey and SignMixin; typed as the part used here
        key: pkcs11.SignMixin = session.get_key(  # type: ignore[assignment]
            object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC, label=key_label
        )
        key.sign(digest, mechanism=Mechanism.ECDSA)  # warm
        count = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        deadline = started + seconds
        while True:
            for _ in range(100):
                key.sign(digest, mechanism=Mechanism.ECDSA)
            count += 100
            if time.perf_counter() >= deadline:
                break
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    return count / elapsed, cpu / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sealgate.bench.floors")
    parser.add_argument("kind", choices=("trivial", "redis-get", "sign"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int)
    parser.add_argument("--redis")
    parser.add_argument("--home", type=Path, help="sign: the home whose token to use")
    parser.add_argument("--key-label", help="sign: the seal key's label in the token")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.kind == "sign":
        if args.home is None or not args.key_label:
            parser.error("sign needs --home and --key-label")
        from sealgate.gateway.config_file import load_settings

        config = load_settings(args.home).keystore_config()
        rate, cpu_us = sign_rate(config, args.key_label, args.seconds)
        print(json.dumps({"rate": rate, "cpu_us": cpu_us}))
        return
    if args.port is None:
        parser.error("the servers need --port")
    import uvloop

    if args.kind == "trivial":
        app = trivial_app()
    else:
        if not args.redis:
            parser.error("redis-get needs --redis URL")
        app = redis_get_app(args.redis)
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
