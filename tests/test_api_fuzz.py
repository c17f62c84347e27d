"""schemathesis over the whole OpenAPI document, in-process: for every operation, as the
owner (dashboard session), as an API client with every scope and as nobody, a bounded
number of generated requests, valid and not. None may answer 5xx, and every answer must
match what the document says of it (status, content type, schema, ``Allow`` on 405).

Not checked: that every schema-valid request is accepted (``positive_data_acceptance``):
Kithost refuses more than a JSON Schema can say (NUL characters anywhere, emails that do
not parse, a tenant's own rules), always with a 4xx problem.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from schemathesis.generation.case import Case

from kithost import migrate
from kithost.app import create_app
from kithost.auth import cookies
from kithost.auth.oauth import issue_access_token
from kithost.auth.principals import CLI
from kithost.auth.scopes import Scope
from kithost.clients.service import create_client
from kithost.db import create_engine, create_sessionmaker, session_scope
from kithost.kit.crypto import SecretBox
from kithost.settings import Settings
from kithost.tenants.service import create_tenant
from kithost.users.service import create_user
from kithost.worker.app import create_celery
from kithost.worker.enqueue import PendingTasks

TENANT = "acme"
EXAMPLES = 5
UNCHECKED = [schemathesis.checks.positive_data_acceptance]


async def _credentials(app_settings: Settings) -> dict[str, dict[str, str]]:
    """Tenant ``acme``: its owner's session and an API client's token with every scope."""
    engine = create_engine(app_settings.database)
    async with session_scope(
        create_sessionmaker(engine, PendingTasks(create_celery(app_settings)))
    ) as db:
        owner = await create_user(db, CLI, "owner@acme.example", password="a long password")
        tenant = await create_tenant(db, CLI, slug=TENANT, name="Acme", owner=owner.user)
        signed_in = await cookies.sign_in(
            db, app_settings, owner.user, replacing=None, ip=None, user_agent=""
        )
        client = await create_client(db, CLI, tenant, name="fuzz", scopes=list(Scope))
        box = SecretBox(app_settings.keys())
        token = await issue_access_token(db, app_settings, box, client.client, list(Scope))
    await engine.dispose()
    return {
        "owner": {
            "Cookie": f"{cookies.SIGN_IN_COOKIE}={signed_in.value}",
            cookies.CSRF_HEADER: signed_in.csrf_token,
        },
        "client": {"Authorization": f"Bearer {token}"},
        "anonymous": {},
    }


@pytest.fixture(scope="module")
def kithost(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, dict[str, str]]]:
    data: Path = tmp_path_factory.mktemp("fuzz")
    app_settings = Settings(
        data_dir=data, database_url=f"sqlite+aiosqlite:///{data}/kithost.db", secret_key="fuzz"
    )
    migrate.upgrade(app_settings)
    return app_settings, asyncio.run(_credentials(app_settings))


def test_no_operation_fails_or_breaks_its_contract(
    kithost: tuple[Settings, dict[str, dict[str, str]]],
) -> None:
    app_settings, principals = kithost
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(app_settings))
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) > 90

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: Case[Any]) -> None:
            if case.path_parameters and "tenant" in case.path_parameters:
                case.path_parameters["tenant"] = TENANT
            for headers in principals.values():
                response = case.call(headers=headers)
                case.validate_response(response, excluded_checks=UNCHECKED)

        fuzz()
