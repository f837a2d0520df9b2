"""The pipe protocol between :mod:`sealgate.hsm.service` and :mod:`sealgate.hsm.worker`.

Every message is a frame of :mod:`sealgate.hsm.frames`.

1. parent → child: the :class:`~sealgate.hsm.keystore.KeystoreConfig` as a map (the PIN travels
   here, never on argv or in the environment).
2. child → parent: ``["ready"]``, or ``["error", code, message]`` and the child exits.
3. parent → child: ``[batch_id, items]``; an item is ``[label, digest]``, or ``None`` for
   a readiness probe (:meth:`~sealgate.hsm.keystore.Keystore.check`). Or, before a batch,
   ``["allow", labels]`` (no answer): from then on the child signs only with these
   labels and answers any other item ``KeyNotAllowed``; until the first such frame it
   signs with any.
4. child → parent: ``[batch_id, results]``, one result per item in order: the signature
   (``bytes``; empty for a probe) or ``[code, message]``. Before it, while a batch takes
   longer than :data:`sealgate.hsm.worker.PROGRESS_SECONDS`, ``[0, done]`` every that
   often (batch ids start at 1): how many of its items are signed, so that the parent
   can tell a long batch from a hung child without a timeout that grows with the batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sealgate.hsm.errors import (
    DuplicateKey,
    HsmError,
    HsmUnavailable,
    KeyExists,
    KeyNotAllowed,
    KeyNotFound,
    KeystoreConfigError,
    MechanismNotSupported,
)
from sealgate.hsm.frames import ProtocolError
from sealgate.hsm.keystore import KeystoreConfig

__all__ = [
    "ALLOW",
    "ERRORS",
    "ProtocolError",
    "config_from_wire",
    "config_to_wire",
    "error_code",
    "error_from_code",
]

#: The first element of an allow-list frame (a batch id is an integer).
ALLOW = "allow"

#: Error codes on the wire; ``ValueError`` is a caller bug (bad digest length).
ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        HsmError,
        KeystoreConfigError,
        KeyNotFound,
        KeyNotAllowed,
        KeyExists,
        DuplicateKey,
        MechanismNotSupported,
        HsmUnavailable,
        ValueError,
    )
}


def error_code(exc: BaseException) -> str:
    """The wire code of an exception: its sealgate.hsm.errors class, else the generic HsmError."""
    for cls in type(exc).__mro__:
        if cls.__name__ in ERRORS and issubclass(cls, ERRORS[cls.__name__]):
            return cls.__name__
    return "HsmError"


def error_from_code(code: str, message: str) -> Exception:
    return ERRORS.get(code, HsmError)(message)


def config_to_wire(config: KeystoreConfig) -> dict[str, Any]:
    return {
        "backend": config.backend,
        "module": config.module,
        "token_label": config.token_label,
        "pin": config.pin,
        "softhsm2_conf": config.softhsm2_conf,
        "directory": None if config.directory is None else str(config.directory),
    }


def config_from_wire(obj: Any) -> KeystoreConfig:
    if not isinstance(obj, dict):
        raise ProtocolError("the first frame must be the keystore configuration")
    directory = obj.get("directory")
    return KeystoreConfig(
        backend=str(obj.get("backend", "")),
        module=str(obj.get("module", "")),
        token_label=str(obj.get("token_label", "")),
        pin=str(obj.get("pin", "")),
        softhsm2_conf=str(obj.get("softhsm2_conf", "")),
        directory=None if directory is None else Path(directory),
    )
