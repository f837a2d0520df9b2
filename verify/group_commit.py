"""How both registry writers form a group: the first job, and whatever has queued behind it.

The SQLite writer is a thread on a :class:`queue.SimpleQueue`, the PostgreSQL one a task
on an :class:`asyncio.Queue`; they take a group the same way, so that the number of
commits follows the store's speed rather than the request rate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

J = TypeVar("J")


def gather_group(
    first: J,
    get_nowait: Callable[[], J | None],
    empty: type[Exception],
    *,
    max_jobs: int,
    weight: Callable[[J], int] = lambda _: 1,
    max_weight: int | None = None,
) -> tuple[list[J], bool]:
    """``first`` and the jobs queued behind it, up to ``max_jobs`` and, where given, a
    total ``weight`` of ``max_weight``; ``get_nowait`` raises ``empty`` when nothing is
    queued. The flag says a ``None`` (stop) was taken: commit the group, then stop."""
    group = [first]
    total = weight(first)
    while len(group) < max_jobs and (max_weight is None or total < max_weight):
        try:
            job = get_nowait()
        except empty:
            break
        if job is None:
            return group, True
        group.append(job)
        total += weight(job)
    return group, False
