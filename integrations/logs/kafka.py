"""The `kafka` log kind: a topic of log messages read with a confluent-kafka consumer, for the window only.

Each partition is read from the first offset at or after the window's start
(`offsets_for_times`), and up to the end of the window: a message stamped past the
end, or the high watermark seen when the read began. A broker that cannot look up
offsets by time (old brokers, librdkafka's mock cluster) answers -1, which also means
"every message is older": the newest message tells which, and when it is not older the
partition is read from its earliest retained offset. Partitions are read one after the
other, each in its own order. The consumer is assigned partitions instead of joining
its group, never commits, and its group id is unique and thrown away: reading for an
investigation leaves no trace on the cluster.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from integrations import roles
from integrations.errors import SourceError
from integrations.logs.store import LogStore, Record, Session, StoreOptions
from integrations.logs.store_fields import first_page, flat_labels
from integrations.plugin import EnvVarName, SourceKind, secret_from_env
from integrations.remote_calls import RetryableError

if TYPE_CHECKING:
    from confluent_kafka import Consumer, KafkaError, Message

# Messages asked for per call: one page.
BATCH = 500
# librdkafka logs connection trouble by itself; it goes to our logging, not to the worker's stderr.
_LOG = logging.getLogger(__name__)


class KafkaOptions(StoreOptions):
    bootstrap_servers: str = Field(min_length=1, description="comma-separated host:port list of brokers to start from")
    topic: str = Field(min_length=1, description="topic the service's log messages are written to")
    keyed: str | None = Field(None, description="only messages whose Kafka key is this (e.g. the service name); default: every message")
    message_format: Literal["json", "text"] = Field(
        "json", description="json: each message is a JSON log object whose fields become labels; text: each message is a log line"
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="how to connect to the brokers (librdkafka security.protocol)"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism for SASL_* protocols"
    )
    sasl_username_env: EnvVarName | None = Field(None, description="environment variable holding the SASL user name")
    sasl_password_env: EnvVarName | None = Field(None, description="environment variable holding the SASL password")


class KafkaLogSource(LogStore):
    kind = "kafka"

    def __init__(self, options: KafkaOptions) -> None:
        self.options: KafkaOptions = options
        self._sasl: dict[str, str] = {}
        if options.sasl_mechanism:
            if not (options.sasl_username_env and options.sasl_password_env):
                raise SourceError("kafka: sasl_mechanism needs sasl_username_env and sasl_password_env")
            self._sasl = {
                "sasl.mechanism": options.sasl_mechanism,
                "sasl.username": secret_from_env(options.sasl_username_env, purpose="kafka SASL user").get_secret_value(),
                "sasl.password": secret_from_env(options.sasl_password_env, purpose="kafka SASL password").get_secret_value(),
            }
        super().__init__(options)

    def describe(self) -> str:
        keyed = f" with key {self.options.keyed!r}" if self.options.keyed is not None else ""
        return f"Kafka topic {self.options.topic!r}{keyed} at {self.options.bootstrap_servers}"

    def _consumer(self) -> Consumer:
        from confluent_kafka import Consumer

        return Consumer(
            {
                "bootstrap.servers": self.options.bootstrap_servers,
                "security.protocol": self.options.security_protocol,
                **self._sasl,
                # Unique and never committed to: the group exists only for this read.
                "group.id": f"incident-responder-read-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "allow.auto.create.topics": False,
                # A fetch returns after 100 ms even when short: the end of the window is often the end of the topic.
                "fetch.wait.max.ms": 100,
                "socket.timeout.ms": max(1100, int(self.options.timeout_s * 1000)),
                "logger": _LOG,
            }
        )

    def pages(self, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        consumer = self._consumer()
        try:
            for partition in self._partitions(consumer, session):
                yield from self._partition(consumer, partition, start, end, session)
        finally:
            consumer.close()

    def _partitions(self, consumer: Consumer, session: Session) -> list[int]:
        topic = self.options.topic
        metadata = session.call(lambda: _kafka(lambda: consumer.list_topics(topic, timeout=session.timeout())), what=self._where())
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            reason = found.error.str() if found is not None and found.error is not None else "not in the metadata"
            raise SourceError(
                f"{self._where()}: topic {topic!r} cannot be read ({reason}); check the name and the consumer's READ and DESCRIBE ACLs"
            )
        return sorted(found.partitions)

    def _partition(self, consumer: Consumer, partition: int, start: datetime, end: datetime, session: Session) -> Iterator[list[Record]]:
        from confluent_kafka import TopicPartition

        topic, where = self.options.topic, self._where()
        low, high = session.call(
            lambda: _kafka(lambda: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=session.timeout())),
            what=where,
        )
        if high <= low:
            return
        start_ms, end_ms = _ms(start), _ms(end)
        [by_time] = session.call(
            lambda: _kafka(lambda: consumer.offsets_for_times([TopicPartition(topic, partition, start_ms)], timeout=session.timeout())),
            what=where,
        )
        first = by_time.offset if by_time.error is None and by_time.offset >= 0 else None
        if first is None:
            newest = self._messages_at(consumer, partition, high - 1, 1, session)
            stamp = _stamp(newest[0]) if newest else None
            if stamp is None or stamp < start_ms:
                return
            first = low
        offset = max(first, low)
        consumer.assign([TopicPartition(topic, partition, offset)])
        while offset < high:
            # No more than the partition holds up to its watermark: a consume asked for more waits out its whole timeout.
            wanted = min(BATCH, high - offset)
            messages = session.call(partial(_consume, consumer, wanted, session), what=where)
            page: list[Record] = []
            for message in messages:
                error = message.error()
                if error is not None:
                    _raise(error, where)
                stamp = _stamp(message)
                if stamp is not None and stamp > end_ms:
                    yield page
                    return
                position = message.offset()
                if position is not None:
                    offset = position + 1
                if self.options.keyed is None or message.key() == self.options.keyed.encode():
                    page.append(self._record(message, stamp, session))
            yield page
        consumer.unassign()

    def _messages_at(self, consumer: Consumer, partition: int, offset: int, count: int, session: Session) -> list[Message]:
        from confluent_kafka import TopicPartition

        consumer.assign([TopicPartition(self.options.topic, partition, offset)])
        messages = session.call(lambda: _kafka(lambda: consumer.consume(count, timeout=session.timeout())), what=self._where())
        consumer.unassign()
        return [m for m in messages if m.error() is None]

    def _record(self, message: Message, stamp: int | None, session: Session) -> Record:
        value = message.value() or b""
        line = value.decode("utf-8", errors="replace")
        labels = {"kafka.partition": str(message.partition()), "kafka.offset": str(message.offset())}
        key = message.key()
        if key is not None:
            labels["kafka.key"] = key.decode("utf-8", errors="replace")
        if self.options.message_format == "json":
            try:
                fields = json.loads(line)
            except ValueError:
                fields = None
            if isinstance(fields, dict):
                flat_labels(fields, into=labels)
            elif "not JSON" not in " ".join(session.account.partial):
                session.account.partial.append("some messages are not JSON objects: read as text lines")
        ts = datetime.fromtimestamp(stamp / 1000, UTC) if stamp is not None else None
        return Record(ts, line, labels)

    def _where(self) -> str:
        return f"Kafka at {self.options.bootstrap_servers}"


def _consume(consumer: Consumer, count: int, session: Session) -> list[Message]:
    return list(_kafka(lambda: consumer.consume(count, timeout=session.timeout())))


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _stamp(message: Message) -> int | None:
    from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

    kind, stamp = message.timestamp()
    return None if kind == TIMESTAMP_NOT_AVAILABLE or stamp < 0 else int(stamp)


def _kafka(call: Any) -> Any:
    """`call()` with librdkafka's errors as ours: transient ones (a broker away, a timeout) retryable."""
    from confluent_kafka import KafkaException

    try:
        return call()
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if error is None or not hasattr(error, "code"):
            raise SourceError(f"failed ({type(exc).__name__})") from None
        _raise(error, "")
        raise


