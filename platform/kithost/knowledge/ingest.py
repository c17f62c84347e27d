"""OpenAI's side of knowledge bases, run by the tasks: a document's bytes become a file in
the base's vector store (made on first use), and removed documents leave OpenAI too.

Every step is idempotent (workers acknowledge late; a task may run twice): what OpenAI
returned is written down as soon as it exists (``vector_store_id``, ``file_id``) and a
step already done is skipped. No transaction stays open across a call to OpenAI.

A vector store OpenAI no longer holds (deleted there, or out of the key's reach) is
replaced by the next upload to its base (:func:`replace_store`); the documents it held fail
with :data:`LOST`. Answers searching it meanwhile fail, and :func:`missing_store` says
which base is missing.

A tenant without a key of its own has its files and stores made with the platform's key
(``KITHOST_OPENAI_API_KEY``), in the operator's OpenAI project, where the key it sets later
does not reach them: what that key does not find is removed with the platform's key
(:func:`remove`, :func:`replace_store`), so none of the tenant's documents stay with the
operator. What a tenant's earlier key of its own made stays in that key's project when it
sets another: Kithost keeps no earlier key.

What a task made at OpenAI for a document or base deleted meanwhile (a file, a vector store),
or failed to write down (:func:`_writing_down`), is taken back by the ``remove`` task
(:func:`_take_back`), retried as any removal: deleted inline, a failure of that one call
would leave it there for nobody, since the task's retry finds nothing left to do.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog
from openai import (
    APIConnectionError,
    APIStatusError,
    AsyncOpenAI,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
)
from openai.types.vector_stores import VectorStoreFile
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.db import Sessionmaker, session_scope
from kithost.errors import Conflict
from kithost.kit.crypto import SecretBox
from kithost.kit.upstream import openai_client
from kithost.knowledge import repository, tasks
from kithost.models import DocumentStatus, KnowledgeDocument, Tenant, Widget
from kithost.secrets.service import model_endpoint, openai_key_to_use
from kithost.settings import Settings
from kithost.storage import BlobStorage
from kithost.worker.enqueue import enqueue

log = structlog.get_logger(__name__)

NO_KEY = "The tenant has no OpenAI API key: set one, then upload the document again."
NO_OWN_KEY = (
    "Kithost adopts a vector store only with your own OpenAI API key: set the tenant's "
    "(PUT …/openai-key), then import again."
)
LOST = (
    "OpenAI no longer holds this document: the knowledge base's vector store is gone there "
    "(deleted at OpenAI, or not in the project of the API key now set). Upload it again."
)
NOT_REACHED = (
    "Your OpenAI API key does not reach this vector store: set the key of its project, or "
    "upload its documents to a knowledge base."
)


def blob_key(tenant_id: uuid.UUID, document_id: uuid.UUID) -> str:
    return f"knowledge/{tenant_id}/{document_id}"


def _client(settings: Settings, box: SecretBox, stored_key: str | None) -> AsyncOpenAI | None:
    """OpenAI with ``stored_key`` (a tenant's, encrypted; else the platform's) on the
    operator's endpoint; None when there is no key to use."""
    try:
        key = openai_key_to_use(settings, box, stored_key)
    except Conflict:
        return None
    return openai_client(key, settings.openai_base_url, settings.openai_timeout_seconds)


def _platform(settings: Settings, box: SecretBox, stored_key: str | None) -> AsyncOpenAI | None:
    """OpenAI with the platform's key when the tenant's calls have its own (``stored_key``,
    encrypted) and the operator set one: what Kithost made for the tenant before it had a
    key of its own is there; else None."""
    return None if stored_key is None else _client(settings, box, None)


@dataclass(frozen=True)
class Upstream:
    """How a task reaches OpenAI for a tenant: ``client`` with its key (:func:`_client`),
    ``platform`` for what the platform's key made before it had its own (:func:`_platform`),
    and ``stored_key``, the tenant's key as stored (encrypted), for the ``remove`` task
    (:func:`_take_back`) to use the same key whatever becomes of the tenant meanwhile."""

    client: AsyncOpenAI
    platform: AsyncOpenAI | None = None
    stored_key: str | None = None


def _take_back(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    upstream: Upstream,
    *,
    files: Sequence[str] = (),
    vector_store: str | None = None,
) -> None:
    """Queue the removal of ``files``, or of ``vector_store``, from OpenAI once ``session``
    commits: the ``remove`` task retries what OpenAI fails to answer, and what the tenant's
    key does not find it deletes with the platform's (:func:`remove`)."""
    whole = vector_store is not None
    enqueue(
        session,
        tasks.remove,
        str(tenant_id),
        vector_store,
        list(files),
        [],
        whole,
        upstream.stored_key,
    )


