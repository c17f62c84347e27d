"""A hosted widget (an Agent Builder workflow, which OpenAI shut down on 2026-11-30) turned
into a self-hosted one: what carries over to ChatKit's self-hosted options, and what does
not (with what to do instead). Pure: the service writes the result into the draft."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from kithost.models import WidgetMode
from kithost.widgets.config import WidgetConfig

MEGABYTE = 1024 * 1024


@dataclass(frozen=True)
class NotCarried:
    setting: str
    instead: str
    """What to do instead."""


@dataclass
class Conversion:
    config: WidgetConfig
    carried: list[str] = field(default_factory=list)
    not_carried: list[NotCarried] = field(default_factory=list)


def convert(config: WidgetConfig, max_attachment_bytes: int) -> Conversion:
    """``config`` (hosted) as a self-hosted configuration; ChatKit options, the launcher,
    actions, placement and identity settings stay as they are. Files larger than
    ``max_attachment_bytes`` (the deployment's cap) are refused, so the size ChatKit offers
    is capped there too, and said."""
    hosted = config.hosted
    assert hosted is not None  # a hosted configuration has one (WidgetConfig checks)
    chatkit: dict[str, Any] = copy.deepcopy(config.chatkit)
    result = Conversion(config)
    options = hosted.chatkit_configuration
    if options.history is not None:
        chatkit["history"] = {**chatkit.get("history", {}), "enabled": options.history.enabled}
        result.carried.append("chatkit_configuration.history.enabled → chatkit.history.enabled")
        if options.history.recent_threads is not None:
            result.not_carried.append(
                NotCarried(
                    "chatkit_configuration.history.recent_threads",
                    "The self-hosted history lists every thread of the end user, newest first.",
                )
            )
    if options.file_upload is not None:
        upload = options.file_upload
        attachments: dict[str, Any] = {"enabled": upload.enabled}
        if upload.max_files is not None:
            attachments["maxCount"] = upload.max_files
        if upload.max_file_size is not None:
            attachments["maxSize"] = {
                "*": min(upload.max_file_size * MEGABYTE, max_attachment_bytes)
            }
            if upload.max_file_size * MEGABYTE > max_attachment_bytes:
                result.not_carried.append(
                    NotCarried(
                        f"chatkit_configuration.file_upload.max_file_size: {upload.max_file_size}",
                        f"Kithost takes files of at most {max_attachment_bytes} bytes here "
                        "(the operator's KITHOST_CHAT_ATTACHMENT_MAX_BYTES).",
                    )
                )
        composer = chatkit.setdefault("composer", {})
        composer["attachments"] = {**composer.get("attachments", {}), **attachments}
        result.carried.append("chatkit_configuration.file_upload → chatkit.composer.attachments")
    if options.automatic_thread_titling is not None:
        if options.automatic_thread_titling.enabled:
            result.carried.append(
                "chatkit_configuration.automatic_thread_titling (threads are titled from "
                "their first message)"
            )
        else:
            result.not_carried.append(
                NotCarried(
                    "chatkit_configuration.automatic_thread_titling.enabled: false",
                    "Self-hosted threads are always titled from their first message.",
                )
            )
    if hosted.state_variables:
        result.carried.append(
            "state_variables → the page context (kithost('setContext', …)) reaches the agent "
            "with every answer"
        )
    result.not_carried.append(
        NotCarried(
            f"workflow {hosted.workflow_id}",
            "Give the agent the workflow's instructions, model and tools in agent (its "
            "exported code can be imported), then publish.",
        )
    )
    result.not_carried.append(
        NotCarried(
            "expires_after_seconds",
            "Self-hosted sessions refresh for KITHOST_SESSION_MAX_AGE_HOURS after the first.",
        )
    )
    if hosted.max_requests_per_minute is not None:
        result.not_carried.append(
            NotCarried(
                "max_requests_per_minute",
                "Limit each end user with agent.messages_per_user_per_day.",
            )
        )
    result.config = config.model_copy(
        update={"mode": WidgetMode.self_hosted, "hosted": None, "chatkit": chatkit}
    )
    return result