def _raise(error: KafkaError, where: str) -> None:
    from confluent_kafka import KafkaError

    prefix = f"{where}: " if where else ""
    code = error.code()
    if (
        code
        in (
            KafkaError._TRANSPORT,
            KafkaError._TIMED_OUT,
            KafkaError._ALL_BROKERS_DOWN,
            KafkaError.REQUEST_TIMED_OUT,
            KafkaError.NOT_LEADER_FOR_PARTITION,
            KafkaError.LEADER_NOT_AVAILABLE,
        )
        or error.retriable()
    ):
        raise RetryableError(f"{prefix}brokers did not answer ({error.str()})")
    if code in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError._AUTHENTICATION):
        raise SourceError(f"{prefix}refused ({error.str()}); check the credentials and the READ and DESCRIBE ACLs on the topic")
    raise SourceError(f"{prefix}failed ({error.str()})")


def _check(source: KafkaLogSource) -> str:
    first = first_page(source, timedelta(minutes=15))
    return f"{source.describe()}: reachable, {first} messages in the last 15 minutes (first page)"


def _build(options: KafkaOptions, _base_dir: Path) -> KafkaLogSource:
    return KafkaLogSource(options)


KIND = SourceKind(
    name="kafka",
    role=roles.LOGS,
    options=KafkaOptions,
    build=_build,
    check=_check,
    summary="Kafka topic of log messages read for the window with confluent-kafka (never commits offsets)",
)