@asynccontextmanager
async def _writing_down(
    sessionmaker: Sessionmaker,
    tenant_id: uuid.UUID,
    upstream: Upstream,
    *,
    files: Sequence[str] = (),
    vector_store: str | None = None,
) -> AsyncIterator[AsyncSession]:
    """The unit of work writing down ``files``, or ``vector_store``, which OpenAI has just
    made. Should it fail (the database gone meanwhile, say), the ``remove`` task takes them
    back (:func:`_take_back`) before the failure goes on: the task's retry makes them anew,
    and nothing would ever remove these. That removal is queued by a unit of work that runs
    no statement, so it is sent whatever became of the database (one using none commits
    nothing and sends what it queued: ``db.session_scope``).

    A commit that failed only to say it succeeded leaves them written down and removed: the
    document then fails as OpenAI no longer holds its file (its base's store is replaced as
    lost), and is uploaded again, rather than leaving them behind for nobody."""
    try:
        async with session_scope(sessionmaker, tenant=tenant_id) as session:
            yield session
    except BaseException:
        async with session_scope(sessionmaker) as session:
            _take_back(session, tenant_id, upstream, files=files, vector_store=vector_store)
        raise


async def store_access(
    settings: Settings, box: SecretBox, tenant: Tenant, widget: Widget, store_id: str
) -> str | None:
    """Why ``tenant`` may not adopt vector store ``store_id`` for ``widget`` (None: it may):
    the key the widget's agent calls the operator's endpoint with — its model key set for
    that endpoint, else the tenant's OpenAI key, never the platform's (the settings are
    taken without it) — must retrieve the store there (``widgets.adoption``)."""
    try:
        endpoint = model_endpoint(
            settings.model_copy(update={"openai_api_key": None}),
            box,
            None,
            widget_key=widget.model_key,
            widget_key_base_url=widget.model_key_base_url,
            tenant_key=tenant.openai_api_key,
        )
    except Conflict:
        return NO_OWN_KEY
    client = openai_client(endpoint.api_key, endpoint.base_url, settings.openai_timeout_seconds)
    try:
        await client.vector_stores.retrieve(store_id)
    except (NotFoundError, AuthenticationError, PermissionDeniedError):
        return NOT_REACHED
    except (APIStatusError, APIConnectionError) as exc:
        return f"OpenAI could not say whether it is yours ({type(exc).__name__}): import again."
    return None


async def ingest(
    sessionmaker: Sessionmaker,
    settings: Settings,
    box: SecretBox,
    storage: BlobStorage,
    tenant_id: uuid.UUID,
    document_id: uuid.UUID,
) -> DocumentStatus | None:
    """Hand one document to OpenAI; its status after (None: it no longer exists).

    Raises one of ``tasks.TRANSIENT`` for the task to retry; any other refusal by OpenAI
    fails the document with the reason. Once it is ready or failed its bytes are deleted:
    OpenAI holds them, or nothing will read them again (a failed document is uploaded anew).
    """
    status = await _ingest(sessionmaker, settings, box, storage, tenant_id, document_id)
    if status is not None and status is not DocumentStatus.processing:
        await storage.delete([blob_key(tenant_id, document_id)])
    return status


async def _ingest(
    sessionmaker: Sessionmaker,
    settings: Settings,
    box: SecretBox,
    storage: BlobStorage,
    tenant_id: uuid.UUID,
    document_id: uuid.UUID,
) -> DocumentStatus | None:
    async with session_scope(sessionmaker, tenant=tenant_id) as session:
        document = await repository.get_document(session, tenant_id, document_id, lock=True)
        if document is None or document.status is not DocumentStatus.processing:
            return None if document is None else document.status
        base = await repository.get_base(session, tenant_id, document.knowledge_base_id)
        assert base is not None  # a document goes with its base (ON DELETE CASCADE)
        tenant = await session.get(Tenant, tenant_id)
        stored_key = None if tenant is None else tenant.openai_api_key
        client = None if tenant is None else _client(settings, box, stored_key)
        if client is None:
            return _fail(document, NO_KEY)
        upstream = Upstream(client, _platform(settings, box, stored_key), stored_key)
        store_id, file_id = base.vector_store_id, document.file_id
        filename, content_type = document.filename, document.content_type
    try:
        if store_id is None:
            store_id = await _vector_store(sessionmaker, upstream, tenant_id, base.id, base.name)
            if store_id is None:  # the base (and so the document) was deleted meanwhile
                return None
        if file_id is None:
            data = await storage.get(blob_key(tenant_id, document_id))
            if data is None:
                return await settle(sessionmaker, tenant_id, document_id, "The upload is lost.")
            made = await client.files.create(
                file=(filename, data, content_type), purpose="assistants"
            )
            file_id = made.id
            async with _writing_down(sessionmaker, tenant_id, upstream, files=[file_id]) as session:
                document = await repository.get_document(session, tenant_id, document_id, lock=True)
                if document is None:  # deleted meanwhile: take the file back
                    _take_back(session, tenant_id, upstream, files=[file_id])
                    return None
                document.file_id = file_id
        try:
            indexed = await _index(client, file_id, store_id)
        except NotFoundError:
            if not await _store_gone(client, store_id):
                raise  # the file is gone, not the store
            store_id = await replace_store(
                sessionmaker, upstream, tenant_id, base.id, base.name, store_id
            )
            if store_id is None:  # the base was deleted meanwhile
                return None
            indexed = await _index(client, file_id, store_id)
    except (AuthenticationError, PermissionDeniedError):
        return await settle(sessionmaker, tenant_id, document_id, "OpenAI refused the API key.")
    except tasks.TRANSIENT:
        raise
    except APIStatusError as exc:
        refused = f"OpenAI refused the document: {exc.message}"
        return await settle(sessionmaker, tenant_id, document_id, refused)
    error = indexed.last_error
    reason = None
    if indexed.status != "completed":
        reason = f"OpenAI could not index it: {error.message if error else indexed.status}"
    return await settle(sessionmaker, tenant_id, document_id, reason, store_id=store_id)


