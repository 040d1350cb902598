"""Request parameter sets (RFC 6749 §3.1, §3.2; RFC 8707 §2).

Parameters without a value are treated as omitted, and none may appear twice, except
``resource``, which RFC 8707 allows to repeat. No name or value may contain a NUL character.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ostiary.errors import InvalidRequestError

MULTI_VALUED = frozenset({"resource"})
MAX_PARAMETERS = 64
MAX_VALUE_LENGTH = 8192


@dataclass(frozen=True, slots=True)
class Params:
    """Parsed request parameters, single-valued unless named in MULTI_VALUED."""

    single: dict[str, str]
    multi: dict[str, tuple[str, ...]]

    @classmethod
    def parse(cls, pairs: Iterable[tuple[str, str]]) -> Params:
        """Build from (name, value) pairs, rejecting duplicates and oversized input."""
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        count = 0
        for name, value in pairs:
            count += 1
            if count > MAX_PARAMETERS:
                raise InvalidRequestError("too many parameters")
            if len(value) > MAX_VALUE_LENGTH or len(name) > 128:
                raise InvalidRequestError(f"parameter {_printable(name)} is too long")
            if "\x00" in value or "\x00" in name:
                # No identifier or secret contains NUL, and PostgreSQL text cannot hold it.
                raise InvalidRequestError(f"parameter {_printable(name)} contains a NUL character")
            if value == "":
                continue
            if name in MULTI_VALUED:
                multi.setdefault(name, []).append(value)
            elif name in single:
                raise InvalidRequestError(f"parameter {_printable(name)} is repeated")
            else:
                single[name] = value
        return cls(single, {k: tuple(v) for k, v in multi.items()})

    def get(self, name: str) -> str | None:
        return self.single.get(name)

    def require(self, name: str) -> str:
        value = self.single.get(name)
        if value is None:
            raise InvalidRequestError(f"{name} is required")
        return value

    def all(self, name: str) -> tuple[str, ...]:
        return self.multi.get(name, ())


def _printable(name: str) -> str:
    """A parameter name made safe for error_description (RFC 6749 §5.2 charset)."""
    cleaned = "".join(c for c in name[:40] if 0x20 <= ord(c) <= 0x7E and c not in '"\\')
    return cleaned or "(unnamed)"
