"""``python -m sealgate.bench.peers dict|redis|pyhanko --port P ...``: one peer server.

uvicorn as its documentation deploys it for speed: one process, uvloop, httptools, no
access log.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from sealgate.bench.peers.sealing import SignerConfig, pyhanko_app
from sealgate.bench.peers.verify import dict_app, load_statuses, redis_app


def signer_config(home: Path, seal_id: str, database: Path) -> SignerConfig:
    """The token of a sealgate home and the active key of one of its seals."""
    from asn1crypto import pem

    from sealgate.gateway.config_file import load_settings

    settings = load_settings(home)
    keystore = settings.keystore_config()
    if keystore.backend != "pkcs11":
        raise SystemExit("the pyHanko peer needs a PKCS#11 home")
    directory = settings.open_directory()
    try:
        key = directory.seal(seal_id).active_key
    finally:
        directory.close()
    _, _, root = pem.unarmor(settings.root_certificate_path.read_bytes())
    return SignerConfig(
        module=keystore.module,
        token_label=keystore.token_label,
        pin=keystore.pin,
        key_label=key.key_label,
        certificate=key.certificate,
        chain=(root,),
        database=database,
        softhsm2_conf=keystore.softhsm2_conf,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sealgate.bench.peers")
    parser.add_argument("kind", choices=("dict", "redis", "pyhanko"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--statuses", type=Path, help="dict: the statuses file (JSON lines)")
    parser.add_argument("--redis", help="redis: the Redis URL")
    parser.add_argument("--home", type=Path, help="pyhanko: the sealgate home whose token")
    parser.add_argument("--seal", help="pyhanko: the seal whose key signs")
    parser.add_argument("--database", type=Path, help="pyhanko: the SQLite file")
    args = parser.parse_args()
    app: FastAPI
    if args.kind == "dict":
        if args.statuses is None:
            parser.error("dict needs --statuses FILE")
        app = dict_app(load_statuses(args.statuses))
    elif args.kind == "redis":
        if not args.redis:
            parser.error("redis needs --redis URL")
        app = redis_app(args.redis)
    else:
        if args.home is None or not args.seal or args.database is None:
            parser.error("pyhanko needs --home, --seal and --database")
        app = pyhanko_app(signer_config(args.home, args.seal, args.database))
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
