from __future__ import annotations

from pydantic import AnyHttpUrl, Field

from kithost.kit.schemas import Schema


class OpenAIKey(Schema):
    """Whether the tenant has an OpenAI API key, and its last four characters; the key
    itself is never shown again."""

    configured: bool
    last4: str | None


class OpenAIKeyUpdate(Schema):
    api_key: str = Field(
        min_length=20,
        max_length=300,
        pattern=r"^[!-~]+$",
        description="Printable ASCII without whitespace, as OpenAI's keys (`sk-…`) are.",
    )


class ModelKey(Schema):
    """That the widget has a model key, and the endpoint it is for; the key itself is never
    shown again."""

    has_model_key: bool
    base_url: str | None = Field(
        description="The endpoint the key is sent to, and only there: the `agent.base_url` "
        "it was set for (null: the operator's endpoint, for an agent without one)."
    )
    revision: int = Field(description="The widget's revision (its ETag) after the change.")


class ModelKeyUpdate(Schema):
    api_key: str = Field(
        min_length=1,
        max_length=500,
        pattern=r"^[!-~]+$",
        description="The API key of the endpoint `base_url` names: printable ASCII without "
        "whitespace.",
    )
    base_url: AnyHttpUrl | None = Field(
        default=None,
        description="The endpoint the key is for; left out or null: the one the draft's "
        "`agent.base_url` names (none: the operator's). The key is sent only there: a config "
        "naming another endpoint is refused when saved or published (422 "
        "`model_key_required`) and gets no key if it runs. Name a new endpoint here before "
        "saving it in the draft.",
    )


class IdentitySecret(Schema):
    """A widget's new identity secret: shown this once, Kithost keeps it encrypted."""

    identity_secret: str
    revision: int = Field(description="The widget's revision (its ETag) after the change.")


class ToolSecret(Schema):
    """A widget's new tool secret (signs its ``http`` tools' calls): shown this once."""

    tool_secret: str
    revision: int = Field(description="The widget's revision (its ETag) after the change.")
