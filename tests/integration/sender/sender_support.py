"""Helpers of the sender's integration tests: message rows, commands on the topic,
readers of the events and dead-letter topics, and sender replicas run in threads."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import psycopg2
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from notifier.common.config import DatabaseSettings, KafkaSettings, Topics
from notifier.common.domain.ids import MessageId
from notifier.common.domain.messages import SendCommand, StatusChange
from notifier.common.lifecycle import StopFlag
from notifier.common.payloads import decode_event, encode_send_command
from notifier.sender.main import SenderReplica
from notifier.sender.settings import SenderSettings, TwilioSettings
from notifier.twilio_emulator import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN
from tests.fixtures.kafka import consumer_config, producer_config
from tests.fixtures.waiting import random_suffix, wait_until


def random_number(prefix: str = "+4477009") -> str:
    """A fresh E.164 number, so tests sharing a database never share a recipient or sender."""
    return prefix + "".join(secrets.choice("0123456789") for _ in range(15 - len(prefix) + 1))


class Rows:
    """Inserts messages as the gateway would (QUEUED, with a seeded template)."""

    def __init__(self, url: str) -> None:
        self._url = url

    def insert(
        self,
        to: str,
        template: str = "order_confirmation",
        parameters: Mapping[str, str] | None = None,
        status: str = "QUEUED",
    ) -> SendCommand:
        [command] = self.insert_many([to], template, parameters, status)
        return command

    def insert_many(
        self,
        recipients: list[str],
        template: str = "order_confirmation",
        parameters: Mapping[str, str] | None = None,
        status: str = "QUEUED",
    ) -> list[SendCommand]:
        params = dict(parameters or {"order_id": f"ORD-{random_suffix()}"})
        variables = {str(i): value for i, value in enumerate(params.values(), start=1)}
        commands = []
        conn = psycopg2.connect(self._url, connect_timeout=5)
        try:
            with conn, conn.cursor() as cur:
                for to in recipients:
                    cur.execute(
                        "INSERT INTO messages (phone_number, template_id, parameters,"
                        " content_sid, content_variables, status)"
                        " SELECT %s, name, %s, content_sid, %s, %s FROM templates"
                        " WHERE name = %s RETURNING id, content_sid",
                        (to, json.dumps(params), json.dumps(variables), status, template),
                    )
                    row = cur.fetchone()
                    assert row is not None
                    commands.append(
                        SendCommand(
                            message_id=MessageId(row[0]),
                            to=to,
                            template_id=template,
                            content_sid=row[1],
                            content_variables=variables,
                            accepted_at=datetime.now(UTC),
                        )
                    )
        finally:
            conn.close()
        return commands

    def insert_session(self, to: str, body: str) -> SendCommand:
        """A session message (free-form text, no template), QUEUED."""
        conn = psycopg2.connect(self._url, connect_timeout=5)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO messages (phone_number, body) VALUES (%s, %s) RETURNING id",
                    (to, body),
                )
                row = cur.fetchone()
                assert row is not None
        finally:
            conn.close()
        return SendCommand(
            message_id=MessageId(row[0]),
            to=to,
            template_id="",
            content_sid=None,
            content_variables={},
            accepted_at=datetime.now(UTC),
            body=body,
        )

    def set_opt_out(self, phone: str, opted_out: bool, keyword: str) -> None:
        """Records an opt-out change as the recorder would after an inbound STOP/START."""
        conn = psycopg2.connect(self._url, connect_timeout=5)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO opt_outs (phone_number, opted_out, keyword, changed_at)"
                    " VALUES (%s, %s, %s, now()) ON CONFLICT (phone_number) DO UPDATE SET"
                    " opted_out = EXCLUDED.opted_out, keyword = EXCLUDED.keyword,"
                    " changed_at = EXCLUDED.changed_at",
                    (phone, opted_out, keyword),
                )
        finally:
            conn.close()

    def status_of(self, message_id: int) -> str:
        conn = psycopg2.connect(self._url, connect_timeout=5)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT status FROM messages WHERE id = %s", (message_id,))
                row = cur.fetchone()
                assert row is not None
                return str(row[0])
        finally:
            conn.close()


class Commands:
    """Produces send commands (or any bytes) to the outbound topic, keyed by recipient."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._producer = Producer(producer_config(bootstrap))
        self.topic = topic

    def send(self, *commands: SendCommand) -> None:
        for command in commands:
            self.raw(command.to.encode(), encode_send_command(command))
        self.flush()

    def raw(self, key: bytes | None, value: bytes) -> None:
        self._producer.produce(self.topic, value=value, key=key)

    def flush(self) -> None:
        assert self._producer.flush(10) == 0


