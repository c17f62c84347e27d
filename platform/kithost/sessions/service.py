"""Minting ChatKit credentials for visitors and tenant backends.

Self-hosted widgets get a Kithost session token (``sessions.tokens``); hosted widgets get
an OpenAI client secret (``sessions.hosted_chatkit``). Every mint is recorded for analytics as a
``server.session.minted`` fact (widget, end user, origin, mode, time; never a credential).
Hosted mints are also kept in ``session_mints`` with the secret's hash: that is how a
refresh presenting the current secret, while it lives, finds its end user. That row is
written after the answer is sent (``sessions.recorder``; its commit would otherwise double
what Kithost adds to OpenAI's call): a refresh comes minutes later, and a row that is lost
(the process died in between, the database was down) only makes that one refresh fail,
after which the loader mints anew.
Self-hosted mints need no row (their tokens carry the end user), so minting one touches no
table.

A framed chat calls from Kithost's own page (``/w/{pk}``), so its requests' ``Origin`` says
nothing of the site showing it: that page reports its embedder (the framing page's origin),
which must be one of the widget's allowed origins when the session is minted, and again on
every refresh and chat request while the session lives (:func:`embedder_of`,
:func:`check_embedder`; a self-hosted token carries it, ``sessions.tokens``).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import structlog
from fastapi import BackgroundTasks
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.analytics.facts import FactBuffer, fact, observed_error
from kithost.errors import Conflict, FieldError, Forbidden, RateLimited, Unauthorized, invalid_field
from kithost.kit.crypto import SecretBox
from kithost.kit.origins import is_browser_origin
from kithost.kit.ratelimit import RateLimiter
from kithost.kit.tokens import hash_secret
from kithost.models import SessionMint, Widget, WidgetMode
from kithost.models.base import utcnow
from kithost.secrets.service import openai_key_to_use, widget_identity_secret
from kithost.sessions import hosted_chatkit, tokens
from kithost.sessions.identity import (
    CLOCK_SKEW_SECONDS,
    EndUser,
    anonymous_user,
    secret_fingerprint,
    verify_identity_token,
)
from kithost.sessions.recorder import MintRecorder
from kithost.sessions.schemas import HostedSessionOut, SelfHostedSession
from kithost.settings import Settings
from kithost.visitor.routes import BROWSER_SCHEMES
from kithost.visitor.service import Published
from kithost.widgets import preview

log = structlog.get_logger(__name__)


async def limit(limiter: RateLimiter, key: str, per_minute: int) -> None:
    decision = await limiter.hit(key, per_minute, 60)
    if not decision.allowed:
        raise RateLimited(decision.retry_after, "Too many sessions; try again shortly.")


async def end_user_of(
    session: AsyncSession,
    box: SecretBox,
    target: Published,
    *,
    identity_token: str | None,
    device_id: str | None,
) -> EndUser:
    """Who the visitor is: the tenant backend's user, or an anonymous device."""
    if identity_token is not None:
        widget = await session.get(Widget, target.widget_id)
        secret = None if widget is None else widget_identity_secret(box, widget)
        if secret is None:
            raise Unauthorized(
                "This widget has no identity secret yet.", code="invalid_identity_token"
            )
        return verify_identity_token(identity_token, secret)
    if target.widget_config.require_identity:
        raise Unauthorized("This widget needs an identity token.", code="identity_required")
    if device_id is None:
        raise invalid_field("device_id", "send an identity_token or an anonymous device_id")
    return anonymous_user(device_id)


async def mint(
    session: AsyncSession,
    settings: Settings,
    box: SecretBox,
    buffer: FactBuffer,
    target: Published,
    *,
    end_user: EndUser,
    origin: str | None,
    context: dict[str, Any],
    later: BackgroundTasks,
    recorder: MintRecorder,
    embedder: str | None = None,
) -> SelfHostedSession | HostedSessionOut:
    """The credential; a hosted one is remembered (by ``recorder``, ``later``: see above)
    for its refresh. On a preview key, only while its maker may still edit the widget."""
    if target.preview:
        await preview.check_maker(session, settings, target.public_key)
    minted: SelfHostedSession | HostedSessionOut
    mode = target.widget_config.mode
    if mode is WidgetMode.hosted:
        try:
            minted = await _mint_hosted(settings, box, target, end_user.id, context)
        except hosted_chatkit.HostedChatKitFailed as exc:
            error = observed_error(end_user.id, "hosted_session", exc.reason, exc.hint)
            buffer.add(target.tenant_id, target.widget_id, error)
            raise exc.problem from exc
        mint_row = {
            "created_at": utcnow(),
            "tenant_id": target.tenant_id,
            "widget_id": target.widget_id,
            "end_user_id": end_user.id,
            "origin": origin,
            "mode": mode,
            "secret_hash": hash_secret(minted.client_secret),
        }
        later.add_task(recorder.record, mint_row)
    else:
        if origin is None:
            raise invalid_field("origin", "the page origin that will use the session")
        minted = await _mint_self_hosted(session, settings, box, target, end_user, origin, embedder)
    if not target.preview:
        buffer.add(
            target.tenant_id,
            target.widget_id,
            fact("session.minted", end_user.id, mode=mode.value, origin=origin),
        )
    return minted


