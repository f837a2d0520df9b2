"""Redis URLs: which mode a URL names, and bad ones refused at startup in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealgate.cache.redis_url import (
    ClusterUrl,
    RedisUrlError,
    check_redis_url,
    is_cluster_url,
    parse_cluster_url,
)
from sealgate.gateway.config_file import load_settings, write_config
from sealgate.gateway.home import HomeError


def test_a_cluster_url_lists_its_startup_nodes() -> None:
    assert parse_cluster_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001,cache-3") == ClusterUrl(
        nodes=(("10.0.0.1", 7000), ("10.0.0.2", 7001), ("cache-3", 6379)), tls=False
    )
    assert parse_cluster_url("redis+cluster://[::1]:7000/0") == ClusterUrl(
        nodes=(("::1", 7000),), tls=False
    )


def test_tls_and_credentials() -> None:
    parsed = parse_cluster_url(
        "rediss+cluster://gw:p%40ss@h1:7000,h2:7000?ssl_ca_certs=/etc/ca.pem"
    )
    assert parsed == ClusterUrl(
        nodes=(("h1", 7000), ("h2", 7000)),
        tls=True,
        username="gw",
        password="p@ss",
        ssl_ca_certs="/etc/ca.pem",
    )
    assert parse_cluster_url("redis+cluster://:secret@h1:7000").password == "secret"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://", "names no node"),
        ("redis+cluster://h1:7000/3", "only database 0"),
        ("redis+cluster://h1:notaport", "port must be"),
        ("redis+cluster://h1:70000", "port must be"),
        ("redis+cluster://::1:7000", "IPv6"),
        ("redis+cluster://:7000", "no host"),
        ("redis+cluster://h1:7000?ssl_ca_certs=/x", "ssl_ca_certs"),  # only with TLS
        ("redis+cluster://h1:7000?decode_responses=yes", "unsupported"),
        ("http://h1:7000", "unsupported Redis URL scheme"),
        ("h1:7000", "no scheme"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(RedisUrlError, match=says):
        check_redis_url(url)


def test_single_server_urls_pass_through() -> None:
    for url in ("redis://h:6379/0", "rediss://h:6380/1", "unix:///run/redis.sock"):
        check_redis_url(url)
        assert not is_cluster_url(url)
    assert is_cluster_url("REDIS+CLUSTER://h:7000")


def test_a_bad_url_is_a_settings_error_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, {"region": "430900"})
    monkeypatch.setenv("SEALGATE_REDIS_URL", "redis+cluster://gw:hunter2@h1:7000/5")
    with pytest.raises(HomeError, match="holds credentials") as caught:
        load_settings(tmp_path)
    assert "hunter2" not in str(caught.value)
    monkeypatch.setenv("SEALGATE_REDIS_URL", "redis+cluster://h1:7000,h2:7000")
    assert load_settings(tmp_path).redis_url == "redis+cluster://h1:7000,h2:7000"


@pytest.mark.parametrize(
    "password", ["s3cr?et", "s3cr/et", "s3cr#et", "s3cr@et", "s3cr:et?x=1", "se,cr:et"]
)
def test_no_piece_of_an_unencoded_password_reaches_the_message(password: str) -> None:
    """A password with unencoded delimiters splits the URL in odd places; whatever the
    parser then trips over, the message quotes nothing of it."""
    url = f"redis+cluster://gw:{password}@h1:7000"
    try:
        parsed = parse_cluster_url(url)
    except RedisUrlError as exc:
        for piece in ("s3cr", "et", "cr:", "se,"):
            assert piece not in str(exc)
    else:  # read some way; it must not have turned the password into a host
        assert all(password not in host and "s3cr" not in host for host, _ in parsed.nodes)
