"""Token storage in the operating system's keyring (OAuth 2.1 §7.1 secure token storage).

Uses the ``keyring`` package (macOS Keychain, Windows Credential Locker, Secret Service,
KWallet) when it is installed and a real backend is available; :func:`default_token_store`
falls back to :class:`~ostiary.client.token_store.FileTokenStore` otherwise. Each
(issuer, resource) entry is one JSON secret under the service name ``ostiary``; an index
secret lists the entries, since keyrings cannot enumerate.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ostiary.client.token_store import EntryStore, FileTokenStore, StoredGrant, TokenStore

__all__ = ["KeyringTokenStore", "default_token_store", "keyring_available"]

SERVICE = "ostiary"
INDEX = "index"


def keyring_available() -> bool:
    """True when ``keyring`` is importable and its active backend can store secrets."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return False
    backend = keyring.get_keyring()
    return not isinstance(backend, fail.Keyring)


class KeyringTokenStore(EntryStore):
    """A :class:`~ostiary.client.token_store.TokenStore` in the OS keyring.

    Args:
        service: The keyring service name entries are filed under.
    """

    def __init__(self, service: str = SERVICE) -> None:
        import keyring

        self._keyring = keyring
        self.service = service

    def _get(self, name: str) -> Any:
        raw = self._keyring.get_password(self.service, name)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def _put(self, name: str, value: Any) -> None:
        self._keyring.set_password(self.service, name, json.dumps(value, sort_keys=True))

    def _index(self) -> list[list[str]]:
        found = self._get(INDEX)
        return [pair for pair in found if isinstance(pair, list)] if isinstance(found, list) else []

    def _update(self, issuer: str, resource: str, key: str, value: Any | None) -> None:
        name = json.dumps([issuer, resource])
        entry = self._get(name)
        entry = entry if isinstance(entry, dict) else {}
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
        index = [pair for pair in self._index() if pair != [issuer, resource]]
        if entry:
            self._put(name, entry)
            index.append([issuer, resource])
        elif self._keyring.get_password(self.service, name) is not None:
            self._keyring.delete_password(self.service, name)
        self._put(INDEX, sorted(index))

    def _entry(self, issuer: str, resource: str, key: str) -> Any:
        entry = self._get(json.dumps([issuer, resource]))
        return entry.get(key) if isinstance(entry, dict) else None

    async def list_grants(self) -> list[StoredGrant]:
        return [
            StoredGrant(
                issuer,
                resource,
                await self.get_tokens(issuer, resource),
                await self.get_registration(issuer, resource),
            )
            for issuer, resource in self._index()
        ]


def default_token_store(directory: str | os.PathLike[str] | None = None) -> TokenStore:
    """The keyring when usable and no directory was asked for; the file store otherwise.

    Args:
        directory: Use a :class:`FileTokenStore` here (explicit choice wins).
    """
    if directory is None and keyring_available():
        return KeyringTokenStore()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return FileTokenStore(directory or Path(base) / "ostiary" / "tokens")