class TopicReader:
    """Reads a topic from its start, keeping every record seen."""

    def __init__(self, bootstrap: str, topic: str, partitions: int = 1) -> None:
        self._consumer = Consumer(consumer_config(bootstrap, f"reader-{random_suffix()}"))
        self._consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        self.records: list[Message] = []

    def poll(self) -> list[Message]:
        for record in self._consumer.consume(500, 0.1):
            if record.error() is None:
                self.records.append(record)
        return self.records

    def events(self) -> list[StatusChange]:
        decoded = [decode_event(record.value() or b"") for record in self.poll()]
        return [e for e in decoded if isinstance(e, StatusChange)]

    def events_for(
        self, message_id: int, count: int = 1, timeout: float = 15
    ) -> list[StatusChange]:
        def found() -> list[StatusChange]:
            events = [e for e in self.events() if e.message_id == message_id]
            return events if len(events) >= count else []

        return wait_until(found, timeout=timeout, message=f"{count} event(s) for {message_id}")

    def close(self) -> None:
        self._consumer.close()


class StatusApplier:
    """A stand-in for the recorder: applies SENDING/FAILED results to the messages table."""

    def __init__(self, bootstrap: str, topic: str, database_url: str) -> None:
        self._reader = TopicReader(bootstrap, topic)
        self._url = database_url
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-applier", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = psycopg2.connect(self._url, connect_timeout=5)
        applied = 0
        try:
            while not self._stop.is_set():
                events = self._reader.events()
                with conn, conn.cursor() as cur:
                    for event in events[applied:]:
                        cur.execute(
                            "UPDATE messages SET status = %s WHERE id = %s AND status = 'QUEUED'",
                            (event.status.value, event.message_id),
                        )
                applied = len(events)
        finally:
            conn.close()
            self._reader.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass(frozen=True, slots=True)
class SenderTopics:
    outbound: str
    events: str
    dead_letter: str

    def as_topics(self) -> Topics:
        return Topics(self.outbound, self.events, self.dead_letter)


def sender_settings(
    database_url: str,
    bootstrap: str,
    topics: SenderTopics,
    emulator_url: str,
    whatsapp_from: str,
    **overrides: object,
) -> SenderSettings:
    settings = SenderSettings(
        database=DatabaseSettings(database_url),
        kafka=KafkaSettings(bootstrap, topics.as_topics(), partitions=1, session_timeout_ms=6000),
        twilio=TwilioSettings(
            account_sid=DEFAULT_ACCOUNT_SID,
            auth_token=DEFAULT_AUTH_TOKEN,
            whatsapp_from=whatsapp_from,
            api_url=emulator_url,
            timeout_seconds=5.0,
        ),
        public_webhook_url="https://hooks.example.com/",
        group_id=f"sender-{random_suffix()}",
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
        grace_seconds=5.0,
        metrics_port=0,
    )
    return replace(settings, **overrides)  # type: ignore[arg-type]


class RunningSender:
    """A sender replica on a thread of its own (own consumer, producer and pool)."""

    def __init__(self, settings: SenderSettings) -> None:
        self.replica_sender = settings.twilio.sender
        self.stop_flag = StopFlag()
        self.replica = SenderReplica(settings, self.stop_flag)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sender-replica", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.replica.run()
        except BaseException as exc:
            self.error = exc
            raise

    def wait_assigned(self, timeout: float = 20) -> None:
        wait_until(lambda: self.replica.consumer.assignment, timeout=timeout, message="assignment")

    def stop(self, timeout: float = 15) -> None:
        self.stop_flag.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "sender replica did not stop"
        assert self.error is None, self.error
