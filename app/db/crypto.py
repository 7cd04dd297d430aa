"""Encryption at rest of sensitive columns (destination addresses and contacts), with key rotation.

Columns use advanced-alchemy's `EncryptedText` with the backend below: it encrypts with the current
`DATA_KEY` and decrypts with it or any key of `DATA_KEY_PREVIOUS` (cryptography's MultiFernet). To
rotate: set the new key as DATA_KEY, the old one in DATA_KEY_PREVIOUS, run `dispatch keys rotate`
(re-encrypts every row with the new key), then drop the old key. Keys never reach a migration: the
column is plain TEXT in the schema, and the key is read from the process's keyring when used.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Any

from advanced_alchemy.types import EncryptedText
from advanced_alchemy.types.encrypted_string import FernetBackend
from cryptography.fernet import Fernet, MultiFernet


class _Keyring:
    current: str | None = None
    previous: tuple[str, ...] = ()


_KEYRING = _Keyring()


def configure_keys(current: str, previous: Sequence[str] = ()) -> None:
    """Set the process's keys (at start-up, from the settings)."""
    _KEYRING.current, _KEYRING.previous = current, tuple(previous)


def current_key() -> str:
    if _KEYRING.current is None:
        raise RuntimeError("the data key is not configured: call configure_keys() at start-up")
    return _KEYRING.current


def _fernet(key: str | bytes) -> Fernet:
    raw = key.encode() if isinstance(key, str) else key
    # The same derivation as advanced-alchemy's FernetBackend: values it wrote stay readable.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(raw).digest()))


class KeyringBackend(FernetBackend):
    """Fernet with the current key first and the previous keys as fallbacks for reading."""

    def mount_vault(self, key: str | bytes) -> None:
        self.fernet = MultiFernet([_fernet(key), *(_fernet(k) for k in _KEYRING.previous)])  # type: ignore[assignment]

    def rotate(self, token: str) -> str:
        """The same plaintext, encrypted with the current key."""
        self.mount_vault(current_key())
        rotated: bytes = self.fernet.rotate(token.encode())  # type: ignore[attr-defined]
        return rotated.decode()


def encrypted_text() -> Any:
    """A column type for sensitive text, encrypted with the keyring."""
    return EncryptedText(key=current_key, backend=KeyringBackend)
