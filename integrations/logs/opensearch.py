"""The `opensearch` log kind: an index's log documents read through opensearch-py, `search_after` in a point in time.

The walk is `search_store.SearchStore`'s, as for Elasticsearch; OpenSearch names its
point-in-time calls differently (`create_pit` / `delete_pit`, 2.4 and later) and
breaks sort ties on `_id`, which it allows sorting on, where Elasticsearch offers
`_shard_doc`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from integrations import roles
from integrations.errors import SourceError
from integrations.logs.elasticsearch import sorted_error
from integrations.logs.search_store import KEEP_ALIVE, SearchClient, SearchOptions, SearchStore
from integrations.plugin import SourceKind, secret_from_env
from integrations.remote_calls import RetryableError


class OpenSearchOptions(SearchOptions):
    """Where and what to read in OpenSearch (self-managed or Amazon OpenSearch Service with basic auth)."""


class _Client(SearchClient):
    def __init__(self, options: SearchOptions, where: str) -> None:
        from opensearchpy import OpenSearch

        self.where = where
        auth: dict[str, Any] = {}
        if options.username_env and options.password_env:
            user = secret_from_env(options.username_env, purpose="opensearch user name").get_secret_value()
            password = secret_from_env(options.password_env, purpose="opensearch password").get_secret_value()
            auth["http_auth"] = (user, password)
        # Retries are ours (bounded by the source deadline), not the transport's.
        self.os = OpenSearch(hosts=[options.url], max_retries=0, retry_on_timeout=False, timeout=options.timeout_s, **auth)

    def open_pit(self, index: str, timeout: float) -> str:
        answer = self._call(
            lambda: self.os.create_pit(index=index, params={"keep_alive": KEEP_ALIVE, "request_timeout": timeout}), timeout, index
        )
        return str(answer["pit_id"])

    def search(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        return dict(self._call(lambda: self.os.search(body=body, params={"request_timeout": timeout}), timeout))

    def close_pit(self, pit: str) -> None:
        self._call(lambda: self.os.delete_pit(body={"pit_id": [pit]}, params={"request_timeout": 5.0}), 5.0)

    def _call(self, call: Any, timeout: float, index: str | None = None) -> Any:
        import opensearchpy

        try:
            return call()
        except opensearchpy.ConnectionTimeout:
            raise RetryableError(f"{self.where} did not answer within {timeout:.1f}s") from None
        except opensearchpy.ConnectionError as exc:
            # The exception text may carry the URL with credentials in it; the class name says enough.
            raise SourceError(f"{self.where} cannot be reached ({type(exc).__name__})") from None
        except opensearchpy.TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 500
            raise sorted_error(self.where, status, exc.info, None, index) from None


class OpenSearchStore(SearchStore):
    kind = "opensearch"
    product = "OpenSearch"
    tiebreaker = "_id"

    def client(self) -> SearchClient:
        return _Client(self.search_options, self.where)


def _check(source: OpenSearchStore) -> str:
    return source.check()


def _build(options: OpenSearchOptions, _base_dir: Path) -> OpenSearchStore:
    # The credentials are read by the first call: an unset variable fails that read, by name, as one degraded entry.
    return OpenSearchStore(options)


KIND = SourceKind(
    name="opensearch",
    role=roles.LOGS,
    options=OpenSearchOptions,
    build=_build,
    check=_check,
    summary="log documents of an OpenSearch index through opensearch-py (search_after in a point in time)",
)
