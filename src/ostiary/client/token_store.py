"""Client-side token and registration storage (OAuth 2.1 §7.1; MCP SEP-2352 issuer binding).

Everything is keyed by the issuer that issued it and the resource it is for, so tokens and
client credentials from one authorization server are never presented to another (SEP-2352).
Two backends: :class:`MemoryTokenStore` (tests, one-shot programs) and
:class:`FileTokenStore` (one JSON file per issuer, mode ``0600`` in a ``0700`` directory,
replaced atomically through a temporary file and ``os.replace``; every read-modify-write
holds an exclusive ``flock`` on the issuer's lock file, so two programs updating different
resources at once both keep their change).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from ostiary.client.registration import ClientRegistration
from ostiary.client.tokens import TokenSet

__all__ = ["FileTokenStore", "MemoryTokenStore", "StoredGrant", "TokenStore"]


@dataclass(frozen=True)
class StoredGrant:
    """One (issuer, resource) entry, as listed by :meth:`TokenStore.list_grants`."""

    issuer: str
    resource: str
    tokens: TokenSet | None
    registration: ClientRegistration | None


class TokenStore(Protocol):
    """Where the client keeps tokens and client registrations."""

    async def get_tokens(self, issuer: str, resource: str) -> TokenSet | None:
        """The tokens for ``resource`` issued by ``issuer``, if any."""

    async def save_tokens(self, issuer: str, resource: str, tokens: TokenSet) -> None:
        """Replace the tokens for (``issuer``, ``resource``)."""

    async def delete_tokens(self, issuer: str, resource: str) -> None:
        """Forget the tokens for (``issuer``, ``resource``)."""

    async def get_registration(self, issuer: str, resource: str) -> ClientRegistration | None:
        """The client registration obtained from ``issuer`` while accessing ``resource``."""

    async def save_registration(self, resource: str, registration: ClientRegistration) -> None:
        """Keep a registration, bound to ``registration.issuer``."""

    async def delete_registration(self, issuer: str, resource: str) -> None:
        """Forget a registration."""

    async def list_grants(self) -> list[StoredGrant]:
        """Every stored (issuer, resource) entry."""


class MemoryTokenStore:
    """A :class:`TokenStore` in a dict; gone when the process ends."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], TokenSet] = {}
        self._registrations: dict[tuple[str, str], ClientRegistration] = {}

    async def get_tokens(self, issuer: str, resource: str) -> TokenSet | None:
        return self._tokens.get((issuer, resource))

    async def save_tokens(self, issuer: str, resource: str, tokens: TokenSet) -> None:
        self._tokens[(issuer, resource)] = tokens

    async def delete_tokens(self, issuer: str, resource: str) -> None:
        self._tokens.pop((issuer, resource), None)

    async def get_registration(self, issuer: str, resource: str) -> ClientRegistration | None:
        return self._registrations.get((issuer, resource))

    async def save_registration(self, resource: str, registration: ClientRegistration) -> None:
        self._registrations[(registration.issuer, resource)] = registration

    async def delete_registration(self, issuer: str, resource: str) -> None:
        self._registrations.pop((issuer, resource), None)

    async def list_grants(self) -> list[StoredGrant]:
        keys = sorted(set(self._tokens) | set(self._registrations))
        return [
            StoredGrant(i, r, self._tokens.get((i, r)), self._registrations.get((i, r)))
            for i, r in keys
        ]


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class EntryStore:
    """Tokens and registrations as JSON entries keyed by (issuer, resource, kind).

    Subclasses say where an entry lives (``_entry`` reads one, ``_update`` writes or, with
    None, removes one); the typed get/save/delete methods are shared. An entry that no longer
    parses is treated as absent, so a corrupt store means a fresh login, not a crash.
    """

    def _entry(self, issuer: str, resource: str, key: str) -> Any:
        raise NotImplementedError

    def _update(self, issuer: str, resource: str, key: str, value: Any | None) -> None:
        raise NotImplementedError

    async def get_tokens(self, issuer: str, resource: str) -> TokenSet | None:
        try:
            raw = self._entry(issuer, resource, "tokens")
            return TokenSet.model_validate(raw) if raw is not None else None
        except ValidationError:
            return None

    async def save_tokens(self, issuer: str, resource: str, tokens: TokenSet) -> None:
        self._update(issuer, resource, "tokens", tokens.model_dump(mode="json"))

    async def delete_tokens(self, issuer: str, resource: str) -> None:
        self._update(issuer, resource, "tokens", None)

    async def get_registration(self, issuer: str, resource: str) -> ClientRegistration | None:
        try:
            raw = self._entry(issuer, resource, "registration")
            return ClientRegistration.model_validate(raw) if raw is not None else None
        except ValidationError:
            return None

    async def save_registration(self, resource: str, registration: ClientRegistration) -> None:
        self._update(
            registration.issuer, resource, "registration", registration.model_dump(mode="json")
        )

    async def delete_registration(self, issuer: str, resource: str) -> None:
        self._update(issuer, resource, "registration", None)


