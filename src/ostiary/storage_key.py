"""The storage encryption key that seals signing keys and TOTP secrets (NIST SP 800-38D key).

Taken from the ``storage.encryption_key`` setting when set (PostgreSQL, several hosts). Else
from ``<data_dir>/storage.key``, created on first use, so encryption is on with no
configuration: the file sits next to the default SQLite database. ``memory://`` storage keeps
nothing after the process ends, so it gets a random key per process and no file.

Creating the file is atomic: the key is written to a private temporary file that is then
hard-linked to its final name. Linking fails with ``EEXIST`` when another process won the race,
and that process's file is read instead, so two servers starting at once agree on one key and
nobody ever reads a half-written file. Kept out of ``ostiary.core``, which does no I/O.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path

from ostiary.core.cipher import KEY_BYTES, SecretCipher
from ostiary.errors import ConfigurationError
from ostiary.settings import Settings

log = logging.getLogger("ostiary.storage_key")

KEY_FILE_NAME = "storage.key"
SETTING = "storage.encryption_key (OSTIARY_STORAGE__ENCRYPTION_KEY)"

_process_key: bytes | None = None


def storage_cipher(settings: Settings) -> SecretCipher:
    """The cipher for secrets at rest under ``settings``, creating the key file if needed."""
    configured = settings.storage.encryption_key
    if configured is not None:
        return SecretCipher.from_base64(configured.get_secret_value(), source=SETTING)
    if settings.storage.url.startswith("memory://"):
        return SecretCipher(_memory_key(), source="the per-process key of memory:// storage")
    path = settings.data_dir / KEY_FILE_NAME
    return SecretCipher(load_or_create_key_file(path), source=f"the key file {path}")


def _memory_key() -> bytes:
    global _process_key
    if _process_key is None:
        _process_key = secrets.token_bytes(KEY_BYTES)
    return _process_key


def load_or_create_key_file(path: Path) -> bytes:
    """The 32-byte key in ``path`` (base64 text), made with mode 0600 when the file is absent."""
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(base64.b64encode(key) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            # Another process created it between our read and our link: use theirs.
            return _read_key_file(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    log.info("created the storage encryption key file %s", path)
    return key


def _read_key_file(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise  # the caller creates it
    except OSError as exc:
        raise ConfigurationError(f"cannot read the storage key file {path}: {exc}") from None
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except binascii.Error:
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigurationError(
            f"the storage key file {path} does not hold a key (32 bytes, base64); restore it "
            f"from a backup, or set {SETTING}"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("the storage key file %s is readable by others (mode %o)", path, mode)
    return key


__all__ = ["KEY_FILE_NAME", "SETTING", "load_or_create_key_file", "storage_cipher"]
