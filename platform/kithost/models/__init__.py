"""Every table, one module each; import from here so Alembic sees them all."""

from kithost.models.allowed_origin import AllowedOrigin
from kithost.models.analytics_event import AnalyticsEvent
from kithost.models.analytics_pending_rollup import AnalyticsPendingRollup
from kithost.models.analytics_rollup import TENANT_WIDE, AnalyticsRollup, RollupPeriod
from kithost.models.analytics_settings import AnalyticsSettings
from kithost.models.api_client import ApiClient
from kithost.models.audit_log_entry import AuditLogEntry
from kithost.models.base import Base
from kithost.models.chat_attachment import ChatAttachment
from kithost.models.chat_item import ChatItem
from kithost.models.chat_quota_use import ChatQuotaUse
from kithost.models.chat_thread import ChatThread
from kithost.models.conversation_export import (
    ConversationExport,
    ConversationExportThread,
    ExportStatus,
)
from kithost.models.conversation_review import ConversationReview
from kithost.models.dashboard_session import DashboardSession
from kithost.models.error_group import ErrorGroup, ErrorGroupUser, ErrorStatus
from kithost.models.invitation import Invitation
from kithost.models.knowledge import DocumentStatus, KnowledgeBase, KnowledgeDocument
from kithost.models.membership import Membership, Role
from kithost.models.session_mint import SessionMint
from kithost.models.signing_key import SigningKey
from kithost.models.tenant import Tenant
from kithost.models.user import User
from kithost.models.webhook import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookIdleMark,
    WebhookTenantSlot,
)
from kithost.models.widget import Placement, Widget, WidgetMode
from kithost.models.widget_mcp_secret import WidgetMcpSecret
from kithost.models.widget_version import WidgetVersion

__all__ = [
    "TENANT_WIDE",
    "AllowedOrigin",
    "AnalyticsEvent",
    "AnalyticsPendingRollup",
    "AnalyticsRollup",
    "AnalyticsSettings",
    "ApiClient",
    "AuditLogEntry",
    "Base",
    "ChatAttachment",
    "ChatItem",
    "ChatQuotaUse",
    "ChatThread",
    "ConversationExport",
    "ConversationExportThread",
    "ConversationReview",
    "DashboardSession",
    "DeliveryStatus",
    "DocumentStatus",
    "ErrorGroup",
    "ErrorGroupUser",
    "ErrorStatus",
    "ExportStatus",
    "Invitation",
    "KnowledgeBase",
    "KnowledgeDocument",
    "Membership",
    "Placement",
    "Role",
    "RollupPeriod",
    "SessionMint",
    "SigningKey",
    "Tenant",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookIdleMark",
    "WebhookTenantSlot",
    "Widget",
    "WidgetMcpSecret",
    "WidgetMode",
    "WidgetVersion",
]
