"""Encryption of secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256).

Values are encrypted with the current key of :attr:`~kithost.kit.keys.Purpose.secrets`
(``kit.keys``: derived from the newest ``KITHOST_SECRET_KEY``). Every derived key decrypts,
and so does every configured key used as it was before keys were derived per purpose (the
SHA-256 of the key as Fernet's key): values written then still read, and
``kithost secrets reencrypt`` (:meth:`SecretBox.rotate`) moves them to the current key.
To rotate, put a new key first, run ``kithost secrets reencrypt``, then drop the old key.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from kithost.kit.keys import Keys, Purpose


class SecretBox:
    def __init__(self, keys: Keys) -> None:
        derived = [base64.urlsafe_b64encode(k) for k in keys.derived(Purpose.secrets)]
        legacy = [_legacy_key(k) for k in keys.configured]
        self._fernet = MultiFernet([Fernet(k) for k in derived + legacy])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("cannot decrypt: wrong KITHOST_SECRET_KEY?") from exc

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt with the current key."""
        return self._fernet.rotate(ciphertext.encode()).decode()


def _legacy_key(secret: str) -> bytes:
    """The Fernet key a configured key was used as before keys were derived per purpose."""
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())
