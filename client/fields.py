"""Typed reads of the gateway's JSON answers: a missing or mistyped field is
:class:`~sealgate.client.errors.UnexpectedAnswer`, never a KeyError or a wrong type."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, TypeVar

from sealgate.client.errors import UnexpectedAnswer
from sealgate.verify.registry import Status

E = TypeVar("E", bound=enum.StrEnum)


class Fields:
    """Typed reads of one JSON object; a missing or mistyped field is UnexpectedAnswer."""

    def __init__(self, body: Any, what: str) -> None:
        if not isinstance(body, dict):
            raise UnexpectedAnswer(f"{what}: expected a JSON object")
        self._body = body
        self._what = what

    def _get(self, name: str, kind: type | tuple[type, ...], optional: bool = False) -> Any:
        value = self._body.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, kind):
            raise UnexpectedAnswer(f"{self._what}: field {name!r} is missing or mistyped")
        return value

    def text(self, name: str) -> str:
        return str(self._get(name, str))

    def maybe_text(self, name: str) -> str | None:
        value = self._get(name, str, optional=True)
        return None if value is None else str(value)

    def number(self, name: str) -> int:
        value = self._get(name, int)
        if isinstance(value, bool):
            raise UnexpectedAnswer(f"{self._what}: field {name!r} is missing or mistyped")
        return int(value)

    def flag(self, name: str) -> bool:
        return bool(self._get(name, bool))

    def maybe_flag(self, name: str) -> bool | None:
        value = self._get(name, bool, optional=True)
        return None if value is None else bool(value)

    def maybe_number(self, name: str) -> int | None:
        return None if self._body.get(name) is None else self.number(name)

    def maybe_real(self, name: str) -> float | None:
        value = self._get(name, (int, float), optional=True)
        if isinstance(value, bool):
            raise UnexpectedAnswer(f"{self._what}: field {name!r} is missing or mistyped")
        return None if value is None else float(value)

    def word(self, name: str, kind: type[E]) -> E:
        """A field whose value is one of ``kind``'s (a status, a mode, a tier …)."""
        text = self.text(name)
        try:
            return kind(text)
        except ValueError:
            raise UnexpectedAnswer(f"{self._what}: unknown {name} {text!r}") from None

    def maybe_word(self, name: str, kind: type[E]) -> E | None:
        return None if self._body.get(name) is None else self.word(name, kind)

    def has(self, name: str) -> bool:
        return name in self._body

    def names(self) -> list[str]:
        return list(self._body)

    def raw(self) -> dict[str, Any]:
        return dict(self._body)

    def time(self, name: str) -> dt.datetime:
        return _time(self.text(name), self._what)

    def maybe_time(self, name: str) -> dt.datetime | None:
        text = self.maybe_text(name)
        return None if text is None else _time(text, self._what)

    def status(self, name: str) -> Status:
        return self.word(name, Status)

    def obj(self, name: str) -> Fields:
        return Fields(self._get(name, dict), f"{self._what}.{name}")

    def maybe_obj(self, name: str) -> Fields | None:
        """:meth:`obj`, or ``None`` when absent."""
        value = self._get(name, dict, optional=True)
        return None if value is None else Fields(value, f"{self._what}.{name}")

    def maybe_object(self, name: str) -> dict[str, Any] | None:
        """A JSON object taken whole (free content), or ``None`` when absent."""
        value = self._get(name, dict, optional=True)
        return None if value is None else dict(value)

    def items(self, name: str) -> list[Fields]:
        return [Fields(item, f"{self._what}.{name}[]") for item in self._get(name, list)]

    def texts(self, name: str) -> list[str]:
        values = self._get(name, list)
        if not all(isinstance(v, str) for v in values):
            raise UnexpectedAnswer(f"{self._what}: {name!r} must be a list of strings")
        return [str(v) for v in values]


def _time(text: str, what: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise UnexpectedAnswer(f"{what}: {text!r} is not an RFC 3339 time") from None