async def _index(client: AsyncOpenAI, file_id: str, store_id: str) -> VectorStoreFile:
    """Attach the file to the vector store; the file once OpenAI has indexed it (or could
    not)."""
    return await client.vector_stores.files.create_and_poll(
        file_id, vector_store_id=store_id, poll_interval_ms=1000
    )


async def _store_gone(client: AsyncOpenAI, store_id: str) -> bool:
    """Whether OpenAI no longer holds vector store ``store_id`` (for the client's key)."""
    try:
        await client.vector_stores.retrieve(store_id)
    except NotFoundError:
        return True
    return False


async def replace_store(
    sessionmaker: Sessionmaker,
    upstream: Upstream,
    tenant_id: uuid.UUID,
    base_id: uuid.UUID,
    name: str,
    lost: str,
) -> str | None:
    """The base's vector store in place of ``lost``, which OpenAI no longer holds for
    ``upstream.client``; None when the base is gone.

    With ``upstream.platform`` (the client has the tenant's own key), ``lost`` is deleted
    with the platform's key first: it was made with it before the tenant had a key of its
    own, and nothing else would remove it from the operator's project (a 404 there too: it
    is lost indeed).

    Only if ``lost`` is still the base's (another task may have replaced it already: then
    that task's store is the base's) the base forgets it, and its documents ready in it fail
    with :data:`LOST` (their bytes are gone); when the platform's key deleted ``lost``, their
    files are taken back (:func:`_take_back`). Those documents are locked, so a document
    being settled ready in it meanwhile fails too (:func:`settle`). Then a store is made as
    on first use (:func:`_vector_store`) unless the base has one.
    """
    taken_back = await _delete(None, upstream.platform, vector_store=lost)
    files: list[str] = []
    async with session_scope(sessionmaker, tenant=tenant_id) as session:
        base = await repository.get_base(session, tenant_id, base_id, lock=True)
        if base is None:
            return None
        if base.vector_store_id == lost:
            log.warning("knowledge.vector_store_lost", base=str(base_id), vector_store=lost)
            base.vector_store_id = None
            documents = await repository.list_documents(session, tenant_id, [base_id], lock=True)
            for document in documents:
                if document.status is DocumentStatus.ready:
                    _fail(document, LOST)
                    if document.file_id is not None:
                        files.append(document.file_id)
            if taken_back and files:
                _take_back(session, tenant_id, upstream, files=files)
        current = base.vector_store_id
    if current is not None:
        return current
    return await _vector_store(sessionmaker, upstream, tenant_id, base_id, name)


async def _vector_store(
    sessionmaker: Sessionmaker,
    upstream: Upstream,
    tenant_id: uuid.UUID,
    base_id: uuid.UUID,
    name: str,
) -> str | None:
    """The base's vector store, made now; when another task made one meanwhile, that one
    (and this one is taken back); None when the base is gone (this one taken back too)."""
    made = await upstream.client.vector_stores.create(
        name=name[:200], metadata={"kithost_knowledge_base": str(base_id)}
    )
    async with _writing_down(sessionmaker, tenant_id, upstream, vector_store=made.id) as session:
        base = await repository.get_base(session, tenant_id, base_id, lock=True)
        if base is not None and base.vector_store_id is None:
            base.vector_store_id = made.id
            return made.id
        _take_back(session, tenant_id, upstream, vector_store=made.id)
        return None if base is None else base.vector_store_id


