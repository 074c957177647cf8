"""The incident history in Qdrant: one point per finished investigation, searched by meaning with filters.

Two ways to run it. With `QDRANT_URL` a Qdrant server holds the index and every
process (web, worker, CLI) talks to it. Without, qdrant-client's local mode keeps it
in a folder under DATA_DIR; local mode allows one client per folder at a time, so each
operation opens the folder under an exclusive file lock and closes it again: the web,
the worker and the CLI take turns, each seeing the others' writes. That costs an open
per operation (about 0.6 s at 10,000 incidents), which is why production uses a server.
"""

from __future__ import annotations

import fcntl
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from integrations.history.embeddings import Embedder, EmbeddingError

# Point ids are derived from investigation ids, so indexing the same investigation again replaces its point.
_NAMESPACE = uuid.UUID("6f1c2d4e-8a47-4b8e-9d59-0f1e7c2a9b31")
_FILTERED = ("service", "category")


class IndexUnavailable(Exception):
    """The index cannot be read or written (server down, folder corrupt or locked); reports go on without it."""


@dataclass(frozen=True, slots=True)
class Hit:
    investigation_id: str
    score: float
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Entry:
    """One investigation as the index stores it: the text embedded, and what is shown and filtered on."""

    investigation_id: str
    text: str
    payload: dict[str, Any]


def point_id(investigation_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, investigation_id))


class IncidentIndex:
    def __init__(
        self, embedder: Embedder, *, path: Path, url: str | None = None, api_key: str | None = None, timeout_s: float = 10.0
    ) -> None:
        self.embedder = embedder
        self.collection = f"incidents__{embedder.name}"
        self.path = path
        self.url = url
        self._api_key = api_key
        self._timeout = timeout_s
        self._server: Any = None
        self._held: Any = None

    @property
    def where(self) -> str:
        return self.url or f"{self.path} (local mode)"

    def upsert(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        from qdrant_client import models

        vectors = self._embed([entry.text for entry in entries])
        points = [
            models.PointStruct(
                id=point_id(entry.investigation_id), vector=vector, payload={**entry.payload, "investigation_id": entry.investigation_id}
            )
            for entry, vector in zip(entries, vectors, strict=True)
        ]
        with self._client(create=True) as client:
            client.upsert(self.collection, points=points, wait=True)

    def search(
        self,
        text: str,
        *,
        limit: int = 3,
        offset: int = 0,
        service: str | None = None,
        category: str | None = None,
        since: datetime | None = None,
        exclude: str | None = None,
        threshold: float | None = None,
    ) -> list[Hit]:
        """The incidents closest to `text`, best first, with filters; `threshold` drops those less similar."""
        from qdrant_client import models

        must: list[Any] = [
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in (("service", service), ("category", category))
            if value
        ]
        if since is not None:
            must.append(models.FieldCondition(key="created_ts", range=models.Range(gte=since.timestamp())))
        must_not = [models.HasIdCondition(has_id=[point_id(exclude)])] if exclude else []
        with self._client(create=False) as client:
            # An empty history answers without embedding: a first investigation does not load a model for nothing.
            if client is None or not client.count(self.collection, exact=False).count:
                return []
            (vector,) = self._embed([text])
            answer = client.query_points(
                self.collection,
                query=vector,
                query_filter=models.Filter(must=must, must_not=must_not),
                limit=limit,
                offset=offset,
                with_payload=True,
                score_threshold=threshold,
            )
        return [Hit(str((p.payload or {}).get("investigation_id", "")), float(p.score), dict(p.payload or {})) for p in answer.points]

    def indexed(self) -> dict[str, str]:
        """Investigation id → hash of the text indexed for it: what a rebuild may skip."""
        found: dict[str, str] = {}
        with self._client(create=False) as client:
            if client is None:
                return found
            offset = None
            while True:
                points, offset = client.scroll(
                    self.collection, limit=1000, offset=offset, with_payload=["investigation_id", "doc_hash"], with_vectors=False
                )
                for point in points:
                    payload = point.payload or {}
                    found[str(payload.get("investigation_id"))] = str(payload.get("doc_hash", ""))
                if offset is None:
                    return found

    def count(self) -> int:
        with self._client(create=False) as client:
            return 0 if client is None else int(client.count(self.collection, exact=True).count)

    def drop(self) -> None:
        """Remove this model's collection (a rebuild's repair of a corrupt index)."""
        with self._client(create=False) as client:
            if client is not None:
                client.delete_collection(self.collection)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keep one client open across the operations inside (a rebuild, a benchmark): local mode opens once, not per call."""
        if self._held is not None:
            yield
            return
        try:
            with self._open() as client:
                self._held = client
                try:
                    yield
                finally:
                    self._held = None
        except IndexUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001  (qdrant-client raises many types: server down, bad folder, lock held)
            raise IndexUnavailable(f"the incident index at {self.where} failed: {type(exc).__name__}: {str(exc)[:200]}") from None

    def _embed(self, texts: list[str]) -> list[list[float]]:
        try:
            return self.embedder.embed(texts)
        except EmbeddingError as exc:
            raise IndexUnavailable(str(exc)) from None

    @contextmanager
    def _client(self, *, create: bool) -> Iterator[Any]:
        """A client with this model's collection (created when `create`; None when absent and not `create`)."""
        try:
            with self._open() as client:
                exists = client.collection_exists(self.collection)
                if not exists and create:
                    self._create(client)
                yield client if exists or create else None
        except IndexUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001  (qdrant-client raises many types: server down, bad folder, lock held)
            raise IndexUnavailable(f"the incident index at {self.where} failed: {type(exc).__name__}: {str(exc)[:200]}") from None

    @contextmanager
    def _open(self) -> Iterator[Any]:
        from qdrant_client import QdrantClient

        if self._held is not None:
            yield self._held
            return
        if self.url:
            if self._server is None:
                self._server = QdrantClient(url=self.url, api_key=self._api_key, timeout=int(self._timeout), check_compatibility=False)
            yield self._server
            return
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path.parent / f"{self.path.name}.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            client = QdrantClient(path=str(self.path))
            try:
                yield client
            finally:
                client.close()

    def _create(self, client: Any) -> None:
        from qdrant_client import models

        client.create_collection(
            self.collection, vectors_config=models.VectorParams(size=self.embedder.dim, distance=models.Distance.COSINE)
        )
        if self.url:
            for key in _FILTERED:
                client.create_payload_index(self.collection, field_name=key, field_schema=models.PayloadSchemaType.KEYWORD)
            client.create_payload_index(self.collection, field_name="created_ts", field_schema=models.PayloadSchemaType.FLOAT)
