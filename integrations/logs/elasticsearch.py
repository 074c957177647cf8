"""The `elasticsearch` log kind: an index's log documents read through elasticsearch-py, `search_after` in a point in time.

The walk itself is `search_store.SearchStore`'s; this module makes the three calls
with elasticsearch-py and sorts its errors: 429 and 5xx are worth another try (with
the server's `Retry-After` when it sends one), a refused credential, a missing index
or a rejected query are not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from integrations import roles
from integrations.errors import SourceError
from integrations.logs.search_store import KEEP_ALIVE, SearchClient, SearchOptions, SearchStore, error_line
from integrations.plugin import EnvVarName, SourceKind, secret_from_env
from integrations.remote_calls import RetryableError


class ElasticsearchOptions(SearchOptions):
    """Where and what to read in Elasticsearch (self-managed or Elastic Cloud)."""

    api_key_env: EnvVarName | None = Field(None, description="environment variable holding an API key (the encoded id:key form)")

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> ElasticsearchOptions:
        if self.api_key_env is not None and self.username_env is not None:
            raise ValueError("give either api_key_env or username_env/password_env, not both")
        return self


class _Client(SearchClient):
    def __init__(self, options: ElasticsearchOptions, where: str) -> None:
        from elasticsearch import Elasticsearch

        self.where = where
        auth: dict[str, Any] = {}
        if options.api_key_env:
            auth["api_key"] = secret_from_env(options.api_key_env, purpose="elasticsearch API key").get_secret_value()
        elif options.username_env and options.password_env:
            user = secret_from_env(options.username_env, purpose="elasticsearch user name").get_secret_value()
            password = secret_from_env(options.password_env, purpose="elasticsearch password").get_secret_value()
            auth["basic_auth"] = (user, password)
        # Retries are ours (bounded by the source deadline), not the transport's.
        self.es = Elasticsearch(options.url, max_retries=0, retry_on_timeout=False, request_timeout=options.timeout_s, **auth)

    def open_pit(self, index: str, timeout: float) -> str:
        answer = self._call(lambda es: es.open_point_in_time(index=index, keep_alive=KEEP_ALIVE), timeout, index=index)
        return str(answer["id"])

    def search(self, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        return dict(self._call(lambda es: es.search(body=body), timeout))

    def close_pit(self, pit: str) -> None:
        self._call(lambda es: es.close_point_in_time(id=pit), 5.0)

    def _call(self, call: Any, timeout: float, *, index: str | None = None) -> Any:
        import elasticsearch

        try:
            return call(self.es.options(request_timeout=timeout)).body
        except elasticsearch.ConnectionTimeout:
            raise RetryableError(f"{self.where} did not answer within {timeout:.1f}s") from None
        except elasticsearch.ConnectionError as exc:
            # The exception text may carry the URL with credentials in it; the class name says enough.
            raise SourceError(f"{self.where} cannot be reached ({type(exc).__name__})") from None
        except elasticsearch.UnsupportedProductError:
            raise SourceError(
                f"{self.where} is not Elasticsearch (no X-Elastic-Product header); for OpenSearch use the opensearch kind"
            ) from None
        except elasticsearch.ApiError as exc:
            raise sorted_error(self.where, exc.meta.status, exc.body, exc.meta.headers.get("Retry-After"), index) from None


def sorted_error(where: str, status: int, body: Any, retry_after: str | None, index: str | None) -> SourceError:
    """The error an answer of `status` stands for: retryable for 429 and 5xx, one actionable line otherwise."""
    reason = error_line(body)
    if status == 429 or status >= 500:
        wait = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
        return RetryableError(f"{where} answered {status}: {reason}", wait_s=wait)
    if status in (401, 403):
        return SourceError(
            f"{where} refused the credentials ({status}: {reason}); check the key's variable and its read privilege on the index"
        )
    if "index_not_found" in reason:
        return SourceError(f"{where} has no index {index or ''} ({reason})")
    return SourceError(f"{where} rejected the search ({status}: {reason})")


class ElasticsearchStore(SearchStore):
    kind = "elasticsearch"
    product = "Elasticsearch"

    def __init__(self, options: ElasticsearchOptions) -> None:
        self.elastic_options = options
        super().__init__(options)

    def client(self) -> SearchClient:
        return _Client(self.elastic_options, self.where)


def _check(source: ElasticsearchStore) -> str:
    return source.check()


def _build(options: ElasticsearchOptions, _base_dir: Path) -> ElasticsearchStore:
    # The credentials are read by the first call: an unset variable fails that read, by name, as one degraded entry.
    return ElasticsearchStore(options)


KIND = SourceKind(
    name="elasticsearch",
    role=roles.LOGS,
    options=ElasticsearchOptions,
    build=_build,
    check=_check,
    summary="log documents of an Elasticsearch index through elasticsearch-py (search_after in a point in time)",
)
