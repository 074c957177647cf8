"""What the AWS log kinds (`cloudwatch`, `s3`) share: one boto3 client per source, and AWS errors as our errors.

Credentials come from boto3's own chain (a named profile, `AWS_*` variables, SSO, the
instance or task role), never from the catalog. botocore's own retries are off: a
throttled call is retried by the store's session, which waits within the source
deadline, so that one read never outlives it in hidden retries.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from integrations.errors import SourceError
from integrations.logs.store import StoreOptions
from integrations.remote_calls import RetryableError

# Error codes AWS answers when it wants the caller to slow down (CloudWatch Logs, S3, STS).
_THROTTLED = frozenset(
    {"ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown"}
)
# Codes for a failure on AWS's side that a later try may not meet.
_TRANSIENT = frozenset({"ServiceUnavailableException", "ServiceUnavailable", "InternalFailure", "InternalError", "RequestTimeout"})
# Codes saying the credentials are missing, wrong, expired or not allowed.
_REFUSED = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "ExpiredToken",
        "ExpiredTokenException",
        "AllAccessDisabled",
    }
)
_MAX_MESSAGE = 200


class AwsOptions(StoreOptions):
    """Where the AWS API is: region, endpoint and profile; credentials come from the AWS chain."""

    region: str | None = Field(None, description="AWS region, e.g. eu-west-1 (default: the profile's or AWS_REGION)")
    endpoint_url: str | None = Field(None, description="API endpoint instead of AWS's own (a VPC endpoint, LocalStack, moto)")
    profile: str | None = Field(None, description="named profile of ~/.aws/config to take credentials and region from")


def client(service: str, options: AwsOptions, where: str) -> Any:
    """A boto3 client without botocore's retries, each request bounded by the source's timeout."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=options.timeout_s,
        read_timeout=options.timeout_s,
        user_agent_extra="incident-responder",
        # S3-compatible endpoints (MinIO, a VPC endpoint by IP) rarely answer bucket host names.
        s3={"addressing_style": "path"} if options.endpoint_url else None,
    )
    try:
        session = boto3.session.Session(profile_name=options.profile, region_name=options.region)
        return session.client(service, endpoint_url=options.endpoint_url, config=config)
    except BotoCoreError as exc:
        raise SourceError(f"{where}: {_botocore_text(exc)}") from None


def where(service: str, options: AwsOptions, region: str | None) -> str:
    """How errors name the API: its endpoint when one is set, else the region."""
    if options.endpoint_url:
        return f"{service} at {options.endpoint_url}"
    return f"{service} in {region or 'the default region'}"


def api_error(exc: Exception, where: str, *, missing: str, grant: str) -> SourceError:
    """An exception of a boto3 call as the error a responder can act on; `RetryableError` when another try may work.

    `missing` says what a not-found answer means ("log group /aws/x"), `grant` the
    permissions the credentials need, named when AWS refuses them.
    """
    from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        message = " ".join(str(error.get("Message", "")).split())[:_MAX_MESSAGE]
        said = f"{code}{': ' + message if message else ''}"
        if code in _THROTTLED or status == 429:
            return RetryableError(f"{where} throttled the read ({said})")
        if code in _TRANSIENT or status >= 500:
            return RetryableError(f"{where} answered {status} ({said})")
        if code in _REFUSED or status in (401, 403):
            return SourceError(f"{where} refused the credentials ({said}); they need {grant}")
        if code in ("ResourceNotFoundException", "NoSuchBucket", "NoSuchKey") or status == 404:
            return SourceError(f"{where} has no {missing} ({code})")
        return SourceError(f"{where} answered {said}")
    if isinstance(exc, ConnectTimeoutError | ReadTimeoutError):
        return RetryableError(f"{where} did not answer in time ({type(exc).__name__})")
    if isinstance(exc, EndpointConnectionError):
        return SourceError(f"{where} cannot be reached")
    if isinstance(exc, BotoCoreError):
        return SourceError(f"{where}: {_botocore_text(exc)}")
    return SourceError(f"{where}: {type(exc).__name__}")


def _botocore_text(exc: Exception) -> str:
    from botocore.exceptions import NoCredentialsError, NoRegionError, PartialCredentialsError, ProfileNotFound

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return "no AWS credentials found (a profile, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, SSO or an instance or task role)"
    if isinstance(exc, NoRegionError):
        return "no AWS region: set the source's region option or AWS_REGION"
    if isinstance(exc, ProfileNotFound):
        return f"{exc} in the AWS config files"
    # botocore's messages are one line and carry no secret; keep them short all the same.
    return " ".join(str(exc).split())[:_MAX_MESSAGE] or type(exc).__name__
