"""Attachment rules: the widget's ``composer.attachments`` limits, and the signed URLs.

ChatKit uploads (two-phase) and loads previews from its own frame, without the loader's
``fetch``: so the upload and preview URLs carry their own proof, a short-lived token signed
with the app's secret keys and bound to the purpose, attachment, widget and end user. Only
the owner ever receives one (the store signs them when it hands that end user's own items
and attachments out), so they are the owner check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeTimedSerializer

from kithost.errors import FieldError, Forbidden, InvalidInput, Unauthorized, invalid_field
from kithost.kit.keys import Purpose as KeyPurpose
from kithost.settings import Settings

Purpose = Literal["upload", "preview"]
TOKEN_SECONDS: dict[Purpose, int] = {"upload": 15 * 60, "preview": 60 * 60}
CHATKIT_DEFAULT_MAX_SIZE = 100 * 1024 * 1024
CHATKIT_DEFAULT_MAX_COUNT = 10
_MIME = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,100}/[A-Za-z0-9!#$&^_.+-]{1,100}$")
MAX_UNSENT = 20
"""How many attachments one end user of a widget may hold that no message carries yet
(created, uploaded or not): twice a message's most in ChatKit's composer. Beyond it,
``attachments.create`` is 422 ``too_many_attachments`` until some are sent, deleted or
expire (:data:`UNSENT_LIFETIME`); without it, one visitor could fill the storage with files
never sent."""
UNSENT_LIFETIME = timedelta(hours=24)
"""How long an attachment no message carries is kept: the hourly retention purge
(``chat.service.purge_before``) deletes it after that, whatever the tenant's retention."""


@dataclass(frozen=True)
class AttachmentRules:
    """What ``chatkit.composer.attachments`` allows, capped by the platform's limit."""

    enabled: bool
    max_size: int | dict[str, int]
    max_count: int
    accept: dict[str, Any] | None
    cap: int

    @classmethod
    def of(cls, chatkit: dict[str, Any], settings: Settings) -> AttachmentRules:
        options = (chatkit.get("composer") or {}).get("attachments") or {}
        return cls(
            enabled=bool(options.get("enabled", False)),
            max_size=options.get("maxSize", CHATKIT_DEFAULT_MAX_SIZE),
            max_count=int(options.get("maxCount", CHATKIT_DEFAULT_MAX_COUNT)),
            accept=options.get("accept"),
            cap=settings.chat_attachment_max_bytes,
        )

    def size_limit(self, mime_type: str) -> int:
        limit = self.max_size
        if isinstance(limit, dict):
            fallback = limit.get("*", limit.get("", CHATKIT_DEFAULT_MAX_SIZE))
            limit = limit.get(mime_type, limit.get(_family(mime_type), fallback))
        return min(int(limit), self.cap)

    def accepts(self, mime_type: str) -> bool:
        if self.accept is None:
            return True
        return mime_type in self.accept or _family(mime_type) in self.accept

    def check(self, mime_type: str, size: int) -> None:
        """Refuse an attachment these rules do not allow (before any byte is sent)."""
        if not self.enabled:
            raise Forbidden("This chat does not take attachments.", code="attachments_disabled")
        if not _MIME.match(mime_type) or not self.accepts(mime_type):
            raise InvalidInput(
                f"Files of type {mime_type!r} are not accepted here.",
                code="attachment_type_not_allowed",
                errors=[FieldError(field="params.mime_type", message="not accepted", type="value")],
            )
        limit = self.size_limit(mime_type)
        if not 0 <= size <= limit:
            raise InvalidInput(
                f"Attachments of this type may have at most {limit} bytes.",
                code="attachment_too_large",
                errors=[FieldError(field="params.size", message=f"at most {limit}", type="value")],
            )

    @staticmethod
    def check_unsent(count: int) -> None:
        """Refuse another attachment to an end user already holding ``count`` unsent ones."""
        if count >= MAX_UNSENT:
            raise InvalidInput(
                f"At most {MAX_UNSENT} attachments may wait to be sent: send or delete some.",
                code="too_many_attachments",
            )

    def check_count(self, count: int) -> None:
        if count > self.max_count:
            raise invalid_field(
                "params.input.attachments", f"at most {self.max_count} attachments per message"
            )


def _family(mime_type: str) -> str:
    return mime_type.split("/", 1)[0] + "/*"


class AttachmentUrls:
    """Signs and checks the upload and preview URLs of attachments."""

    def __init__(self, settings: Settings) -> None:
        self.base_url = settings.visitor_base_url
        # itsdangerous signs with the last key and accepts all of them.
        keys = list(reversed(settings.keys().derived(KeyPurpose.attachments)))
        self._serializer = URLSafeTimedSerializer(keys, salt="kithost.chat.attachment")

    def url(self, purpose: Purpose, public_key: str, attachment_id: str, end_user_id: str) -> str:
        token = self._serializer.dumps([purpose, public_key, attachment_id, end_user_id])
        path = f"/v1/chatkit/{public_key}/attachments/{attachment_id}/{purpose}"
        return f"{self.base_url}{path}?{urlencode({'token': token})}"

    def bare_url(self, purpose: Purpose, public_key: str, attachment_id: str) -> str:
        return f"{self.base_url}/v1/chatkit/{public_key}/attachments/{attachment_id}/{purpose}"

    def end_user(
        self, purpose: Purpose, public_key: str, attachment_id: str, token: str | None
    ) -> str:
        """The end user a URL's token was signed for; 401 unless it is for exactly this."""
        try:
            signed = self._serializer.loads(token or "", max_age=TOKEN_SECONDS[purpose])
        except BadSignature as exc:
            raise _refused() from exc
        if not (isinstance(signed, list) and len(signed) == 4):
            raise _refused()
        if signed[:3] != [purpose, public_key, attachment_id] or not isinstance(signed[3], str):
            raise _refused()
        return signed[3]


def _refused() -> Unauthorized:
    return Unauthorized("This link is not valid (or no longer).", code="invalid_attachment_token")
