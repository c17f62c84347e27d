"""Invitations, members, API clients and accounts changed by requests at once: the app on
connections of its own (``tests.races``), so that each request is a transaction of its own
(at once on PostgreSQL; one after the other on SQLite, which runs one writer at a time).
What the tests commit is deleted after.

Probes found an invitation accepted by many at once answering 500 to all but one (the
account was created by each), a demotion answered 200 undone by the member accepting an
invitation as admin at that moment, invitations of one email at once all kept pending, a
revoked client's invitations left to accept, two tenants' invitations of one new email
accepted at once answering 500 to one (each created the account), two admins removing each
other at once both answered 204, and an admin's invitation made at the moment of their
removal left pending."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kithost import rls
from kithost.auth.oauth import issue_access_token
from kithost.auth.passwords import verify_password
from kithost.auth.principals import CLI, ClientPrincipal, TenantAccess, UserPrincipal
from kithost.auth.roles import ALL_SCOPES
from kithost.auth.scopes import Scope
from kithost.clients import service as clients
from kithost.clients.service import create_client
from kithost.errors import Forbidden, KithostError, NotFound, Unauthorized
from kithost.invitations import repository as invitation_rows
from kithost.invitations import service as invitations
from kithost.invitations.service import create_invitation
from kithost.kit.tokens import hash_secret
from kithost.members import service as members
from kithost.members.repository import MemberRow
from kithost.models import ApiClient, AuditLogEntry, Invitation, Membership, Role, Tenant, User
from kithost.settings import Settings
from kithost.tenants import service as tenants
from kithost.users.service import (
    NewUser,
    UserExists,
    create_user,
    get_or_create_user,
    sign_in_with_oidc,
)
from tests.api.helpers import token_of
from tests.conftest import state_of
from tests.factories import PASSWORD, Credentials, login
from tests.races import RacingApp, at_once, ended_or_waiting, racing_app

ACCEPT = "/api/v1/invitations/accept"
AT_ONCE = 8
T = TypeVar("T")
F = TypeVar("F")
S = TypeVar("S")


@pytest.fixture
async def race(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[RacingApp]:
    async with racing_app(settings, monkeypatch) as racing:
        yield racing


async def owned_tenant(race: RacingApp) -> tuple[Tenant, Credentials]:
    """A new tenant and its owner, signed in."""
    async with race.arranging() as session:
        tenant = await race.tenant(session)
    _, credentials = await new_member(race, tenant, Role.owner)
    return tenant, credentials


async def new_member(race: RacingApp, tenant: Tenant, role: Role) -> tuple[User, Credentials]:
    """A new member of ``tenant`` with ``role``, signed in."""
    async with race.arranging() as session:
        email = race.email(f"m-{secrets.token_hex(4)}")
        user = (await create_user(session, CLI, email, password=PASSWORD)).user
        session.add(Membership(tenant_id=tenant.id, user_id=user.id, role=role))
        credentials = await login(race.app, session, user)
    return user, credentials


async def invitation(race: RacingApp, tenant: Tenant, email: str, role: Role) -> str:
    """The token of a new invitation of ``email`` (made by the CLI)."""
    async with race.arranging() as session:
        settings = race.app.state.settings
        new = await create_invitation(
            session, settings, CLI, tenant, email=email, role=role, invited_by=None
        )
    return token_of(new.accept_url)


async def role_of(race: RacingApp, tenant: Tenant, email: str) -> Role | None:
    async with race.arranging() as session:
        result = await session.execute(
            select(Membership.role)
            .join(User, User.id == Membership.user_id)
            .where(Membership.tenant_id == tenant.id, User.email == email)
        )
        return result.scalar_one_or_none()


async def pending_of(race: RacingApp, tenant: Tenant, email: str) -> list[Invitation]:
    async with race.arranging() as session:
        result = await session.execute(
            select(Invitation).where(
                Invitation.tenant_id == tenant.id,
                Invitation.email == email,
                Invitation.accepted_at.is_(None),
            )
        )
        return list(result.scalars())


def problems(answers: Sequence[httpx2.Response]) -> list[tuple[int, str]]:
    return sorted((a.status_code, a.json().get("code", "")) for a in answers if a.is_error)


async def test_of_acceptances_at_once_that_create_the_account_one_does(race: RacingApp) -> None:
    """One invitation, accepted by many at once with a password: one account, one
    membership, and every other request is told the invitation was used (it was a 500: each
    request created the account, and all but one broke the unique email)."""
    tenant, _ = await owned_tenant(race)
    email = race.email("new")
    token = await invitation(race, tenant, email, Role.editor)

    await race.warm(AT_ONCE)

    async def accept(n: int) -> httpx2.Response:
        body = {"token": token, "password": PASSWORD, "name": f"n{n}"}
        return await race.client.post(ACCEPT, json=body)

    answers = await at_once(AT_ONCE, accept)

    assert [a.status_code for a in answers].count(200) == 1, problems(answers)
    assert problems(answers) == [(410, "invitation_used")] * (AT_ONCE - 1)
    async with race.arranging() as session:
        accounts = await session.scalar(select(func.count()).where(User.email == email))
        joined = await session.scalar(
            select(func.count())
            .select_from(Membership)
            .join(User, User.id == Membership.user_id)
            .where(User.email == email)
        )
    assert (accounts, joined) == (1, 1)
    assert await role_of(race, tenant, email) is Role.editor


async def test_a_demotion_at_once_with_an_acceptance_leaves_the_lower_role(race: RacingApp) -> None:
    """An editor accepts an invitation as admin while an owner makes them a viewer: once the
    demotion has answered 200 they are a viewer, whichever ran first (the acceptance used
    to win after the demotion: both answered 200 and the member was admin). The demotion
    withdraws the invitation (404) or comes after the acceptance and lowers its role."""
    tenant, owner = await owned_tenant(race)
    await race.warm(2)
    for _ in range(6):
        member, credentials = await new_member(race, tenant, Role.editor)
        token = await invitation(race, tenant, member.email, Role.admin)

        accepted, demoted = await asyncio.gather(
            race.client.post(ACCEPT, json={"token": token}, headers=credentials.headers),
            race.client.patch(
                f"/api/v1/tenants/{tenant.slug}/members/{member.id}",
                json={"role": "viewer"},
                headers=owner.headers,
            ),
        )

        assert demoted.status_code == 200, demoted.text
        assert accepted.status_code == 200 or problems([accepted]) == [
            (404, "invitation_not_found")
        ], accepted.text
        assert await role_of(race, tenant, member.email) is Role.viewer
        assert await pending_of(race, tenant, member.email) == []


async def test_invitations_of_one_email_at_once_leave_one_pending(race: RacingApp) -> None:
    """A new invitation replaces the pending ones of its email; many at once used to all
    stay pending, each link working."""
    tenant, owner = await owned_tenant(race)
    email = race.email("invited")

    await race.warm(AT_ONCE)

    async def invite(_: int) -> httpx2.Response:
        return await race.client.post(
            f"/api/v1/tenants/{tenant.slug}/invitations",
            json={"email": email, "role": "viewer"},
            headers=owner.headers,
        )

    answers = await at_once(AT_ONCE, invite)

    assert [a.status_code for a in answers] == [201] * AT_ONCE, problems(answers)
    [kept] = await pending_of(race, tenant, email)
    tokens = {hash_secret(token_of(a.json()["accept_url"])) for a in answers}
    assert kept.token_hash in tokens


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(race: RacingApp) -> None:
    """A change of role locks the tenant's owners before the member: two owners demoting
    each other wait for one another in turn (never a deadlock), and the second is refused:
    409 when its access was read before the first committed, else 403 (no longer an owner;
    SQLite runs the two one after the other)."""
    tenant, first = await owned_tenant(race)
    [first_id] = [m.user_id for m in await members_of(race, tenant)]
    second_user, second = await new_member(race, tenant, Role.owner)
    await race.warm(2)

    answers = await asyncio.gather(
        race.client.patch(
            f"/api/v1/tenants/{tenant.slug}/members/{second_user.id}",
            json={"role": "viewer"},
            headers=first.headers,
        ),
        race.client.patch(
            f"/api/v1/tenants/{tenant.slug}/members/{first_id}",
            json={"role": "viewer"},
            headers=second.headers,
        ),
    )

    assert [a.status_code for a in answers].count(200) == 1, [a.text for a in answers]
    assert problems(answers)[0] in {(409, "last_owner"), (403, "insufficient_scope")}
    assert [m.role for m in await members_of(race, tenant)].count(Role.owner) == 1


@pytest.mark.parametrize("change", ["remove", "demote"])
async def test_two_admins_removing_or_demoting_each_other_at_once_leave_one_admin(
    race: RacingApp, change: str
) -> None:
    """Each request's access is read before it waits for the other's locks: once it has
    them, the caller's role is read again, so the second is refused (404 once removed, 403
    once a viewer; SQLite runs the two one after the other). Both were answered 2xx and
    the tenant lost both admins."""
    tenant, _ = await owned_tenant(race)
    for _ in range(3):
        first, first_credentials = await new_member(race, tenant, Role.admin)
        second, second_credentials = await new_member(race, tenant, Role.admin)
        await race.warm(2)

        def change_of(user: User, credentials: Credentials) -> Awaitable[httpx2.Response]:
            url = f"/api/v1/tenants/{tenant.slug}/members/{user.id}"
            if change == "remove":
                return race.client.delete(url, headers=credentials.headers)
            return race.client.patch(url, json={"role": "viewer"}, headers=credentials.headers)

        answers = await asyncio.gather(
            change_of(second, first_credentials), change_of(first, second_credentials)
        )

        assert len([a for a in answers if a.is_success]) == 1, [a.text for a in answers]
        refused = (404, "tenant_not_found") if change == "remove" else (403, "insufficient_scope")
        assert problems(answers) == [refused]
        admins = [m.user_id for m in await members_of(race, tenant) if m.role is Role.admin]
        assert len(set(admins) & {first.id, second.id}) == 1


@pytest.mark.parametrize("change", ["remove", "demote"])
async def test_an_invitation_at_once_with_its_makers_removal_is_refused_or_withdrawn(
    race: RacingApp, change: str
) -> None:
    """An admin invites while an owner removes them or makes them an editor: the
    invitation is refused, or made and then withdrawn with their others; none is left
    pending (it was, most times on PostgreSQL: the admin's second account let back in)."""
    tenant, owner = await owned_tenant(race)
    for n in range(4):
        admin, credentials = await new_member(race, tenant, Role.admin)
        email = race.email(f"second-{n}")
        url = f"/api/v1/tenants/{tenant.slug}/members/{admin.id}"
        await race.warm(2)

        invited, changed = await asyncio.gather(
            race.client.post(
                f"/api/v1/tenants/{tenant.slug}/invitations",
                json={"email": email, "role": "admin"},
                headers=credentials.headers,
            ),
            race.client.delete(url, headers=owner.headers)
            if change == "remove"
            else race.client.patch(url, json={"role": "editor"}, headers=owner.headers),
        )

        assert changed.is_success, changed.text
        assert invited.status_code in {201, 403, 404}, invited.text
        assert await pending_of(race, tenant, email) == []


async def in_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    """The tenant, with ``session``'s unit of work set to it (row-level security)."""
    await rls.set_tenant(session, tenant_id)
    return await session.get_one(Tenant, tenant_id)


def as_owner(tenant: Tenant, owner_id: uuid.UUID) -> TenantAccess:
    """An owner's access to ``tenant``, as a request of theirs would have it."""
    owner = UserPrincipal(User(id=owner_id, email="owner@race.test"), uuid.uuid4())
    return TenantAccess(tenant, owner, ALL_SCOPES, Role.owner)


async def members_of(race: RacingApp, tenant: Tenant) -> list[Membership]:
    async with race.arranging() as session:
        result = await session.execute(select(Membership).where(Membership.tenant_id == tenant.id))
        return list(result.scalars())


# Both orders, made so: two units of work on the app's connections, the second started
# while the first holds its locks (PostgreSQL: SQLite never runs two writers at once).


@dataclass
class Demotion:
    """An owner's demotion of an editor, and the editor's acceptance of an invitation as
    admin, each a unit of work of its own."""

    race: RacingApp
    tenant: Tenant
    owner_id: uuid.UUID
    member: User
    token: str

    def demote(self, session: AsyncSession) -> Coroutine[Any, Any, MemberRow]:
        async def demote() -> MemberRow:
            access = as_owner(await in_tenant(session, self.tenant.id), self.owner_id)
            return await members.change_role(session, access, self.member.id, Role.viewer)

        return demote()

    def accept(self, session: AsyncSession) -> Coroutine[Any, Any, invitations.Acceptance]:
        principal = UserPrincipal(self.member, uuid.uuid4())
        return invitations.accept(session, principal, self.token, password=None, name="")


@pytest.fixture
async def demotion(race: RacingApp, engine: AsyncEngine) -> Demotion:
    if engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent write transactions")
    tenant, _ = await owned_tenant(race)
    [owner_id] = [m.user_id for m in await members_of(race, tenant)]
    member, _ = await new_member(race, tenant, Role.editor)
    token = await invitation(race, tenant, member.email, Role.admin)
    return Demotion(race, tenant, owner_id, member, token)


async def in_turn(
    race: RacingApp,
    first: Callable[[AsyncSession], Coroutine[Any, Any, F]],
    second: Callable[[AsyncSession], Coroutine[Any, Any, S]],
) -> tuple[F, S | Exception]:
    """``first`` in a unit of work, then ``second`` in another, started while the first
    holds its locks: it must wait for them (PostgreSQL). What ``first`` returned, and what
    ``second`` returned (then committed) or raised once the first committed."""
    sessions = state_of(race.app).sessionmaker
    async with sessions() as one, sessions() as other:
        done = await first(one)
        task = asyncio.create_task(second(other))
        await asyncio.sleep(0.3)
        assert not task.done(), "the second unit of work waits for the first's locks"
        await one.commit()
        try:
            outcome = await task
        except Exception as exc:  # what it raised is what is checked
            return done, exc
        await other.commit()
    return done, outcome


def returned(outcome: S | Exception) -> S:
    """What a unit of work of :func:`in_turn` returned; what it raised, raised again."""
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def refused(outcome: object, *kinds: type[KithostError]) -> KithostError:
    """The error of one of ``kinds`` a unit of work of :func:`in_turn` raised."""
    assert isinstance(outcome, kinds), outcome
    return outcome


async def test_an_acceptance_after_the_demotion_finds_the_invitation_withdrawn(
    demotion: Demotion,
) -> None:
    _, accepted = await in_turn(demotion.race, demotion.demote, demotion.accept)
    assert refused(accepted, NotFound).code == "invitation_not_found"
    assert await role_of(demotion.race, demotion.tenant, demotion.member.email) is Role.viewer


async def test_a_demotion_after_the_acceptance_lowers_the_role_it_gave(
    demotion: Demotion,
) -> None:
    accepted, demoted = await in_turn(demotion.race, demotion.accept, demotion.demote)
    assert accepted.role is Role.admin
    assert returned(demoted).role is Role.viewer
    assert await role_of(demotion.race, demotion.tenant, demotion.member.email) is Role.viewer


# An API client's invitations and its revocation (a probe: a revoked client's pending admin
# invitation was accepted). The revocation locks the client, then withdraws what it made;
# an invitation by a client locks it for share first: one waits for the other.


@dataclass
class Revocation:
    """A client of the tenant with every scope, made by the CLI, and its revocation by an
    owner, each a unit of work of its own."""

    race: RacingApp
    tenant: Tenant
    owner_id: uuid.UUID
    client: ApiClient

    def revoke(self, session: AsyncSession) -> Coroutine[Any, Any, None]:
        async def revoke() -> None:
            access = as_owner(await in_tenant(session, self.tenant.id), self.owner_id)
            await clients.revoke_client(session, access, self.client.id)

        return revoke()

    def invite(self, session: AsyncSession) -> Coroutine[Any, Any, invitations.NewInvitation]:
        async def invite() -> invitations.NewInvitation:
            access = await acting_as(session, self.tenant.id, self.client)
            settings = self.race.app.state.settings
            email = self.race.email("alt")
            return await invitations.invite(session, settings, access, email=email, role=Role.admin)

        return invite()

    async def pending(self) -> list[Invitation]:
        async with self.race.arranging() as session:
            result = await session.execute(
                select(Invitation).where(
                    Invitation.tenant_id == self.tenant.id, Invitation.accepted_at.is_(None)
                )
            )
            return list(result.scalars())


async def a_client(race: RacingApp) -> Revocation:
    tenant, _ = await owned_tenant(race)
    [owner_id] = [m.user_id for m in await members_of(race, tenant)]
    return Revocation(race, tenant, owner_id, await client_of(race, tenant, "leaked"))


async def client_of(race: RacingApp, tenant: Tenant, name: str) -> ApiClient:
    """A new API client of ``tenant`` holding every scope, made by the CLI."""
    async with race.arranging() as session:
        new = await create_client(session, CLI, tenant, name=name, scopes=sorted(ALL_SCOPES))
    return new.client


async def acting_as(
    session: AsyncSession, tenant_id: uuid.UUID, who: User | ApiClient
) -> TenantAccess:
    """The access of an admin ``who``, or of a client ``who`` holding every scope, as their
    request would have it, with ``session``'s unit of work set to the tenant."""
    tenant = await in_tenant(session, tenant_id)
    if isinstance(who, User):
        return TenantAccess(tenant, UserPrincipal(who, uuid.uuid4()), ALL_SCOPES, Role.admin)
    client = await session.get_one(ApiClient, who.id)
    return TenantAccess(tenant, ClientPrincipal(client, ALL_SCOPES), ALL_SCOPES, None)


@pytest.fixture
async def revocation(race: RacingApp, engine: AsyncEngine) -> Revocation:
    if engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent write transactions")
    return await a_client(race)


async def test_an_invitation_by_a_client_being_revoked_is_refused(
    revocation: Revocation,
) -> None:
    """The client's request was let in before the revocation committed: once it has, the
    invitation is refused, not made after the withdrawal and left pending."""
    _, invited = await in_turn(revocation.race, revocation.revoke, revocation.invite)
    assert refused(invited, Unauthorized).code == "invalid_token"
    assert await revocation.pending() == []


async def test_a_revocation_after_an_invitation_by_the_client_withdraws_it(
    revocation: Revocation,
) -> None:
    _, revoked = await in_turn(revocation.race, revocation.invite, revocation.revoke)
    returned(revoked)
    assert await revocation.pending() == []


async def test_invitations_by_a_client_at_once_with_its_revocation_leave_none(
    race: RacingApp,
) -> None:
    """Over HTTP, on both databases: a client inviting while an owner revokes it. Each
    invitation is made (and then withdrawn) or refused; none is left pending."""
    revocation = await a_client(race)
    _, owner = await new_member(race, revocation.tenant, Role.owner)
    async with race.arranging() as session:
        state = state_of(race.app)
        token = await issue_access_token(
            session, state.settings, state.secret_box, revocation.client, ALL_SCOPES
        )
    slug = revocation.tenant.slug
    bearer = {"Authorization": f"Bearer {token}"}
    await race.warm(AT_ONCE + 1)

    *made, revoked = await asyncio.gather(
        *(
            race.client.post(
                f"/api/v1/tenants/{slug}/invitations",
                json={"email": race.email(f"alt{n}"), "role": "admin"},
                headers=bearer,
            )
            for n in range(AT_ONCE)
        ),
        race.client.delete(
            f"/api/v1/tenants/{slug}/clients/{revocation.client.id}", headers=owner.headers
        ),
    )

    assert revoked.status_code == 204, revoked.text
    assert {a.status_code for a in made} <= {201, 401}, problems(made)
    assert await revocation.pending() == []


# An API client made by its maker at the moment of the maker's removal (a member) or
# revocation (a client): a probe found it made unnamed by the removal's ``clients_kept``
# (the removal read the maker's clients before the creation committed), a working
# credential of someone removed that the audit log never pointed at.


@dataclass
class Making:
    """A maker of the tenant (an admin, or a client holding every scope), the maker's
    removal or revocation by an owner, and a client the maker makes, each a unit of work
    of its own."""

    race: RacingApp
    tenant: Tenant
    owner_id: uuid.UUID
    maker: User | ApiClient

    def remove(self, session: AsyncSession) -> Coroutine[Any, Any, None]:
        async def remove() -> None:
            access = as_owner(await in_tenant(session, self.tenant.id), self.owner_id)
            if isinstance(self.maker, User):
                await members.remove_member(session, access, self.maker.id)
            else:
                await clients.revoke_client(session, access, self.maker.id)

        return remove()

    def make(self, session: AsyncSession) -> Coroutine[Any, Any, clients.NewClient]:
        async def make() -> clients.NewClient:
            access = await acting_as(session, self.tenant.id, self.maker)
            return await clients.register_client(
                session, access, name="made", scopes=sorted(ALL_SCOPES)
            )

        return make()

    async def kept(self) -> list[str]:
        """What the audit entry of the maker's removal or revocation names as kept."""
        async with self.race.arranging() as session:
            data = await session.scalar(
                select(AuditLogEntry.data).where(
                    AuditLogEntry.tenant_id == self.tenant.id,
                    AuditLogEntry.action.in_(["member.removed", "client.revoked"]),
                )
            )
        assert data is not None
        return list(data.get("clients_kept", []))

    async def made(self) -> list[ApiClient]:
        async with self.race.arranging() as session:
            result = await session.execute(
                select(ApiClient).where(
                    ApiClient.tenant_id == self.tenant.id, ApiClient.name == "made"
                )
            )
            return list(result.scalars())


@pytest.fixture(params=["member", "client"])
async def making(request: pytest.FixtureRequest, race: RacingApp, engine: AsyncEngine) -> Making:
    if engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent write transactions")
    maker: User | ApiClient
    if request.param == "client":
        revocation = await a_client(race)
        tenant, maker = revocation.tenant, revocation.client
    else:
        tenant, _ = await owned_tenant(race)
        maker, _ = await new_member(race, tenant, Role.admin)
    [owner_id] = [m.user_id for m in await members_of(race, tenant) if m.role is Role.owner]
    return Making(race, tenant, owner_id, maker)


async def test_a_client_made_by_someone_being_removed_is_refused(making: Making) -> None:
    _, made = await in_turn(making.race, making.remove, making.make)
    refused(made, NotFound, Unauthorized)
    assert await making.made() == []


async def test_a_removal_after_its_maker_made_a_client_names_it(making: Making) -> None:
    new, removed = await in_turn(making.race, making.make, making.remove)
    returned(removed)
    assert await making.kept() == [new.client.client_id]


# What an admin or a client does in the tenant at the moment an owner removes or demotes
# the admin, or revokes the client (a probe: an admin removed at that moment still revoked
# an API client, cancelled an invitation and renamed the tenant, their access read before
# the removal committed).

ACTS = ["revoke_client", "revoke_invitation", "rename"]
REFUSED: dict[str, tuple[type[KithostError], str]] = {
    "remove": (NotFound, "tenant_not_found"),
    "demote": (Forbidden, "insufficient_scope"),
    "revoke": (Unauthorized, "invalid_token"),
}


@dataclass
class Standing:
    """An admin (``change``: removed or demoted to editor) or a client holding every scope
    (revoked), acting in the tenant: revoking a client, cancelling an invitation, renaming
    the tenant. The change and the act are units of work of their own."""

    race: RacingApp
    tenant: Tenant
    owner_id: uuid.UUID
    how: str
    caller: User | ApiClient
    client: ApiClient
    invitation_id: uuid.UUID

    async def change(self, session: AsyncSession) -> None:
        access = as_owner(await in_tenant(session, self.tenant.id), self.owner_id)
        if isinstance(self.caller, ApiClient):
            await clients.revoke_client(session, access, self.caller.id)
        elif self.how == "remove":
            await members.remove_member(session, access, self.caller.id)
        else:
            await members.change_role(session, access, self.caller.id, Role.editor)

    def act(self, act: str) -> Callable[[AsyncSession], Coroutine[Any, Any, None]]:
        async def acting(session: AsyncSession) -> None:
            access = await acting_as(session, self.tenant.id, self.caller)
            if act == "revoke_client":
                await clients.revoke_client(session, access, self.client.id)
            elif act == "revoke_invitation":
                await invitations.revoke(session, access, self.invitation_id)
            else:
                await tenants.rename_tenant(session, access, "Renamed")

        return acting

    async def done(self) -> set[str]:
        """What of :data:`ACTS` the tenant shows done."""
        async with self.race.arranging() as session:
            client = await session.get_one(ApiClient, self.client.id)
            invitation = await session.get(Invitation, self.invitation_id)
            tenant = await session.get_one(Tenant, self.tenant.id)
        done = {
            "revoke_client": client.revoked_at is not None,
            "revoke_invitation": invitation is None,
            "rename": tenant.name == "Renamed",
        }
        return {act for act, is_done in done.items() if is_done}


def by_id(client: ApiClient) -> uuid.UUID:
    return client.id


@pytest.fixture(params=list(REFUSED))
async def standing(
    request: pytest.FixtureRequest, race: RacingApp, engine: AsyncEngine
) -> Standing:
    if engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent write transactions")
    tenant, _ = await owned_tenant(race)
    [owner_id] = [m.user_id for m in await members_of(race, tenant)]
    caller: User | ApiClient
    target = await client_of(race, tenant, "target")
    if request.param == "revoke":
        # The caller's id first: a client revoking one locks the two in the order of their
        # ids, so the caller is held first, as by what it does otherwise.
        caller, target = sorted([await client_of(race, tenant, "caller"), target], key=by_id)
    else:
        caller, _ = await new_member(race, tenant, Role.admin)
    email = race.email("invited")
    await invitation(race, tenant, email, Role.viewer)
    [pending] = await pending_of(race, tenant, email)
    return Standing(race, tenant, owner_id, request.param, caller, target, pending.id)


@pytest.mark.parametrize("act", ACTS)
async def test_what_an_admin_or_client_does_as_it_loses_access_is_refused(
    standing: Standing, act: str
) -> None:
    _, acted = await in_turn(standing.race, standing.change, standing.act(act))
    kind, code = REFUSED[standing.how]
    assert refused(acted, kind).code == code
    assert await standing.done() == set()


@pytest.mark.parametrize("act", ACTS)
async def test_a_loss_of_access_waits_for_what_the_admin_or_client_does(
    standing: Standing, act: str
) -> None:
    _, changed = await in_turn(standing.race, standing.act(act), standing.change)
    returned(changed)
    assert await standing.done() == {act}


async def test_two_clients_revoking_each_other_at_once_leave_one(race: RacingApp) -> None:
    """Each revocation holds its caller unrevoked and locks the client it revokes: they
    lock the two in one order (the clients' ids), so the second waits for the first, then
    finds its own client revoked (401), never a deadlock (503) nor both revoked."""
    tenant, _ = await owned_tenant(race)
    state = state_of(race.app)
    for _ in range(3):
        pair = [await client_of(race, tenant, f"pair-{n}") for n in range(2)]
        bearers = []
        async with race.arranging() as session:
            for client in pair:
                token = await issue_access_token(
                    session, state.settings, state.secret_box, client, ALL_SCOPES
                )
                bearers.append({"Authorization": f"Bearer {token}"})
        await race.warm(2)

        answers = await asyncio.gather(
            *(
                race.client.delete(
                    f"/api/v1/tenants/{tenant.slug}/clients/{other.id}", headers=bearer
                )
                for bearer, other in zip(bearers, reversed(pair), strict=True)
            )
        )

        assert sorted(a.status_code for a in answers) == [204, 401], problems(answers)
        assert problems(answers) == [(401, "invalid_token")]
        async with race.arranging() as session:
            revoked = [(await session.get_one(ApiClient, c.id)).revoked_at for c in pair]
        assert [r is None for r in revoked].count(True) == 1


async def test_renames_at_once_each_record_the_name_they_replace(race: RacingApp) -> None:
    """Each rename reads the name it replaces once the tenant's row is its own: the audit
    entries chain (every ``from`` is the name before, each once), where all said the name
    read when the requests began."""
    tenant, owner = await owned_tenant(race)
    await race.warm(AT_ONCE)

    async def rename(n: int) -> httpx2.Response:
        body = {"name": f"Name {n}"}
        return await race.client.patch(
            f"/api/v1/tenants/{tenant.slug}", json=body, headers=owner.headers
        )

    answers = await at_once(AT_ONCE, rename)

    assert [a.status_code for a in answers] == [200] * AT_ONCE, problems(answers)
    async with race.arranging() as session:
        renamed = await session.scalars(
            select(AuditLogEntry.data).where(
                AuditLogEntry.tenant_id == tenant.id, AuditLogEntry.action == "tenant.renamed"
            )
        )
        changes = [(data["from"], data["to"]) for data in renamed]
        final = (await session.get_one(Tenant, tenant.id)).name
    froms, tos = [f for f, _ in changes], [t for _, t in changes]
    assert len(changes) == AT_ONCE
    assert len(set(froms)) == AT_ONCE, changes
    assert set(froms) == {tenant.name} | set(tos) - {final}, changes


# A tenant deleted by an owner at the moment another owner demotes or removes them (a probe:
# the deletion read the owner's role before the change committed, and deleted the tenant).


@pytest.mark.parametrize("change", ["remove", "demote"])
async def test_an_owner_demoted_or_removed_while_deleting_the_tenant_is_refused(
    race: RacingApp, engine: AsyncEngine, change: str
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent write transactions")
    tenant, _ = await owned_tenant(race)
    [first] = [m.user_id for m in await members_of(race, tenant)]
    second, _ = await new_member(race, tenant, Role.owner)

    async def change_second(session: AsyncSession) -> None:
        access = as_owner(await in_tenant(session, tenant.id), first)
        if change == "remove":
            await members.remove_member(session, access, second.id)
        else:
            await members.change_role(session, access, second.id, Role.admin)

    async def delete(session: AsyncSession) -> None:
        access = as_owner(await in_tenant(session, tenant.id), second.id)
        await tenants.delete_tenant(session, access, tenant.slug)

    _, deleted = await in_turn(race, change_second, delete)
    refused(deleted, NotFound, Forbidden)
    async with race.arranging() as session:
        assert await session.get(Tenant, tenant.id) is not None


# What an admin or a client does while an owner deletes the tenant (a probe: the act held
# its maker, the deletion took the tenant's row and then waited for the maker's row to
# cascade, while the act waited for the tenant's row to write: a deadlock, 503).


@pytest.mark.parametrize("standing", ["remove", "revoke"], indirect=True)
@pytest.mark.parametrize("act", ["invite", "make_client", *ACTS])
async def test_what_is_done_beside_the_tenants_deletion_never_deadlocks(
    standing: Standing, act: str
) -> None:
    """The act holds its maker first (``members.access_now``); the deletion, started then,
    waits for it before it takes the tenant's row, and deletes the tenant after it."""
    race = standing.race
    sessions = state_of(race.app).sessionmaker
    async with sessions() as acting, sessions() as deleting:
        access = await acting_as(acting, standing.tenant.id, standing.caller)
        await members.access_now(acting, access, Scope.members_write)

        async def delete() -> None:
            access = as_owner(await in_tenant(deleting, standing.tenant.id), standing.owner_id)
            await tenants.delete_tenant(deleting, access, standing.tenant.slug)

        deleted = asyncio.create_task(delete())
        await ended_or_waiting(race, deleted)
        assert not deleted.done()
        if act == "invite":
            email = race.email("beside")
            await invitations.invite(
                acting, race.app.state.settings, access, email=email, role=Role.viewer
            )
        elif act == "make_client":
            await clients.register_client(
                acting, access, name="beside", scopes=[Scope.widgets_read]
            )
        else:
            await standing.act(act)(acting)
        await acting.commit()
        await deleted
        await deleting.commit()
    async with race.arranging() as session:
        assert await session.get(Tenant, standing.tenant.id) is None


async def test_an_acceptance_beside_the_tenants_deletion_never_deadlocks(
    race: RacingApp, engine: AsyncEngine
) -> None:
    """The acceptance locks the invitation first; the deletion, started then, waits for it
    before it takes the tenant's row (it cascaded into the invitation while the acceptance
    waited for the tenant's row to add the member: a deadlock)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent write transactions")
    tenant, _ = await owned_tenant(race)
    [owner_id] = [m.user_id for m in await members_of(race, tenant)]
    async with race.arranging() as session:
        user = (await create_user(session, CLI, race.email("joiner"), password=PASSWORD)).user
    token = await invitation(race, tenant, user.email, Role.editor)
    sessions = state_of(race.app).sessionmaker
    async with sessions() as accepting, sessions() as deleting:
        await in_tenant(accepting, tenant.id)
        [pending] = await pending_of(race, tenant, user.email)
        await invitation_rows.lock(accepting, pending.id)

        async def delete() -> None:
            access = as_owner(await in_tenant(deleting, tenant.id), owner_id)
            await tenants.delete_tenant(deleting, access, tenant.slug)

        deleted = asyncio.create_task(delete())
        await ended_or_waiting(race, deleted)
        assert not deleted.done()
        principal = UserPrincipal(user, uuid.uuid4())
        accepted = await invitations.accept(accepting, principal, token, password=None, name="")
        assert accepted.role is Role.editor
        await accepting.commit()
        await deleted
        await deleting.commit()
    async with race.arranging() as session:
        assert await session.get(Tenant, tenant.id) is None


# One account made by requests at once (a probe: two tenants' invitations of one new email,
# accepted at once, both created the account and one answered 500 on the unique email).


async def test_invitations_of_one_new_email_accepted_at_once_make_one_account(
    race: RacingApp,
) -> None:
    """Several tenants invite the same new email and each invitation is accepted at once
    with a password: one creates the account and joins; the others are answered as they
    would be a moment later, 401: sign in as that account to accept (they joined it with a
    password it does not have, or answered 500). Their invitations stay pending."""
    email = race.email("new")
    tenants = [(await owned_tenant(race))[0] for _ in range(4)]
    tokens = [await invitation(race, tenant, email, Role.editor) for tenant in tenants]
    passwords = [f"{PASSWORD}-{n}" for n in range(len(tokens))]

    await race.warm(len(tokens))

    async def accept(n: int) -> httpx2.Response:
        return await race.client.post(ACCEPT, json={"token": tokens[n], "password": passwords[n]})

    answers = await at_once(len(tokens), accept)

    assert [a.status_code for a in answers].count(200) == 1, problems(answers)
    assert problems(answers) == [(401, "unauthenticated")] * (len(tokens) - 1)
    [won] = [n for n, a in enumerate(answers) if a.status_code == 200]
    async with race.arranging() as session:
        [user] = (await session.execute(select(User).where(User.email == email))).scalars()
        assert verify_password(user.password_hash, passwords[won])
    roles = [await role_of(race, tenant, email) for tenant in tenants]
    assert roles == [Role.editor if n == won else None for n in range(len(tenants))]
    pending = [len(await pending_of(race, tenant, email)) for tenant in tenants]
    assert pending == [0 if n == won else 1 for n in range(len(tenants))]


@dataclass
class Creation:
    """A new account of one email, made by two units of work on the app's connections: the
    second starts while the first holds the email (inserted, not committed)."""

    race: RacingApp
    email: str

    async def first(self, session: AsyncSession) -> User:
        return (await create_user(session, CLI, self.email, password=PASSWORD)).user

    async def second(
        self, make: Callable[[AsyncSession], Coroutine[Any, Any, T]]
    ) -> tuple[User, T | Exception]:
        """What ``make`` did in the second unit of work, once the first committed; the user
        the first made."""
        return await in_turn(self.race, self.first, make)

    async def accounts(self) -> int:
        async with self.race.arranging() as session:
            found = await session.scalar(select(func.count()).where(User.email == self.email))
            return found or 0


@pytest.fixture
async def creation(race: RacingApp, engine: AsyncEngine) -> Creation:
    if engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent write transactions")
    return Creation(race, race.email("new"))


async def test_a_user_created_at_once_with_another_is_409(creation: Creation) -> None:
    """``kithost user create`` twice at once: the second is told the user exists."""
    _, outcome = await creation.second(
        lambda session: create_user(session, CLI, creation.email, password=PASSWORD)
    )
    assert isinstance(outcome, UserExists)
    assert (outcome.status, outcome.code) == (409, "user_exists")
    assert await creation.accounts() == 1


async def test_get_or_create_at_once_with_a_creation_gets_that_user(creation: Creation) -> None:
    """``kithost tenant create`` for a new owner email while the account is being made."""
    made, outcome = await creation.second(
        lambda session: get_or_create_user(session, CLI, creation.email)
    )
    assert isinstance(outcome, NewUser)
    assert (outcome.user.id, outcome.password) == (made.id, None)
    assert await creation.accounts() == 1


async def test_a_first_oidc_sign_in_at_once_with_another_gets_that_user(
    creation: Creation,
) -> None:
    made, outcome = await creation.second(
        lambda session: sign_in_with_oidc(session, creation.email, "New", allow_signup=True)
    )
    assert isinstance(outcome, User)
    assert outcome.id == made.id
    assert await creation.accounts() == 1


async def test_an_acceptance_at_once_with_the_accounts_creation_asks_to_sign_in(
    creation: Creation,
) -> None:
    tenant, _ = await owned_tenant(creation.race)
    token = await invitation(creation.race, tenant, creation.email, Role.editor)
    _, outcome = await creation.second(
        lambda session: invitations.accept(session, None, token, password=PASSWORD, name="")
    )
    assert isinstance(outcome, Unauthorized)
    assert outcome.code == "unauthenticated"
    assert await creation.accounts() == 1
    assert await role_of(creation.race, tenant, creation.email) is None
