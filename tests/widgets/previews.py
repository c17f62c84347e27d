"""Preview keys made by hand, past ``POST …/widgets/{id}/preview``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.principals import Actor
from tests.factories import make_user


async def maker(db: AsyncSession) -> Actor:
    """Who asked for the key: a platform admin, who may edit every tenant's widgets (a
    preview's sessions and chat check that its maker still may)."""
    user = await make_user(db, platform_admin=True)
    return Actor("user", str(user.id))
