from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field

from cryptography.fernet import InvalidToken
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.audit import service as audit
from kithost.auth.principals import Actor, TenantAccess
from kithost.errors import Conflict
from kithost.kit.crypto import SecretBox
from kithost.kit.tokens import random_token
from kithost.kit.upstream import ModelEndpoint
from kithost.models import SigningKey, Tenant, WebhookEndpoint, Widget, WidgetMcpSecret
from kithost.secrets import repository
from kithost.secrets.repository import EncryptedColumn
from kithost.settings import Settings
from kithost.widgets.service import get_widget
from kithost.widgets.tool_secret import new_tool_secret, record_secret_change, secrets_state

ENCRYPTED_COLUMNS: tuple[EncryptedColumn, ...] = (
    Tenant.openai_api_key,
    Widget.identity_secret,
    Widget.model_key,
    Widget.tool_secret,
    WidgetMcpSecret.secret,
    SigningKey.private_key,
    WebhookEndpoint.secret,
    WebhookEndpoint.previous_secret,
)
"""Every column holding ``SecretBox`` ciphertexts."""


@dataclass(frozen=True)
class OpenAIKey:
    """What anyone sees of a tenant's OpenAI API key."""

    configured: bool
    last4: str | None


@dataclass(frozen=True)
class ModelKeyState:
    """What anyone sees of a widget's model key: that it has one, and the endpoint it is for
    (None: the operator's)."""

    has_model_key: bool
    base_url: str | None
    revision: int


@dataclass(frozen=True)
class _ModelKey:
    """A widget's model key as stored, decrypted: the key and the endpoint it was set for."""

    api_key: str = field(repr=False)
    base_url: str | None
    """None: the operator's endpoint."""


def _seal(api_key: str, base_url: str | None) -> str:
    """The plaintext of a stored model key: its endpoint (empty: the operator's), a newline,
    the key. Encrypted together, neither can be moved without the other, not even by
    whoever can write the table. Neither holds a newline: URLs are stored normalised, keys
    are printable ASCII (``schemas.ModelKeyUpdate``), so a plaintext without one is a key
    stored before."""
    return f"{base_url or ''}\n{api_key}"


def _unseal(plaintext: str, recorded: str | None) -> _ModelKey:
    """The key and its endpoint; a key stored before keys were sealed with theirs is for the
    endpoint the migration recorded beside it (``recorded``, ``Widget.model_key_base_url``)."""
    base_url, sealed, api_key = plaintext.rpartition("\n")
    return _ModelKey(api_key, (base_url if sealed else recorded) or None)


@dataclass(frozen=True)
class NewIdentitySecret:
    """A widget's new identity secret, shown once, and the widget's revision after it."""

    identity_secret: str
    revision: int


def openai_key(tenant: Tenant) -> OpenAIKey:
    return OpenAIKey(tenant.openai_api_key is not None, tenant.openai_api_key_last4)


def openai_key_to_use(settings: Settings, box: SecretBox, encrypted: str | None) -> str:
    """The key to call OpenAI with for a tenant whose own key is ``encrypted`` (None: unset):
    its own, else the platform's (``KITHOST_OPENAI_API_KEY``); 409 ``openai_key_missing``
    when there is neither."""
    if encrypted is not None:
        return box.decrypt(encrypted)
    if settings.openai_api_key is not None:
        return settings.openai_api_key.get_secret_value()
    raise Conflict("The tenant has no OpenAI API key.", code="openai_key_missing")


def model_endpoint(
    settings: Settings,
    box: SecretBox,
    base_url: str | None,
    *,
    widget_key: str | None,
    widget_key_base_url: str | None,
    tenant_key: str | None,
) -> ModelEndpoint:
    """Where a self-hosted widget's agent is called and with which key (keys encrypted).

    A credential goes only to the endpoint it was given for: the platform's key and the
    tenant's OpenAI key only to the operator's endpoint (``KITHOST_OPENAI_BASE_URL``, else
    OpenAI's), never to a ``base_url`` the tenant typed; the widget's model key only to the
    endpoint it was set for, sealed with it (:func:`set_model_key`). A ``base_url`` without
    the widget's key for it gets nothing: nothing is called (409 ``model_key_missing``).
    Otherwise whoever may edit a widget could read a key they may only write (the tenant's
    OpenAI key, a model key an owner set) by pointing the agent at their own server — in
    the draft a preview runs, or in an older version. Without a ``base_url`` the widget's
    model key goes first if it was set for the operator's endpoint, then the tenant's key,
    then the platform's."""
    own = None if widget_key is None else _unseal(box.decrypt(widget_key), widget_key_base_url)
    if own is not None and own.base_url != base_url:
        own = None
    if base_url is not None:
        if own is None:
            raise Conflict(
                "The widget's agent has its own base_url but no model key for it.",
                code="model_key_missing",
            )
        return ModelEndpoint(base_url, own.api_key, chosen_by_tenant=True)
    key = own.api_key if own is not None else openai_key_to_use(settings, box, tenant_key)
    return ModelEndpoint(settings.openai_base_url, key, chosen_by_tenant=False)


async def set_model_key(
    session: AsyncSession,
    box: SecretBox,
    access: TenantAccess,
    widget_id: uuid.UUID,
    key: str,
    base_url: str | None,
) -> ModelKeyState:
    """Store the widget's model key encrypted, replacing any other (never shown again), for
    one endpoint: ``base_url``, else the one the draft's agent names (none: the operator's).

    The key goes there only (:func:`model_endpoint`), and a config naming another endpoint
    is refused when saved or published (``widgets.service.check_agent``): whoever may edit
    the widget cannot send a key someone else set to a server of their own. The draft's
    endpoint by default, not the published version's: the draft is what a preview runs and
    what is published next. ``base_url`` names a new endpoint before the draft may name it
    (saving it needs the key for it); from then on the draft, its previews and published
    versions get the key only while they name this endpoint."""
    widget = await get_widget(session, access.tenant, widget_id)
    if base_url is None:
        base_url = widget.draft.get("agent", {}).get("base_url")
    before = secrets_state(widget)
    widget.model_key = box.encrypt(_seal(key, base_url))
    widget.model_key_base_url = base_url
    action = "widget.model_key_" + ("replaced" if before["has_model_key"] else "set")
    await record_secret_change(session, access, widget, action, before)
    return ModelKeyState(True, base_url, widget.revision)