async def refreshed_end_user(
    session: AsyncSession,
    settings: Settings,
    box: SecretBox,
    target: Published,
    *,
    current: str,
    origin: str,
) -> EndUser:
    """The end user of the credential being refreshed (of this widget and origin only),
    under the widget's current policy: an anonymous one no longer refreshes once the widget
    requires identity, nor one an identity secret vouched for once that secret is gone."""
    if target.widget_config.mode is WidgetMode.self_hosted:
        claims = await tokens.verify(
            session, settings, current, public_key=target.public_key, origin=origin
        )
        end_user = EndUser(
            id=claims.end_user_id,
            verified=claims.identity_expires_at is not None,
            expires_at=claims.identity_expires_at,
            secret_fingerprint=claims.secret_fingerprint,
            started_at=claims.started_at,
            embedder=claims.embedder,
        )
    else:
        result = await session.execute(
            select(SessionMint.end_user_id).where(
                SessionMint.widget_id == target.widget_id,
                SessionMint.secret_hash == hash_secret(current),
                SessionMint.origin == origin,
                SessionMint.created_at >= _hosted_secrets_since(target),
            )
        )
        end_user_id = result.scalar_one_or_none()
        if end_user_id is None:
            raise Unauthorized(
                "Unknown client secret for this widget.", code="invalid_session_token"
            )
        end_user = EndUser(id=end_user_id, verified=end_user_id.startswith("u:"))
    check_policy(target, end_user.id)
    if end_user.secret_fingerprint is not None:
        widget = await session.get(Widget, target.widget_id)
        secret = None if widget is None else widget_identity_secret(box, widget)
        if secret is None or secret_fingerprint(secret) != end_user.secret_fingerprint:
            raise Unauthorized(
                "The widget's identity secret has changed since; identify again.",
                code="identity_secret_changed",
            )
    return end_user


def _hosted_secrets_since(target: Published) -> datetime:
    """When the oldest hosted client secret still alive was minted: the widget's workflow
    says how long they live (``expires_after_seconds``; the loader refreshes before the
    end), plus the clocks' skew. An older one no longer refreshes, as an expired session
    token does not: found in a stale tab or a log, it bought a new secret for its end user
    for as long as its row is kept (the analytics retention)."""
    workflow = target.widget_config.hosted
    lifetime = 0 if workflow is None else workflow.expires_after_seconds
    return utcnow() - timedelta(seconds=lifetime + CLOCK_SKEW_SECONDS)


def check_policy(target: Published, end_user_id: str) -> None:
    """401 ``identity_required`` for an anonymous user of a widget that requires identity
    (sessions minted before it did, refreshing or chatting)."""
    if target.widget_config.require_identity and end_user_id.startswith("a:"):
        raise Unauthorized("This widget needs an identity token.", code="identity_required")


def embedder_of(
    settings: Settings, target: Published, origin: str, *, reported: str | None, kept: str | None
) -> str | None:
    """The page framing the chat, when the request comes from Kithost's framed page (its
    ``origin`` one of Kithost's own, the widget framed): the embedder the session already
    names (``kept``, on a refresh) or else the one the page ``reported``, checked by
    :func:`check_embedder`. None from any other page (the direct placement's chat runs in
    the tenant's page, whose own origin is checked and bound)."""
    if origin not in settings.own_origins or target.direct:
        return None
    return check_embedder(target, kept or reported)


def check_embedder(target: Published, embedder: str | None) -> str:
    """``embedder`` if the widget allows it now (a browser's spelling of one of its allowed
    origins); else 403 ``embedder_not_allowed`` on ``embedder``: an origin removed from the
    widget stops the framed chats open there at their next refresh or request."""
    if (
        embedder is None
        or not embedder.startswith(BROWSER_SCHEMES)
        or not is_browser_origin(embedder)
        or not target.allows(embedder)
    ):
        message = "the origin of the page framing the chat, one of the widget's allowed origins"
        raise Forbidden(
            "The page framing this chat may not use this widget.",
            code="embedder_not_allowed",
            errors=[FieldError(field="embedder", message=message, type="origin")],
        )
    return embedder


async def _mint_self_hosted(
    session: AsyncSession,
    settings: Settings,
    box: SecretBox,
    target: Published,
    end_user: EndUser,
    origin: str,
    embedder: str | None,
) -> SelfHostedSession:
    claims = tokens.SessionClaims(
        end_user_id=end_user.id,
        identity_expires_at=end_user.expires_at,
        secret_fingerprint=end_user.secret_fingerprint,
        started_at=end_user.started_at or int(time.time()),
        origin=origin,
        tenant_id=str(target.tenant_id),
        widget_id=str(target.widget_id),
        embedder=embedder,
    )
    minted = await tokens.issue(session, settings, box, public_key=target.public_key, claims=claims)
    return SelfHostedSession(
        end_user=end_user.id,
        token=minted.token,
        expires_at=minted.expires_at,
        chatkit_url=f"{settings.visitor_base_url}/v1/chatkit/{target.public_key}",
    )


async def _mint_hosted(
    settings: Settings,
    box: SecretBox,
    target: Published,
    end_user_id: str,
    context: dict[str, Any],
) -> HostedSessionOut:
    workflow = target.widget_config.hosted
    if workflow is None:  # parse_config refuses a hosted widget without a workflow
        raise Conflict("The widget has no hosted workflow.", code="widget_misconfigured")
    # From the cached snapshot: nothing is read (or locked) before the upstream call.
    api_key = openai_key_to_use(settings, box, target.tenant_openai_key)
    state = {
        key: value
        for key, value in context.items()
        if key in workflow.state_variables
        and isinstance(value, str | int | float | bool)
        and not (isinstance(value, str) and len(value) > 1000)
    }
    created = await hosted_chatkit.create_chatkit_session(
        api_key=api_key,
        base_url=settings.openai_base_url,
        timeout_seconds=settings.openai_timeout_seconds,
        hosted=workflow,
        user=end_user_id,
        state_variables=state,
    )
    return HostedSessionOut(
        end_user=end_user_id, client_secret=created.client_secret, expires_at=created.expires_at
    )
