"""A home's ``config.toml``: written by ``init``, read into :class:`Settings` with each
value checked and every error naming the setting (environment variables and flags win
over the file)."""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from pathlib import Path
from typing import Any

from sealgate.cache.lookup import DEFAULT_OUTAGE_FRESHNESS
from sealgate.gateway.auth import CACHE_SECONDS as DEFAULT_TOKEN_CACHE
from sealgate.gateway.bounded import DEFAULT_REQUEST_DEADLINE
from sealgate.gateway.home import (
    CONFIG_NAME,
    DEFAULT_CATALOG_REFRESH,
    DEFAULT_CRL_NEXT_UPDATE,
    DEFAULT_CRL_URL,
    DEFAULT_NOTICE_RETENTION_DAYS,
    DEFAULT_QR_LIFETIME,
    DEFAULT_STATUS_LIST_BOUND,
    MIN_NOTICE_RETENTION_DAYS,
    QR_LIFETIMES,
    FailedLookupSettings,
    HomeError,
    Settings,
    database_kind,
)
from sealgate.gateway.instants import parse_offset
from sealgate.gateway.webhooks import rules_from_config
from sealgate.verify.workdays import CalendarError, OfficeHours


def write_config(home: Path, values: dict[str, str]) -> None:
    lines = ["# sealgate settings; secrets live in secrets/, never here"]
    for key, value in values.items():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'{key} = "{escaped}"')
    (home / CONFIG_NAME).write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_settings(
    home: Path,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
) -> Settings:
    path = home / CONFIG_NAME
    try:
        with path.open("rb") as f:
            config = tomllib.load(f)
    except FileNotFoundError:
        raise HomeError(f"{home} is not a sealgate home (run 'sealgate init')") from None
    except tomllib.TOMLDecodeError as exc:
        raise HomeError(f"{path}: {exc}") from None

    def pick(flag: str | None, env: str, key: str, default: str | None) -> str | None:
        value = flag or os.environ.get(env) or config.get(key) or default
        return str(value) if value is not None else None

    db = pick(database_url, "SEALGATE_DATABASE_URL", "database_url", None)
    if db is not None:
        database_kind(db)  # an unknown scheme is refused here, before anything opens
    redis = pick(redis_url, "SEALGATE_REDIS_URL", "redis_url", None)
    if redis is not None:
        from sealgate.cache.redis_url import RedisUrlError, check_redis_url

        try:
            check_redis_url(redis)  # likewise: one line at startup, not a worker's traceback
        except RedisUrlError as exc:
            raise HomeError(f"Redis URL: {exc}") from None

    tsa_url = pick(None, "SEALGATE_TSA_URL", "tsa_url", None)
    if tsa_url is not None:
        if not tsa_url.startswith(("http://", "https://")):
            raise HomeError("the TSA URL must be http:// or https://")
        if not (home / "tsa-roots.pem").exists():
            # Fail closed: tokens that cannot be checked must not go into proofs.
            raise HomeError(
                f"a TSA URL is set but {home / 'tsa-roots.pem'} is missing: put the TSA's"
                " root certificate there (PEM)"
            )

    unavailable = pick(None, "SEALGATE_TSA_UNAVAILABLE", "tsa_unavailable", "refuse")
    if unavailable not in ("refuse", "seal-untimestamped"):
        raise HomeError(
            f"tsa_unavailable must be refuse or seal-untimestamped, not {unavailable!r}"
        )

    def duration(env: str, key: str) -> str | None:
        # Not pick(): 0 is a value here (outage_freshness = 0: no answers from copies).
        value = os.environ.get(env) or config.get(key)
        return None if value is None else str(value)

    deadline = _seconds(
        duration("SEALGATE_REQUEST_DEADLINE", "request_deadline"),
        "request_deadline",
        DEFAULT_REQUEST_DEADLINE,
        least=0.1,
    )
    freshness = _seconds(
        duration("SEALGATE_OUTAGE_FRESHNESS", "outage_freshness"),
        "outage_freshness",
        DEFAULT_OUTAGE_FRESHNESS,
        least=0.0,
    )
    token_cache, catalog_refresh = (
        _seconds(duration(f"SEALGATE_{key.upper()}", key), key, default, least=least)
        for key, default, least in (
            ("token_cache", DEFAULT_TOKEN_CACHE, 0.0),
            ("catalog_refresh", DEFAULT_CATALOG_REFRESH, 0.5),
        )
    )
    qr_lifetime = _seconds(
        duration("SEALGATE_QR_LIFETIME", "qr_lifetime"),
        "qr_lifetime",
        DEFAULT_QR_LIFETIME,
        least=QR_LIFETIMES[0],
    )
    if qr_lifetime > QR_LIFETIMES[1]:
        raise HomeError("qr_lifetime must be between 60 and 120 seconds")
    status_list_bound = _seconds(
        duration("SEALGATE_STATUS_LIST_BOUND", "status_list_bound"),
        "status_list_bound",
        DEFAULT_STATUS_LIST_BOUND,
        least=1.0,
    )
    sink = pick(None, "SEALGATE_AUDIT_SINK", "audit_sink", None)
    if sink is not None:
        from sealgate.cache.redis_url import RedisUrlError, check_redis_url, is_cluster_url

        try:
            check_redis_url(sink)
        except RedisUrlError as exc:
            raise HomeError(f"audit sink: {exc}") from None
        if is_cluster_url(sink):
            raise HomeError("audit sink: one Redis server (redis://), not a cluster")
    metrics_token = os.environ.get("SEALGATE_METRICS_TOKEN")
    if metrics_token is None and (home / "secrets" / "metrics-token").exists():
        metrics_token = (home / "secrets" / "metrics-token").read_text().strip()
    crl_next_update = _seconds(
        duration("SEALGATE_CRL_NEXT_UPDATE", "crl_next_update"),
        "crl_next_update",
        DEFAULT_CRL_NEXT_UPDATE,
        least=60.0,
    )
    grace = _seconds(
        duration("SEALGATE_RETIRED_KEY_GRACE", "retired_key_grace"),
        "retired_key_grace",
        0.0,
        least=0.0,
    )
    token_label = str(config.get("token_label", "sealgate"))
    return Settings(
        home=home,
        region=str(config.get("region", "430900")),
        city=str(config.get("city", "")),
        backend=str(config.get("backend", "pkcs11")),
        pkcs11_module=pick(None, "SEALGATE_PKCS11_MODULE", "pkcs11_module", "") or "",
        token_label=token_label,
        database_url=db or f"sqlite:///{home / 'registry.db'}",
        redis_url=redis,
        archival_issuance=_flag(config.get("archival_issuance", False), "archival_issuance"),
        request_deadline=deadline,
        outage_freshness=freshness,
        token_cache=token_cache,
        catalog_refresh=catalog_refresh,
        audit_sink=sink,
        metrics_token=metrics_token or None,
        root_token_label=str(config.get("root_token_label", f"root-{token_label}")),
        crl_url=str(config.get("crl_url", DEFAULT_CRL_URL)),
        crl_next_update=crl_next_update,
        retired_key_grace=grace,
        tsa_url=tsa_url,
        seal_untimestamped=unavailable == "seal-untimestamped",
        failed_lookups=FailedLookupSettings.from_config(config.get("failed_lookups")),
        answer_offset=_offset(config.get("answer_offset", "+08:00")),
        qr_lifetime=qr_lifetime,
        status_list_bound=status_list_bound,
        public_url=str(config.get("public_url", "")).rstrip("/"),
        check_per_minute=_count(config.get("check_per_minute", 20), "check_per_minute"),
        consent_required=_flag(config.get("consent_required", True), "consent_required"),
        **_notice_settings(config.get("notices")),
        **_request_settings(config.get("requests")),
    )


