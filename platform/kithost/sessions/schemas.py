from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints

from kithost.kit.origins import MAX_ORIGIN_LENGTH
from kithost.kit.schemas import Schema, refuse_invisible

Context = Annotated[dict[str, Any], Field(max_length=32)]
"""Page context from the loader (``kithost('setContext', …)``): small and flat."""


class VisitorSessionRequest(Schema):
    """What the loader sends to get (or refresh) a ChatKit credential."""

    identity_token: Annotated[str, StringConstraints(max_length=4096)] | None = None
    """A JWT (HS256) from the tenant's backend, signed with the widget's identity secret."""
    device_id: Annotated[str, StringConstraints(max_length=80)] | None = None
    """The anonymous visitor's id (``anon_…``), when there is no identity token."""
    current: Annotated[str, StringConstraints(max_length=4096)] | None = None
    """The credential being refreshed: a Kithost session token or a hosted client secret."""
    embedder: Annotated[str, StringConstraints(max_length=MAX_ORIGIN_LENGTH)] | None = None
    """The origin of the page framing the chat, which Kithost's framed page (``/w/{pk}``)
    reports: one of the widget's allowed origins. Ignored from any other page."""
    context: Context = {}


class BackendSessionRequest(Schema):
    """A tenant backend minting for a user it has authenticated itself."""

    user: Annotated[
        str, StringConstraints(min_length=1, max_length=200), AfterValidator(refuse_invisible)
    ]
    origin: Annotated[str, StringConstraints(max_length=255)] | None = None
    """The page that will use a self-hosted session (one of the widget's allowed origins)."""
    context: Context = {}


class SelfHostedSession(Schema):
    mode: Literal["self_hosted"] = "self_hosted"
    end_user: str
    """The visitor's end-user id (``u:…`` or ``a:…``), for the loader's analytics events."""
    token: str
    """Send as ``Authorization: Bearer`` to ``chatkit_url``."""
    expires_at: int
    chatkit_url: str


class HostedSessionOut(Schema):
    mode: Literal["hosted"] = "hosted"
    end_user: str
    client_secret: str
    expires_at: int


MintedSession = Annotated[SelfHostedSession | HostedSessionOut, Field(discriminator="mode")]
