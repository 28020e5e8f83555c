import pytest

from notifier.common.config import ConfigError, DatabaseSettings, Env, KafkaSettings
from notifier.common.kafka import consumer_config, producer_config


def test_every_problem_is_reported_at_once() -> None:
    env = Env({"A": "x", "B": "-3", "C": "maybe"})
    env.integer("A", 1)
    env.integer("B", 1, minimum=0)
    env.flag("C", False)
    env.text("MISSING")
    with pytest.raises(ConfigError) as caught:
        env.check()
    assert len(caught.value.problems) == 4
    message = str(caught.value)
    for name in ("A=", "B=", "C=", "MISSING is required"):
        assert name in message


def test_defaults_apply_when_unset_or_blank() -> None:
    env = Env({"N": "  "})
    assert env.integer("N", 5) == 5
    assert env.number("X", 0.5) == 0.5
    assert env.flag("Y", True) is True
    env.check()


def test_kafka_settings_take_extra_client_config() -> None:
    env = Env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
            "KAFKA_CONFIG_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_TOPIC_OUTBOUND": "custom.out",
        }
    )
    settings = KafkaSettings.from_env(env)
    env.check()
    assert settings.extra == {"security.protocol": "SASL_SSL"}
    assert settings.topics.outbound == "custom.out"
    assert settings.topics.events == "whatsapp.events.v1"
    assert "SASL_SSL" not in repr(settings)


def test_consumer_only_config_reaches_consumers_and_not_producers() -> None:
    env = Env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
            "KAFKA_CONFIG_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_CONSUMER_CONFIG_FETCH_WAIT_MAX_MS": "10",
        }
    )
    settings = KafkaSettings.from_env(env)
    env.check()
    consumer = consumer_config(settings, "group", "client")
    producer = producer_config(settings, "client")
    assert consumer["fetch.wait.max.ms"] == "10"
    assert consumer["security.protocol"] == producer["security.protocol"] == "SASL_SSL"
    assert "fetch.wait.max.ms" not in producer


def test_database_url_password_never_shows_in_repr() -> None:
    settings = DatabaseSettings.from_env(Env({"DATABASE_URL": "postgresql://u:s3cret@h/db"}))
    assert "s3cret" not in repr(settings)
    assert "postgresql://u:***@h/db" in repr(settings)