class FileTokenStore(EntryStore):
    """A :class:`TokenStore` with one JSON file per issuer under ``directory``.

    Files are created ``0600`` and replaced atomically, so a crash never leaves a
    half-written file and other users never read the tokens. A file that cannot be read
    (corrupt, wrong shape) is treated as empty rather than crashing the client.

    Args:
        directory: Where to keep the files; created ``0700`` when missing.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path_for(self, issuer: str) -> Path:
        """The file holding everything issued by ``issuer``."""
        digest = hashlib.sha256(issuer.encode("utf-8")).hexdigest()[:12]
        readable = _UNSAFE.sub("_", issuer.split("://", 1)[-1]).strip("_")[:60]
        return self.directory / f"{readable}-{digest}.json"

    def _read(self, issuer: str) -> dict[str, Any]:
        try:
            data = json.loads(self.path_for(issuer).read_text("utf-8"))
        except (OSError, ValueError):
            return {"issuer": issuer, "resources": {}}
        if not isinstance(data, dict) or data.get("issuer") != issuer:
            return {"issuer": issuer, "resources": {}}
        if not isinstance(data.get("resources"), dict):
            data["resources"] = {}
        return data

    def _write(self, issuer: str, data: dict[str, Any]) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.path_for(issuer)
        if not data["resources"]:
            target.unlink(missing_ok=True)
            return
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    @contextlib.contextmanager
    def _locked(self, issuer: str) -> Iterator[None]:
        """Hold the issuer's lock file exclusively (other processes wait, briefly)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = self.path_for(issuer).with_suffix(".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _update(self, issuer: str, resource: str, key: str, value: Any | None) -> None:
        with self._locked(issuer):
            data = self._read(issuer)
            entry = data["resources"].setdefault(resource, {})
            if value is None:
                entry.pop(key, None)
            else:
                entry[key] = value
            if not entry:
                del data["resources"][resource]
            self._write(issuer, data)

    def _entry(self, issuer: str, resource: str, key: str) -> Any:
        entry = self._read(issuer)["resources"].get(resource)
        return entry.get(key) if isinstance(entry, dict) else None

    async def list_grants(self) -> list[StoredGrant]:
        grants: list[StoredGrant] = []
        if not self.directory.is_dir():
            return grants
        for path in sorted(self.directory.glob("*.json")):
            try:
                issuer = json.loads(path.read_text("utf-8"))["issuer"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if not isinstance(issuer, str):
                continue
            grants.extend(
                [
                    StoredGrant(
                        issuer,
                        resource,
                        await self.get_tokens(issuer, resource),
                        await self.get_registration(issuer, resource),
                    )
                    for resource in sorted(self._read(issuer)["resources"])
                ]
            )
        return grants
