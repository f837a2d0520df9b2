"""The city's table of matters (事项): what each business a verifier checks for may read.

益阳 规程 第四条 and the cities' 证明事项清单 name, for each matter, the proofs (证明材料)
it needs; 益阳 第二十条 and 沂源 第十二条 limit what is obtained to that business. A
verifier's purpose grant names a matter of this table. Any granted matter may check a
code's status (holder masked, as ever); a matter reads a proof's *content* (the facts
the issuing office sealed) only for the proof types it lists, and of those only the
named fields when it names some (最小必要).

Pure and I/O-free: the directory stores the table (:mod:`sealgate.verify.sql_matters`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sealgate.verify.directory import DirectoryError
from sealgate.verify.plain_text import plain_text

MAX_MATTER_ID = 64  # a purpose's length (the grant names it)
MAX_MATTER_NAME = 200
MAX_PROOF_TYPE = 200
MAX_FIELD = 64
MAX_FIELDS = 64


class InvalidMatter(DirectoryError):
    """A matter, a proof type or a field name that the table cannot hold."""


class MatterInUse(DirectoryError):
    """A matter still granted to clients cannot be removed."""


@dataclass(frozen=True, slots=True)
class Matter:
    """One row of the table. ``contents``: proof type → the content fields this matter
    may read of it (``None``: every field); a type not listed: no content at all."""

    matter_id: str
    name: str
    created_at: float
    contents: Mapping[str, frozenset[str] | None]

    def content_fields(self, proof_type: str) -> frozenset[str] | None:
        """The fields of a ``proof_type``'s content this matter may read (``None``:
        all). Raises :class:`ContentNotGranted` when it may read none."""
        if proof_type not in self.contents:
            raise ContentNotGranted(f"matter {self.matter_id} reads no content of {proof_type}")
        return self.contents[proof_type]

    def describe(self) -> str:
        """The contents as ``sealgate matter list`` prints them (and ``--content`` takes)."""
        return ";".join(
            proof_type if fields is None else f"{proof_type}={','.join(sorted(fields))}"
            for proof_type, fields in sorted(self.contents.items())
        )


class ContentNotGranted(DirectoryError):
    """The matter may not read that proof type's content."""


def plain(what: str, value: str, limit: int, *, forbidden: str = "") -> str:
    """Text the table keeps (:func:`plain_text`'s rule); raises :class:`InvalidMatter`."""
    try:
        return plain_text(what, value, limit, forbidden=forbidden)
    except ValueError as exc:
        raise InvalidMatter(str(exc)) from None


def parse_content_grant(text: str) -> tuple[str, frozenset[str] | None]:
    """``TYPE`` (every field of its content) or ``TYPE=FIELD,FIELD`` (those only)."""
    proof_type, sep, listed = text.partition("=")
    proof_type = plain("a proof type", proof_type, MAX_PROOF_TYPE, forbidden=";")
    if not sep:
        return proof_type, None
    names = [plain("a field name", n, MAX_FIELD, forbidden=",;=") for n in listed.split(",")]
    if len(names) > MAX_FIELDS:
        raise InvalidMatter(f"at most {MAX_FIELDS} fields a proof type")
    if len(set(names)) != len(names):
        raise InvalidMatter(f"a field is named twice for {proof_type}")
    return proof_type, frozenset(names)


def new_matter(matter_id: str, name: str, grants: list[str], created_at: float) -> Matter:
    """A matter from what an operator typed, every part checked."""
    contents: dict[str, frozenset[str] | None] = {}
    for grant in grants:
        proof_type, fields = parse_content_grant(grant)
        if proof_type in contents:
            raise InvalidMatter(f"{proof_type} is granted twice")
        contents[proof_type] = fields
    return Matter(
        matter_id=plain("the matter", matter_id, MAX_MATTER_ID),
        name=plain("the matter's name", name, MAX_MATTER_NAME),
        created_at=created_at,
        contents=contents,
    )


def read_content(
    content: Any, fields: frozenset[str] | None, holder_id: str, masked_id: str
) -> dict[str, Any]:
    """What a matter may see of a proof's sealed ``content`` object: the granted fields
    (all when ``fields`` is None), the holder's identity number masked wherever the
    office wrote it (a content is free JSON: it may repeat the number, in any case)."""
    if not isinstance(content, dict):
        return {}
    shown = content if fields is None else {k: v for k, v in content.items() if k in fields}
    number = re.compile(re.escape(holder_id), re.IGNORECASE) if holder_id else None

    def masked(value: Any) -> Any:
        if isinstance(value, str):
            return value if number is None else number.sub(masked_id, value)
        if isinstance(value, list):
            return [masked(v) for v in value]
        if isinstance(value, dict):
            return {masked(k): masked(v) for k, v in value.items()}
        return value

    return {masked(k): masked(v) for k, v in shown.items()}
