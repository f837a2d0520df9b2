"""The signing process: ``python -m sealgate.hsm.worker``, started by
:class:`sealgate.hsm.service.ProcessSigningService`.

A fresh interpreter (nothing inherited through ``fork()``) that opens ONE keystore, logs
in once, and signs batches sequentially on its single session until stdin closes. The
protocol is in :mod:`sealgate.hsm._wire`. Errors go back as codes and short messages, never
tracebacks (a traceback could carry the configuration, PIN included).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any, BinaryIO

from sealgate.hsm import _wire, frames
from sealgate.hsm.errors import HsmError, HsmUnavailable, KeyNotAllowed
from sealgate.hsm.keystore import Keystore, open_keystore

logger = logging.getLogger("sealgate.hsm.worker")

EXIT_OK = 0
EXIT_CONFIG = 2  # could not open the keystore
EXIT_UNAVAILABLE = 3  # the token failed: exit so the parent starts a fresh process
EXIT_PROTOCOL = 4

#: How often a batch still being signed says how far it got (``[0, done]``): the parent
#: takes a child silent for :data:`sealgate.hsm.service.STALL_TIMEOUT` with work
#: outstanding for hung, whatever the batch's size, so a long batch must keep talking.
PROGRESS_SECONDS = 0.1


def _sign_batch(
    keystore: Keystore,
    items: list[Any],
    progress: Callable[[int], None] | None = None,
    allowed: frozenset[str] | None = None,
) -> tuple[list[Any], bool]:
    """Sign every item in order; returns the results and whether the token failed.
    ``progress(done)`` is called every :data:`PROGRESS_SECONDS` while the batch lasts.
    ``allowed``: the only labels to sign with (None: any)."""
    results: list[Any] = []
    token_failed = False
    said_at = time.monotonic()
    for item in items:
        if progress is not None and time.monotonic() - said_at >= PROGRESS_SECONDS:
            progress(len(results))
            said_at = time.monotonic()
        try:
            if item is None:
                keystore.check()
                results.append(b"")
            else:
                label, digest = item
                if allowed is not None and label not in allowed:
                    raise KeyNotAllowed(f"the signing process may not sign with {label!r}")
                results.append(keystore.sign_digest(str(label), bytes(digest)))
        except (HsmError, ValueError) as exc:
            token_failed = token_failed or isinstance(exc, HsmUnavailable)
            results.append([_wire.error_code(exc), str(exc)])
        except Exception as exc:
            # Unexpected: log the class only (a repr could hold key material or the PIN).
            logger.error("signing failed unexpectedly: %s", type(exc).__name__)
            results.append(["HsmError", f"internal error: {type(exc).__name__}"])
    return results, token_failed


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    def send(obj: Any) -> None:
        frames.write_frame(stdout, obj)

    config = _wire.config_from_wire(frames.read_frame(stdin))
    try:
        keystore = open_keystore(config)
    except HsmError as exc:
        send(["error", _wire.error_code(exc), str(exc)])
        return EXIT_CONFIG
    del config  # the PIN has done its job
    send(["ready"])
    # Which keys the gateway may have signed (its active seal keys and the audit key): a
    # bug that asks for another label, a retired key's, is refused here.
    allowed: frozenset[str] | None = None
    with keystore:
        while (request := frames.read_frame(stdin)) is not None:
            batch_id, items = request
            if batch_id == _wire.ALLOW:
                allowed = frozenset(str(label) for label in items)
                continue
            results, token_failed = _sign_batch(
                keystore, items, lambda done: send([0, done]), allowed
            )
            send([batch_id, results])
            if token_failed:
                logger.warning("token unavailable; exiting so that a fresh process logs in")
                return EXIT_UNAVAILABLE
    return EXIT_OK


def main() -> int:
    logging.basicConfig(
        level=logging.WARNING,
        stream=sys.stderr,
        format="sealgate.hsm.worker[%(process)d] %(message)s",
    )
    # The parent decides when this process ends (by closing stdin); a Ctrl-C or SIGTERM
    # aimed at the gateway's process group must not kill signing mid-batch, nor before
    # the audit trail's final checkpoint is signed.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    # fd 1 carries frames only: anything that prints (a library, a stray debug line)
    # goes to stderr instead of corrupting the protocol.
    stdout = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        return serve(sys.stdin.buffer, stdout)
    except frames.ProtocolError as exc:
        logger.error("protocol error: %s", exc)
        return EXIT_PROTOCOL
    except BrokenPipeError:
        return EXIT_OK  # the parent went away


if __name__ == "__main__":
    sys.exit(main())
