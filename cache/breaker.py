"""A circuit breaker: a dependency that fails costs one timeout per period, not one per call.

Open on an availability error; after ``seconds`` exactly one probe goes through, and only
a probe's success closes it again: a call admitted while closed that happens to succeed
after the failure proves nothing newer, and would make the log flap. It logs one WARNING
per outage and one INFO when the dependency is back, through the owner's logger.
"""

from __future__ import annotations

import enum
import logging
import time

__all__ = ["Admission", "CircuitBreaker"]


class Admission(enum.Enum):
    NORMAL = enum.auto()  # the breaker is closed
    PROBE = enum.auto()  # the breaker is half-open and this call decides it


class CircuitBreaker:
    """The state of one dependency, e.g. ``CircuitBreaker(1.0, "Redis cache tier", log)``."""

    def __init__(
        self,
        seconds: float,
        name: str,
        log: logging.Logger,
        *,
        meanwhile: str = "",
    ) -> None:
        self._seconds = seconds
        self._name = name
        self._log = log
        self._meanwhile = meanwhile  # what callers do while it is open, for the warning
        self._open_until: float | None = None  # None: closed
        self._probing = False

    @property
    def closed(self) -> bool:
        return self._open_until is None

    def would_admit(self) -> bool:
        """Cheap pre-check for callers that queue before they are admitted."""
        if self._open_until is None:
            return True
        return not self._probing and time.monotonic() >= self._open_until

    def admit(self) -> Admission | None:
        """``None``: do not call the dependency now."""
        if self._open_until is None:
            return Admission.NORMAL
        if self._probing or time.monotonic() < self._open_until:
            return None
        self._probing = True
        return Admission.PROBE

    def succeeded(self, admission: Admission) -> None:
        if admission is Admission.PROBE:
            self._probing = False
            if self._open_until is not None:
                self._open_until = None
                self._log.info("%s is available again", self._name)

    def failed(self, admission: Admission, error: BaseException) -> None:
        if admission is Admission.PROBE:
            self._probing = False
        if self._open_until is None:
            # The one WARNING per outage. The error names host and port, never a value.
            self._log.warning(
                "%s unavailable (%s: %s); %sretrying every %.1f s",
                self._name,
                type(error).__name__,
                error,
                f"{self._meanwhile}, " if self._meanwhile else "",
                self._seconds,
            )
        self._open_until = time.monotonic() + self._seconds

    def abandoned(self, admission: Admission) -> None:
        """The call ended without a verdict (cancelled at close): free the probe slot."""
        if admission is Admission.PROBE:
            self._probing = False
