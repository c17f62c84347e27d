"""Every table, one module each; import from here so Alembic sees them all."""

from kithost.models.allowed_origin import AllowedOrigin
from kithost.models.api_client import ApiClient
from kithost.models.audit_log_entry import AuditLogEntry
from kithost.models.base import Base
from kithost.models.chat_attachment import ChatAttachment
from kithost.models.chat_item import ChatItem
from kithost.models.chat_thread import ChatThread
from kithost.models.dashboard_session import DashboardSession
from kithost.models.invitation import Invitation
from kithost.models.membership import Membership, Role
from kithost.models.session_mint import SessionMint
from kithost.models.signing_key import SigningKey
from kithost.models.tenant import Tenant
from kithost.models.user import User
from kithost.models.widget import Placement, Widget, WidgetMode
from kithost.models.widget_version import WidgetVersion

__all__ = [
    "AllowedOrigin",
    "ApiClient",
    "AuditLogEntry",
    "Base",
    "ChatAttachment",
    "ChatItem",
    "ChatThread",
    "DashboardSession",
    "Invitation",
    "Membership",
    "Placement",
    "Role",
    "SessionMint",
    "SigningKey",
    "Tenant",
    "User",
    "Widget",
    "WidgetMode",
    "WidgetVersion",
]