async def settle(
    sessionmaker: Sessionmaker,
    tenant_id: uuid.UUID,
    document_id: uuid.UUID,
    reason: str | None,
    *,
    store_id: str | None = None,
) -> DocumentStatus | None:
    """Mark the document ready (``reason`` None) or failed with ``reason``; None when it is
    gone (it is locked first: a deletion under way finishes before, or waits). Indexed in
    vector store ``store_id`` that its base no longer has (lost meanwhile:
    :func:`replace_store`), it fails with :data:`LOST` instead of being ready."""
    async with session_scope(sessionmaker, tenant=tenant_id) as session:
        document = await repository.get_document(session, tenant_id, document_id, lock=True)
        if document is None:
            return None
        if reason is None and store_id is not None:
            base = await repository.get_base(session, tenant_id, document.knowledge_base_id)
            if base is not None and base.vector_store_id != store_id:
                reason = LOST
        if reason is None:
            document.status, document.failure_reason = DocumentStatus.ready, None
            return document.status
        return _fail(document, reason)


def _fail(document: KnowledgeDocument, reason: str) -> DocumentStatus:
    log.info("knowledge.document_failed", document=str(document.id), reason=reason)
    document.status, document.failure_reason = DocumentStatus.failed, reason[:500]
    return document.status


async def remove(
    sessionmaker: Sessionmaker,
    settings: Settings,
    box: SecretBox,
    storage: BlobStorage,
    tenant_id: uuid.UUID,
    vector_store_id: str | None,
    file_ids: list[str],
    blob_keys: list[str],
    whole: bool,
    tenant_key: str | None = None,
) -> None:
    """Remove documents' files from OpenAI (and the vector store when ``whole``) and their
    bytes; what is already gone is not an error. ``tenant_key``: the tenant's OpenAI key as
    stored (encrypted), given when the tenant itself is being deleted (its row is gone by
    now); else its key is read, and a tenant without one (or no longer there) has the
    platform's.

    What the tenant's own key does not find is tried once more with the platform's (when
    the operator set one): the platform's key made it while the tenant had none of its own.
    Every id given was made by Kithost (adopted bases' stores are never given), so the
    platform's key deletes nobody else's. Made with an earlier key of the tenant's own, it
    stays in that key's project: Kithost keeps no earlier key."""
    await storage.delete(blob_keys)
    if tenant_key is None:
        async with session_scope(sessionmaker, tenant=tenant_id) as session:
            tenant = await session.get(Tenant, tenant_id)
        tenant_key = None if tenant is None else tenant.openai_api_key
    client = _client(settings, box, tenant_key)
    if client is None:
        log.warning("knowledge.remove_without_key", tenant=str(tenant_id), files=file_ids)
        return
    platform = _platform(settings, box, tenant_key)
    for file_id in file_ids:
        if vector_store_id is not None and not whole:
            await _delete(client, platform, file=file_id, vector_store=vector_store_id)
        await _delete(client, platform, file=file_id)
    if whole and vector_store_id is not None:
        await _delete(client, platform, vector_store=vector_store_id)


async def _delete(
    client: AsyncOpenAI | None,
    platform: AsyncOpenAI | None,
    *,
    file: str | None = None,
    vector_store: str | None = None,
) -> bool:
    """Delete ``file`` from OpenAI, or ``vector_store``, or with both the file from the
    store, with ``client``; what its key does not find (404), with ``platform`` (logged);
    whether one of them deleted it (a 404 from each: it is gone already)."""
    for number, upstream in enumerate((client, platform)):
        if upstream is None:
            continue
        try:
            if file is not None and vector_store is not None:
                await upstream.vector_stores.files.delete(file, vector_store_id=vector_store)
            elif file is not None:
                await upstream.files.delete(file)
            elif vector_store is not None:
                await upstream.vector_stores.delete(vector_store)
        except NotFoundError:
            continue
        if number:
            log.info("knowledge.removed_with_platform_key", file=file, vector_store=vector_store)
        return True
    return False


def missing_store(exc: BaseException, vector_stores: Mapping[uuid.UUID, str]) -> str | None:
    """What ``server.response.failed`` reports when an answer searching ``vector_stores``
    (each base's) failed because OpenAI refused one as unknown (``exc``, naming it):
    ``knowledge_base_missing: <base id>``; None for any other failure. Nothing is changed:
    the base's next upload replaces its store (:func:`replace_store`)."""
    if not isinstance(exc, NotFoundError | BadRequestError):
        return None
    for base_id, store_id in vector_stores.items():
        if store_id in exc.message:
            return f"knowledge_base_missing: {base_id}"
    return None
