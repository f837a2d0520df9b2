"""A child for tests of :mod:`sealgate.hsm.child`: ``python -m tests.hsm.child_program MODE``.

``echo``: answers ``["ready"]``, then sends back every frame until stdin closes.
``silent``: never answers, and ignores stdin closing and SIGTERM (a hung child).
"""

from __future__ import annotations

import signal
import sys
import time

from sealgate.hsm import frames


def main() -> int:
    mode = sys.argv[1]
    if mode == "silent":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(60)
    frames.write_frame(sys.stdout.buffer, ["ready"])
    while (frame := frames.read_frame(sys.stdin.buffer)) is not None:
        frames.write_frame(sys.stdout.buffer, frame)
    return 0


if __name__ == "__main__":
    sys.exit(main())
