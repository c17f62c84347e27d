"""Encryption of secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256).

``KITHOST_SECRET_KEY`` may list several keys separated by commas: the first encrypts,
all decrypt. To rotate, put a new key first; values are re-encrypted with it when they are
rewritten (:meth:`SecretBox.rotate`); drop the old key once nothing uses it.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key")
        self._fernet = MultiFernet([Fernet(_derive(k)) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("cannot decrypt: wrong KITHOST_SECRET_KEY?") from exc

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt with the first key."""
        return self._fernet.rotate(ciphertext.encode()).decode()


def _derive(secret: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())
