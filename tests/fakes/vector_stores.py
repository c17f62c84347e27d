"""OpenAI's Files and Vector Stores APIs for `FakeOpenAI` (``fake.vector_stores``).

- ``POST /v1/files`` (multipart ``file`` + ``purpose``), ``DELETE /v1/files/{id}``
- ``POST /v1/vector_stores``, ``GET``/``DELETE /v1/vector_stores/{id}`` (a store is its
  project's, the key that made it: another key gets 404 retrieving it, as OpenAI answers
  for another project's; :meth:`VectorStores.add` makes one as Agent Builder had)
- ``POST /v1/vector_stores/{id}/files`` (attach a file; indexed at once),
  ``GET``/``DELETE /v1/vector_stores/{id}/files/{file_id}``

A file whose bytes contain :data:`UNINDEXABLE` is attached with status ``failed`` and
``last_error``, as OpenAI answers for a file it cannot parse.

A Responses request with a ``file_search`` tool (:meth:`VectorStores.search`) gets a
``file_search_call`` before its message, and the message cites the first file of the first
of the tool's vector stores that has one; one naming a vector store that does not exist
(:meth:`VectorStores.unknown`: deleted, say) is refused 404, as OpenAI refuses it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Json = dict[str, Any]
Handler = Callable[[Request, Json], Awaitable[Response]]
Wrap = Callable[[Handler, bool], Callable[[Request], Awaitable[Response]]]

UNINDEXABLE = b"%%unindexable%%"


class VectorStores:
    def __init__(self, new_id: Callable[[str], str]) -> None:
        self._new_id = new_id
        self.files: dict[str, Json] = {}
        """Uploaded files by id (``content`` holds the bytes)."""
        self.stores: dict[str, Json] = {}
        """Vector stores by id (``file_ids``: the files attached)."""
        self.searches: list[Json] = []
        """The ``file_search`` tools of the Responses requests so far."""

    def reset(self) -> None:
        self.files.clear()
        self.stores.clear()
        self.searches.clear()

    def add(self, key: str, store_id: str | None = None) -> str:
        """A vector store made with ``key`` (in its project) outside Kithost (``store_id``:
        its id, else a new one); its id."""
        store_id = store_id or self._new_id("vs_")
        self.stores[store_id] = {"name": "Agent Builder's", "metadata": {}, "file_ids": set()}
        self.stores[store_id]["key"] = key
        return store_id

    def unknown(self, tools: list[Json]) -> str | None:
        """The first vector store a ``file_search`` tool among ``tools`` names that does not
        exist; None when they all do."""
        for tool in tools:
            if isinstance(tool, dict) and tool.get("type") == "file_search":
                for store_id in tool.get("vector_store_ids", []):
                    if store_id not in self.stores:
                        return str(store_id)
        return None

    def search(self, tools: list[Json]) -> tuple[Json, Json | None] | None:
        """The ``file_search_call`` output item and the citation of a Responses request with
        ``tools``; None without a ``file_search`` tool."""
        found = [t for t in tools if isinstance(t, dict) and t.get("type") == "file_search"]
        if not found:
            return None
        self.searches.extend(found)
        call = {
            "id": self._new_id("fs_"),
            "type": "file_search_call",
            "status": "completed",
            "queries": ["the visitor's question"],
            "results": None,
        }
        for store_id in found[0].get("vector_store_ids", []):
            for file_id in sorted(self.stores.get(store_id, {}).get("file_ids", ())):
                file = self.files[file_id]
                citation = {
                    "type": "file_citation",
                    "file_id": file_id,
                    "filename": file["filename"],
                    "index": 0,
                }
                return call, citation
        return call, None

    def routes(self, wrap: Wrap) -> list[Route]:
        return [
            Route("/v1/files", wrap(self._create_file, False), methods=["POST"]),
            Route("/v1/files/{file_id}", wrap(self._delete_file, True), methods=["DELETE"]),
            Route("/v1/vector_stores", wrap(self._create_store, True), methods=["POST"]),
            Route(
                "/v1/vector_stores/{store_id}",
                wrap(self._store, True),
                methods=["GET", "DELETE"],
            ),
            Route(
                "/v1/vector_stores/{store_id}/files",
                wrap(self._attach_file, True),
                methods=["POST"],
            ),
            Route(
                "/v1/vector_stores/{store_id}/files/{file_id}",
                wrap(self._store_file, True),
                methods=["GET", "DELETE"],
            ),
        ]

    async def _create_file(self, request: Request, body: Json) -> Response:
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            return _error(400, "Missing file.")
        content = await upload.read()
        file_id = self._new_id("file-")
        file = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": upload.filename,
            "purpose": str(form.get("purpose", "")),
            "status": "processed",
        }
        self.files[file_id] = {**file, "content": content}
        return JSONResponse(file)

    async def _delete_file(self, request: Request, body: Json) -> Response:
        file_id = request.path_params["file_id"]
        if self.files.pop(file_id, None) is None:
            return _error(404, f"No such File object: {file_id}")
        for store in self.stores.values():
            store["file_ids"].discard(file_id)
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    async def _create_store(self, request: Request, body: Json) -> Response:
        store_id = self._new_id("vs_")
        self.stores[store_id] = {
            "name": body.get("name"),
            "metadata": body.get("metadata"),
            "file_ids": set(),
            "key": _bearer(request),
        }
        return JSONResponse(self._store_json(store_id))

    async def _store(self, request: Request, body: Json) -> Response:
        store_id = request.path_params["store_id"]
        store = self.stores.get(store_id)
        if store is None or (request.method == "GET" and store["key"] != _bearer(request)):
            return _error(404, f"No vector store found with id '{store_id}'.")
        if request.method == "GET":
            return JSONResponse(self._store_json(store_id))
        del self.stores[store_id]
        return JSONResponse({"id": store_id, "object": "vector_store.deleted", "deleted": True})

    def _store_json(self, store_id: str) -> Json:
        store = self.stores[store_id]
        return {
            "id": store_id,
            "object": "vector_store",
            "created_at": int(time.time()),
            "name": store["name"],
            "metadata": store["metadata"],
            "usage_bytes": 0,
            "status": "completed",
            "file_counts": {
                "in_progress": 0,
                "completed": len(store["file_ids"]),
                "failed": 0,
                "cancelled": 0,
                "total": len(store["file_ids"]),
            },
        }

    async def _attach_file(self, request: Request, body: Json) -> Response:
        store = self.stores.get(request.path_params["store_id"])
        file = self.files.get(str(body.get("file_id")))
        if store is None or file is None:
            return _error(404, "No such vector store or file.")
        store["file_ids"].add(file["id"])
        return JSONResponse(self._store_file_json(request.path_params["store_id"], file))

    async def _store_file(self, request: Request, body: Json) -> Response:
        store_id, file_id = request.path_params["store_id"], request.path_params["file_id"]
        store, file = self.stores.get(store_id), self.files.get(file_id)
        if store is None or file is None or file_id not in store["file_ids"]:
            return _error(404, f"No file found with id '{file_id}' in vector store '{store_id}'.")
        if request.method == "DELETE":
            store["file_ids"].discard(file_id)
            return JSONResponse(
                {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}
            )
        return JSONResponse(self._store_file_json(store_id, file))

    @staticmethod
    def _store_file_json(store_id: str, file: Json) -> Json:
        failed = UNINDEXABLE in file["content"]
        return {
            "id": file["id"],
            "object": "vector_store.file",
            "created_at": file["created_at"],
            "vector_store_id": store_id,
            "usage_bytes": 0 if failed else file["bytes"],
            "status": "failed" if failed else "completed",
            "last_error": (
                {"code": "unsupported_file", "message": "The file could not be parsed."}
                if failed
                else None
            ),
        }


def _bearer(request: Request) -> str:
    """The request's API key."""
    return request.headers.get("authorization", "").partition(" ")[2]


def _error(status: int, message: str) -> Response:
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    }
    return JSONResponse(body, status)
