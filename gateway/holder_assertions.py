"""The identity platform's word that a citizen is who the portal says (统一身份认证).

The portal acts for a holder it has authenticated; the gateway does not take the portal's
word for who that is, but an assertion the city's identity platform signed: a compact JWS
(ES256, ``typ`` :data:`ASSERTION_TYPE`) in the :data:`ASSERTION_HEADER` header::

    {"iss": platform, "aud": "sealgate", "sub": identity number, "iat": t, "exp": t + <=300,
     "jti": random, 8-128 characters}

Each assertion serves one request: its ``jti`` is remembered by the worker until its
``exp`` and, with Redis, claimed there once for every worker of every instance (``SET NX``
expiring with the assertion). With Redis unreachable a worker's own memory alone holds,
and a replay to another worker within the 300 s would only repeat a read the holder made.

The platform's keys are those the home's ``identity-platforms.json`` (a trust document,
:mod:`sealgate.crypto.key_trust`) holds for ``holder-assertion``. The identity number
goes no further than the keyed hash the registry is searched with: never logged, never
in the audit trail.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from sealgate.crypto.errors import ContentError, CryptoError
from sealgate.crypto.jws import open_jws
from sealgate.crypto.key_trust import KeyTrust, Use
from sealgate.errors import ConfigError
from sealgate.gateway.problems import Problem
from sealgate.gateway.requests import InvalidRequest, parse_holder_id
from sealgate.verify.holders import HolderKeys

if TYPE_CHECKING:
    from sealgate.cache.redis_tier import RedisTier

log = logging.getLogger("sealgate.gateway")

ASSERTION_HEADER = "Holder-Assertion"
ASSERTION_TYPE = "sealgate-holder+jwt"
AUDIENCE = "sealgate"
PLATFORMS_FILE = "identity-platforms.json"
MAX_LIFETIME = 300  # seconds an assertion may be valid for: replays stay short
CLOCK_SKEW = 60
MAX_REMEMBERED = 100_000


def refused(detail: str) -> Problem:
    return Problem(403, "holder-not-asserted", "The holder's identity is not asserted", detail)


def load_platforms(home: Path) -> KeyTrust:
    """The identity platforms' keys; none (every assertion refused) without the file."""
    path = home / PLATFORMS_FILE
    try:
        return KeyTrust.from_json(path.read_bytes())
    except FileNotFoundError:
        return KeyTrust([])
    except ContentError as exc:
        raise ConfigError(f"{path}: {exc}") from None


class HolderAssertions:
    def __init__(
        self,
        platforms: KeyTrust,
        holder_keys: HolderKeys,
        clock: Callable[[], float],
        shared: RedisTier | None = None,
        namespace: str = "sealgate",
    ) -> None:
        self._platforms = platforms
        self._holder_keys = holder_keys
        self._clock = clock
        self._shared = shared
        self._prefix = f"{namespace}:assertion:"
        self._seen: dict[str, int] = {}  # jti → exp of assertions already taken
        self._shared_down = False  # logged once an outage, not once a request

    async def holder_key(self, request: web.Request) -> bytes:
        """The registry key of the holder the request's assertion names; 403 otherwise."""
        token = request.headers.get(ASSERTION_HEADER)
        if not token:
            raise refused(f"send the identity platform's assertion in {ASSERTION_HEADER}")
        try:
            claims = open_jws(token, self._platforms, Use.HOLDER_ASSERTION, typ=ASSERTION_TYPE)
        except CryptoError:
            raise refused("the assertion is not signed by a trusted identity platform") from None
        now = self._clock()
        iat, exp = claims.get("iat"), claims.get("exp")
        if claims.get("aud") != AUDIENCE:
            raise refused("the assertion is for another audience")
        if not (isinstance(iat, int) and isinstance(exp, int)):
            raise refused("the assertion has no iat and exp")
        if not (iat - CLOCK_SKEW <= now < exp) or exp - iat > MAX_LIFETIME:
            raise refused("the assertion has expired or lasts too long")
        try:
            kind, holder_id = parse_holder_id(claims.get("sub"), "sub")
        except InvalidRequest:
            raise refused("the assertion names no valid identity number") from None
        jti = claims.get("jti")
        self._once(jti, exp, now)
        await self._once_everywhere(str(claims.get("iss")), str(jti), exp)
        return self._holder_keys.key(kind, holder_id)

    def _once(self, jti: object, exp: int, now: float) -> None:
        """Each assertion serves one request in this process."""
        if not isinstance(jti, str) or not 8 <= len(jti) <= 128:
            raise refused("the assertion has no jti of 8 to 128 characters")
        if len(self._seen) >= MAX_REMEMBERED:
            self._seen = {k: e for k, e in self._seen.items() if e > now}
            if len(self._seen) >= MAX_REMEMBERED:
                raise refused("too many assertions at once; retry with a new one")
        if jti in self._seen:
            raise refused("this assertion was used already")
        self._seen[jti] = exp

    async def _once_everywhere(self, issuer: str, jti: str, exp: int) -> None:
        """Claim the assertion in Redis for every worker and instance: ``SET NX`` expiring
        with it (Redis's own clock keeps the key no longer than the assertion lives)."""
        if self._shared is None:
            return
        from redis.exceptions import RedisError

        from sealgate.cache.redis_tier import TierUnavailable

        # The key names the assertion, not the holder: a digest of its issuer and jti.
        key = self._prefix + hashlib.sha256(f"{issuer}\x00{jti}".encode()).hexdigest()[:32]
        try:
            taken = await self._shared.command(
                lambda redis: redis.set(key, b"1", nx=True, exat=exp)
            )
        except (TierUnavailable, RedisError) as exc:
            if not self._shared_down:
                log.warning(
                    "holder assertions remembered per worker only: Redis unavailable (%s)",
                    type(exc).__name__,
                )
                self._shared_down = True
            return
        self._shared_down = False
        if not taken:
            raise refused("this assertion was used already")