async def remove_model_key(
    session: AsyncSession, access: TenantAccess, widget_id: uuid.UUID
) -> None:
    """Forget the widget's model key; without one, nothing changes. A published version
    whose agent has a ``base_url`` stops answering until a key is set again."""
    widget = await get_widget(session, access.tenant, widget_id)
    if widget.model_key is None:
        return
    before = secrets_state(widget)
    widget.model_key = widget.model_key_base_url = None
    await record_secret_change(session, access, widget, "widget.model_key_removed", before)


async def set_openai_key(
    session: AsyncSession, box: SecretBox, access: TenantAccess, api_key: str
) -> OpenAIKey:
    """Store the tenant's OpenAI API key encrypted, replacing any other."""
    tenant = access.tenant
    before = openai_key(tenant)
    tenant.openai_api_key = box.encrypt(api_key)
    tenant.openai_api_key_last4 = api_key[-4:]
    await repository.touch_tenant_widgets(session, tenant.id)
    _record_openai_key(session, access, "tenant.openai_key_set", before)
    return openai_key(tenant)


async def remove_openai_key(session: AsyncSession, access: TenantAccess) -> None:
    """Forget the tenant's OpenAI API key; without one, nothing changes."""
    tenant = access.tenant
    if tenant.openai_api_key is None:
        return
    before = openai_key(tenant)
    tenant.openai_api_key = tenant.openai_api_key_last4 = None
    await repository.touch_tenant_widgets(session, tenant.id)
    _record_openai_key(session, access, "tenant.openai_key_removed", before)


def _record_openai_key(
    session: AsyncSession, access: TenantAccess, action: str, before: OpenAIKey
) -> None:
    tenant = access.tenant
    audit.record(
        session,
        access.actor,
        action,
        tenant_id=tenant.id,
        target_type="tenant",
        target_id=tenant.id,
        data=audit.changes(asdict(before), asdict(openai_key(tenant))),
    )


def widget_identity_secret(box: SecretBox, widget: Widget) -> str | None:
    """The key that verifies the widget's identity tokens (HS256); None if it has none."""
    return None if widget.identity_secret is None else box.decrypt(widget.identity_secret)


async def rotate_identity_secret(
    session: AsyncSession, box: SecretBox, access: TenantAccess, widget_id: uuid.UUID
) -> NewIdentitySecret:
    """Give the widget a new identity secret; the one it had stops verifying at once."""
    widget = await get_widget(session, access.tenant, widget_id)
    before = secrets_state(widget)
    secret = random_token("wis_", 32)
    widget.identity_secret = box.encrypt(secret)
    action = "widget.identity_secret_" + ("rotated" if before["has_identity_secret"] else "created")
    await record_secret_change(session, access, widget, action, before)
    return NewIdentitySecret(secret, widget.revision)


async def remove_identity_secret(
    session: AsyncSession, access: TenantAccess, widget_id: uuid.UUID
) -> None:
    """Remove the widget's identity secret; without one, nothing changes."""
    widget = await get_widget(session, access.tenant, widget_id)
    if widget.identity_secret is None:
        return
    before = secrets_state(widget)
    widget.identity_secret = None
    await record_secret_change(session, access, widget, "widget.identity_secret_removed", before)


@dataclass(frozen=True)
class NewToolSecret:
    """A widget's new tool secret, shown once, and the widget's revision after it."""

    tool_secret: str
    revision: int


def widget_tool_secret(box: SecretBox, encrypted: str | None) -> str | None:
    """The key that signs the calls of a widget's ``http`` tools (None: it has none)."""
    return None if encrypted is None else box.decrypt(encrypted)


async def rotate_tool_secret(
    session: AsyncSession, box: SecretBox, access: TenantAccess, widget_id: uuid.UUID
) -> NewToolSecret:
    """Give the widget a new tool secret; calls are signed with it from the next answer on."""
    widget = await get_widget(session, access.tenant, widget_id)
    before = secrets_state(widget)
    secret = new_tool_secret()
    widget.tool_secret = box.encrypt(secret)
    action = "widget.tool_secret_" + ("rotated" if before["has_tool_secret"] else "created")
    await record_secret_change(session, access, widget, action, before)
    return NewToolSecret(secret, widget.revision)


async def reencrypt_all(session: AsyncSession, box: SecretBox, actor: Actor) -> dict[str, int]:
    """Re-encrypt every stored secret with ``box``'s first key; how many, per column.

    After it commits, the other keys of ``KITHOST_SECRET_KEY`` may be dropped.
    """
    counts = {}
    for column in ENCRYPTED_COLUMNS:
        name = f"{column.class_.__tablename__}.{column.key}"
        rows = await repository.lock_encrypted(session, column)
        for id, ciphertext in rows:
            try:
                rotated = box.rotate(ciphertext)
            except InvalidToken:
                raise Conflict(
                    f"{name} of {id} decrypts with none of the keys: is one missing?",
                    code="undecryptable_secret",
                ) from None
            await repository.replace_encrypted(session, column, id, rotated)
        counts[name] = len(rows)
    audit.record(session, actor, "secrets.reencrypted", data=counts)
    return counts
