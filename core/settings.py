"""Every setting the application reads, in one place.

Values come from the environment and `.env`; `APP_ENV` picks a profile whose
defaults differ (test: in-memory friendly, prod: JSON logs). The README's
configuration table is checked against `Settings.model_fields` by a test.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Profile(StrEnum):
    dev = "dev"
    test = "test"
    prod = "prod"


DATA_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    app_env: Profile = Field(Profile.dev, description="Profile: dev, test or prod.")
    data_dir: Path = Field(DATA_DIR, description="Folder for the SQLite file, CrewAI storage and other local state.")
    # URLs may carry a password: kept out of repr() so a printed Settings shows none.
    database_url: str = Field(
        "", repr=False, description="SQLAlchemy URL; default a SQLite file under DATA_DIR. PostgreSQL: postgresql+psycopg://user@host/db."
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", repr=False, description="Redis for the RQ queue, progress pub/sub and rate limits.")
    queue_name: str = Field("investigations", description="RQ queue name.")
    job_timeout_s: int = Field(600, description="Hard limit for one investigation job.")
    job_retries: int = Field(2, description="How often a failed investigation job is retried before it is marked failed.")
    worker_sweep_interval_s: float = Field(
        60.0, description="How often a worker looks for abandoned jobs, stuck investigations and ones recorded while Redis was down."
    )
    worker_heartbeat_s: int = Field(
        10,
        ge=1,
        description="How often a busy worker renews its job's heartbeat. RQ calls a job abandoned 60 s after the last one, "
        "so a killed worker's run is retried or failed 60 s to 60 s + this after it died.",
    )
    source_deadline_s: float = Field(
        60.0, description="Longest wait for a change, deploy, metric or runbook source; later it is a degraded entry."
    )
    log_read_deadline_s: float = Field(
        120.0, description="Longest time spent reading one log source; the evidence covers what was read by then."
    )
    services_file: Path | None = Field(None, description="Service catalog YAML (see services.example.yaml).")
    ops_alert_period_s: int = Field(
        3600, gt=0, description="An ops alert (catalog defaults.ops_notify) is sent once per this period for the same signal and subject."
    )
    ops_source_failures: int = Field(
        3,
        ge=0,
        description="An ops alert is sent when a source failed (a degraded entry names it) this many investigations in a row (0: never).",
    )
    ops_queue_depth: int = Field(
        100, ge=0, description="A worker's sweep sends an ops alert when this many jobs wait in the queue (0: never)."
    )
    ops_queue_age_s: float = Field(
        600.0, ge=0, description="A worker's sweep sends an ops alert when the oldest waiting job has waited this long (0: never)."
    )
    public_url: str = Field("http://127.0.0.1:8000", description="Base URL of the web process, for links in Slack and Jira.")

    slack_bot_token: SecretStr | None = Field(None, description="Bot token (xoxb-...).")
    slack_signing_secret: SecretStr | None = Field(None, description="Signing secret that verifies Slack requests.")
    slack_app_token: SecretStr | None = Field(None, description="App-level token (xapp-...); set it to run in Socket Mode.")
    slack_api_url: str = Field("https://slack.com/api/", description="Base URL of the Slack Web API (tests point it at a stand-in).")
    slack_watched_channels: list[str] = Field(
        default_factory=list, description="Channel ids where PagerDuty posts start investigations (empty: every channel the bot is in)."
    )
    slack_pagerduty_bot_ids: list[str] = Field(
        default_factory=list, description="bot_id/app_id values of the PagerDuty app (empty: the PagerDuty app's well-known app id)."
    )
    slack_allowed_channels: list[str] = Field(
        default_factory=list, description="If set, /investigate and Create Jira only work in these channel ids."
    )
    slack_allowed_users: list[str] = Field(
        default_factory=list, description="If set, only these user ids may use /investigate and Create Jira."
    )

    pagerduty_webhook_secrets: list[SecretStr] = Field(
        default_factory=list, description="Signing secrets of PagerDuty v3 webhook subscriptions (several while rotating)."
    )
    pagerduty_service_map: dict[str, str] = Field(
        default_factory=dict, description="PagerDuty service name or id -> catalog service, beyond the catalog's aliases."
    )

    pagerduty_api_token: SecretStr | None = Field(
        None, description="REST API token: reads the incident behind a PagerDuty alert and adds the report as a note (unset: neither)."
    )
    pagerduty_from_email: str | None = Field(
        None, description="E-mail of a PagerDuty user, sent as the From header of notes (required for writes)."
    )
    pagerduty_api_url: str = Field(
        "https://api.pagerduty.com", description="Base URL of the PagerDuty REST API (EU: https://api.eu.pagerduty.com)."
    )
    incident_read_deadline_s: float = Field(
        20.0, description="Longest wait for the paging tool's incident, alerts and timeline before an investigation goes on without them."
    )

    servicenow_url: str | None = Field(None, description="ServiceNow instance URL (https://example.service-now.com).")
    servicenow_user: str | None = Field(None, description="ServiceNow user for basic auth (with SERVICENOW_PASSWORD).")
    servicenow_password: SecretStr | None = Field(None, description="Password of SERVICENOW_USER.")
    servicenow_token: SecretStr | None = Field(None, description="OAuth bearer token, instead of SERVICENOW_USER/SERVICENOW_PASSWORD.")
    servicenow_assignment_group: str | None = Field(
        None, description="Assignment group (name or sys_id) of incidents the responder creates."
    )

    openai_api_key: SecretStr | None = Field(None, description="Enables the LLM crew; unset means the offline analyst.")
    openai_base_url: str | None = Field(None, description="OpenAI-compatible endpoint (Azure OpenAI, vLLM, Ollama ...).")
    llm_model: str = Field("gpt-4o-mini", description="Model name at that endpoint.")
    llm_timeout_s: float = Field(30.0, description="Timeout of one LLM call.")
    llm_max_retries: int = Field(2, description="Retries of one LLM call on timeouts, 5xx and 429.")
    llm_deadline_s: float = Field(120.0, description="Hard deadline for the whole crew run.")
    llm_token_budget: int = Field(15_000, description="Input tokens allowed across all LLM calls of one investigation.")

    jira_url: str | None = Field(None, description="Jira base URL.")
    jira_user: str | None = Field(None, description="Jira user (email for Jira Cloud).")
    jira_api_token: SecretStr | None = Field(None, description="Jira API token.")
    jira_project: str = Field("OPS", description="Jira project key when the catalog names none.")

    qdrant_url: str | None = Field(
        None, repr=False, description="Qdrant server for the incident history (unset: qdrant-client local mode under DATA_DIR/qdrant)."
    )
    qdrant_api_key: SecretStr | None = Field(None, description="API key of that Qdrant server.")
    embeddings: str = Field(
        "auto", description="Embedder for the incident history: auto, endpoint, local (all-MiniLM-L6-v2, extra 'embeddings'), lexical."
    )
    embeddings_model: str = Field("", description="Model at the OpenAI-compatible embeddings endpoint (OPENAI_BASE_URL, OPENAI_API_KEY).")
    embeddings_dim: int = Field(1536, description="Length of that endpoint model's vectors.")
    similar_incidents_max: int = Field(3, description="Most similar past incidents shown in a report (0 turns the search off).")

    artifacts_url: str = Field(
        "",
        description="Finished reports as files: a folder, s3://bucket/prefix or gs://bucket/prefix (default DATA_DIR/reports).",
    )
    artifacts_endpoint_url: str | None = Field(
        None, description="S3 or GCS endpoint for that store (MinIO, an emulator); default the cloud's own."
    )
    artifacts_link_ttl_s: int = Field(7 * 86400, description="Lifetime of a presigned link to a report in a private bucket.")
    artifacts_retention_days: int = Field(90, description="Reports older than this are removed from the artifact store (0 keeps them).")
    report_links: str = Field(
        "dashboard", description="What report links in notifications point at: dashboard, or artifact (the stored HTML report)."
    )

    log_format: str = Field("console", description="json or console.")
    log_level: str = Field("info", description="Minimum log level.")
    templates_dir: Path | None = Field(None, description="Folder whose Jinja2 templates override the built-in report templates.")
    redaction_patterns: list[str] = Field(
        default_factory=list, description="Extra regular expressions whose matches are redacted from evidence."
    )
    otel_exporter_otlp_endpoint: str | None = Field(None, description="OTLP/HTTP endpoint for traces; tracing export is off when unset.")

    api_rate_limit_per_key: str = Field(
        "600/minute", description="REST API requests allowed per API key (limits syntax: 600/minute, 20/second)."
    )
    api_rate_limit_per_ip: str = Field("1200/minute", description="Requests allowed per client IP address, signed in or not.")
    max_request_bytes: int = Field(1_048_576, description="Largest request body accepted by any endpoint (413 above it).")
    session_secret: SecretStr | None = Field(
        None, description="Signs dashboard session cookies; set it when running several web processes (unset: random per process)."
    )

    @field_validator("embeddings")
    @classmethod
    def _known_embedder(cls, value: str) -> str:
        if value not in ("auto", "endpoint", "local", "lexical"):
            raise ValueError("EMBEDDINGS must be auto, endpoint, local or lexical")
        return value

    @field_validator("report_links")
    @classmethod
    def _known_links(cls, value: str) -> str:
        if value not in ("dashboard", "artifact"):
            raise ValueError("REPORT_LINKS must be dashboard or artifact")
        return value

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in ("json", "console"):
            raise ValueError("LOG_FORMAT must be json or console")
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'incident-responder.db'}"

    @property
    def llm_enabled(self) -> bool:
        return self.openai_api_key is not None and bool(self.openai_api_key.get_secret_value())


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    settings = Settings()
    if settings.app_env is Profile.prod and "LOG_FORMAT" not in _env_keys():
        settings.log_format = "json"
    return settings


def _env_keys() -> set[str]:
    import os

    return {k.upper() for k in os.environ}


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment between cases)."""
    get_settings.cache_clear()
