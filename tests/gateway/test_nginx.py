"""Two gateways behind nginx, configured with deploy/nginx/sealgate.conf as shipped."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import aiohttp
import pytest

from sealgate.bench.redis_server import RedisServer
from sealgate.verify.directory import Role
from tests.gateway.conftest import Demo, proof_request
from tests.gateway.serving import free_port, serving, wait_until_serving
from tests.waiting import until

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "sealgate.conf"


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        pytest.fail("nginx is required: run the suite with `make test` (it installs nginx)")
    return found


@contextmanager
def nginx(tmp: Path, port: int, upstreams: list[int]) -> Iterator[Path]:
    """nginx in the foreground with the shipped server block; yields its access log."""
    site = TEMPLATE.read_text(encoding="utf-8")
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=3 fail_timeout=5s;\n" for p in upstreams)
    site, replaced = re.subn(r"(    server 127\.0\.0\.1:\d+ [^\n]*\n)+", servers, site)
    assert replaced == 1, "the template's upstream block changed shape"
    site = site.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};")
    access_log = tmp / "access.log"
    site = site.replace("/var/log/nginx/sealgate.access.log", str(access_log))
    site = site.replace("/var/log/nginx/sealgate.error.log", str(tmp / "site-error.log"))
    temps = "\n".join(
        f"    {kind}_temp_path {tmp / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp / "nginx.conf"
    conf.write_text(
        ("user root;\n" if os.getuid() == 0 else "")
        + f"worker_processes 1;\npid {tmp / 'nginx.pid'};\nerror_log {tmp / 'error.log'} warn;\n"
        + "events { worker_connections 1024; }\n"
        + f"http {{\n{temps}\n{site}\n}}\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [nginx_binary(), "-p", str(tmp), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_until_serving(port, process)
        yield access_log
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
async def test_traffic_through_nginx_reaches_both_gateways_and_survives_one(
    demo: Demo, redis_server: RedisServer, tmp_path: Path
) -> None:
    ports = [free_port(), free_port()]
    front = free_port()
    env = {"SEALGATE_REDIS_URL": redis_server.url}
    with ExitStack() as stack:
        gateways = [stack.enter_context(serving(demo.home, p, env=env)) for p in ports]
        access_log = stack.enter_context(nginx(tmp_path, front, ports))
        base = f"http://127.0.0.1:{front}"
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{base}/v1/certificates",
                json=proof_request(demo.proof_seal),
                headers=demo.auth(Role.SIGNER),
            ) as r:
                assert r.status == 201, await r.text()
                code = (await r.json())["code"]
            for _ in range(20):
                async with session.get(
                    f"{base}/v1/verify/{code}?purpose=demo",
                    headers={**demo.auth(Role.VERIFIER), "X-Request-Id": "through-nginx"},
                ) as r:
                    assert r.status == 200
                    # the gateway's own id, through nginx (the client's is only hashed)
                    assert r.headers["X-Request-Id"] not in ("", "through-nginx")
            holder = proof_request(demo.proof_seal)["holder"]["id"]
            async with session.get(
                f"{base}/v1/proofs",
                params={"holder_id": holder, "type": "无犯罪记录证明", "purpose": "demo"},
                headers=demo.auth(Role.VERIFIER),
            ) as r:
                assert r.status == 200, await r.text()

            # one gateway dies: nginx sends the checks to the other
            os.killpg(gateways[0].pid, signal.SIGKILL)
            gateways[0].wait()
            statuses = []
            for _ in range(20):
                async with session.get(
                    f"{base}/v1/verify/{code}?purpose=demo", headers=demo.auth(Role.VERIFIER)
                ) as r:
                    statuses.append(r.status)
            assert statuses == [200] * 20

        # nginx writes its log line after the answer: one for each of the 42 requests
        until(lambda: len(access_log.read_text(encoding="utf-8").splitlines()) >= 42)
        log = access_log.read_text(encoding="utf-8")
        used = set(re.findall(r"127\.0\.0\.1:(\d+) \d{3}", log))
        assert {str(p) for p in ports} <= used, log  # both gateways served
        assert holder not in log  # the path is logged, never the query string
        assert "/v1/proofs" in log
        # nor does the error log of the failover (a refused upstream) quote it
        for errors in (tmp_path / "site-error.log", tmp_path / "error.log"):
            assert holder not in (errors.read_text() if errors.exists() else "")
