"""The exceptions of the key-holding layer; see the tree in :mod:`hsm`."""

from sealgate.errors import Error


class HsmError(Error):
    """Base of every error raised by :mod:`hsm`."""


class KeystoreConfigError(HsmError):
    """The module, token or PIN cannot be used as configured (not retryable)."""


class KeyNotFound(HsmError):
    """No key carries the requested label."""


class KeyNotAllowed(HsmError):
    """The signing process was not told it may sign with this key (not an active seal
    key, nor the audit key): refused, whatever the token holds."""


class KeyExists(HsmError):
    """A key with the requested label already exists."""


class DuplicateKey(HsmError):
    """More than one key carries the label; refuse rather than guess."""


class MechanismNotSupported(HsmError):
    """The token lacks the mechanism the operation needs."""


class HsmUnavailable(HsmError):
    """The token, its session or the signing process failed; the caller may retry later.

    ``retry_after`` (seconds), when set, is the earliest moment a retry can succeed, for
    example while the signing process is inside its restart backoff.
    """

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