def _notice_settings(table: object) -> dict[str, Any]:
    """``[notices]``: the targets' rules (sealgate.gateway.webhooks) and ``retention_days``."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise HomeError(f"{CONFIG_NAME}: [notices] is a table")
    rest = {k: v for k, v in table.items() if k != "retention_days"}
    days = _count(table.get("retention_days", DEFAULT_NOTICE_RETENTION_DAYS), "retention_days")
    if days < MIN_NOTICE_RETENTION_DAYS:
        raise HomeError(
            f"{CONFIG_NAME}: [notices] retention_days must be at least"
            f" {MIN_NOTICE_RETENTION_DAYS} (a delivery is retried for a day)"
        )
    try:
        rules = rules_from_config(rest)
    except ValueError as exc:
        raise HomeError(f"{CONFIG_NAME}: {exc}") from None
    return {"notice_targets": rules, "notice_retention_days": days}


def _request_settings(table: object) -> dict[str, Any]:
    if table is None:
        return {}
    if not isinstance(table, dict) or set(table) - {"office_hours", "overdue_webhook"}:
        raise HomeError(f"{CONFIG_NAME}: [requests] takes office_hours and overdue_webhook")
    settings: dict[str, Any] = {}
    if (hours := table.get("office_hours")) is not None:
        try:
            settings["office_hours"] = OfficeHours.parse(str(hours))
        except CalendarError as exc:
            raise HomeError(f"{CONFIG_NAME}: [requests] {exc}") from None
    if (url := table.get("overdue_webhook")) is not None:
        if not str(url).startswith(("https://", "http://")):
            raise HomeError(f"{CONFIG_NAME}: [requests] overdue_webhook must be an http(s) URL")
        settings["overdue_webhook"] = str(url)
    return settings


def _offset(value: object) -> dt.timezone:
    try:
        return parse_offset(str(value))
    except ValueError as exc:
        raise HomeError(f"{CONFIG_NAME}: answer_offset: {exc}") from None


def _count(value: object, key: str) -> int:
    """A positive whole number setting."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise HomeError(f"{CONFIG_NAME}: {key} must be a positive whole number")
    try:
        number = int(value)
    except ValueError:
        raise HomeError(f"{CONFIG_NAME}: {key} must be a positive whole number") from None
    if number < 1:
        raise HomeError(f"{CONFIG_NAME}: {key} must be a positive whole number")
    return number


def _flag(value: object, key: str) -> bool:
    """A yes/no setting: a TOML boolean, or the text "true"/"false" (write_config writes
    every value as text). Anything else is refused: a misspelt "ture" must not quietly
    mean "no" for a rule about what may be sealed."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise HomeError(f"{CONFIG_NAME}: {key} must be true or false, not {value!r}")


def _seconds(value: str | None, name: str, default: float, *, least: float) -> float:
    """A duration setting in seconds; a HomeError naming it if it is not one."""
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise HomeError(f"{name} must be a number of seconds, not {value!r}") from None
    if not least <= seconds < float("inf"):
        raise HomeError(f"{name} must be at least {least} seconds")
    return seconds
