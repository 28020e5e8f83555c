"""Webhook: signed Twilio status callbacks accepted per second (signature checked, event
published to Kafka and acknowledged, answered 200) ÷ a bare Flask hello-world under the same
gunicorn settings, both driven by the same HTTP client in the same run; workers' peak RSS.
"""

from __future__ import annotations

import statistics
import sys

from figures import Figure
from harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    BENCH,
    HOST,
    PUBLIC_WEBHOOK_URL,
    WEBHOOK_THREADS,
    WEBHOOK_WORKERS,
    Bench,
    BenchError,
    metric_total,
)
from load import LoadRun, run_client
from procstats import with_children

NAME = "Webhook"
TARGET_RATIO = 0.6
# Kept-alive connections of the client: more than the 8 request threads (2 workers x 4),
# so every thread always has a request waiting.
CONNECTIONS = 16
RSS_TARGET_MIB = 200.0


def run(bench: Bench) -> list[Figure]:
    rounds, warmup, duration = (1, 1.0, 3.0) if bench.quick else (3, 2.0, 10.0)
    database = bench.database("webhook")  # only for the shared service environment
    env = bench.service_env(database, "webhook")
    bench.kafka.create_topics([env["KAFKA_TOPIC_EVENTS"]], partitions=12)
    hello_runs: list[LoadRun] = []
    webhook_runs: list[LoadRun] = []
    first_mid = 1
    with bench.services("webhook") as services:
        hello, hello_url = services.hello_app(env)
        webhook, webhook_url = services.webhook(env, public_url=PUBLIC_WEBHOOK_URL)
        print(
            f"  gunicorn: {WEBHOOK_WORKERS} workers x {WEBHOOK_THREADS} threads (gthread) "
            f"for both; client: {CONNECTIONS} kept-alive connections",
            flush=True,
        )
        for n in range(rounds):
            for label, service, url, runs in (
                ("hello-world", hello, hello_url, hello_runs),
                ("webhook", webhook, webhook_url, webhook_runs),
            ):
                argv = _client_argv(url, warmup, duration, first_mid)
                processes = {"server": with_children(service.pid)}
                if service is webhook:
                    processes["tansu"] = bench.backend_pids()["tansu"]
                runs.append(run_client(argv, processes))
                first_mid += runs[-1].ok_total + 1
                _print_run(f"{label}, round {n + 1}", runs[-1])
        webhook.require_alive()
        published = metric_total(webhook.metrics_url, "notifier_webhook_published_total")
    answered = sum(r.ok_total for r in webhook_runs)
    hello_rate = statistics.median(r.rate for r in hello_runs)
    webhook_rate = statistics.median(r.rate for r in webhook_runs)
    ratio = webhook_rate / hello_rate
    errors = sum(r.error_count for r in webhook_runs)
    figures = [
        Figure(
            NAME,
            "signed status callbacks accepted/s (published, acked, 200; median)",
            webhook_rate,
            "req/s",
            baseline=hello_rate,
            baseline_name="Flask hello-world, same gunicorn",
            ratio=ratio,
            target=f"ratio >= {TARGET_RATIO}",
            passed=ratio >= TARGET_RATIO,
        ),
        Figure(NAME, "callbacks not answered 200", errors, "req", target="0", passed=errors == 0),
        Figure(
            NAME,
            "events the webhook counted published",
            published,
            "events",
            baseline=answered,
            baseline_name="200s the client got",
            target="= 200s",
            passed=published == answered,
        ),
        Figure(
            NAME,
            "CPU per callback: webhook (master + workers)",
            _median_cpu(webhook_runs, "server"),
            "µs",
            baseline=_median_cpu(hello_runs, "server"),
            baseline_name="hello-world",
        ),
        Figure(NAME, "CPU per callback: Tansu (acks)", _median_cpu(webhook_runs, "tansu"), "µs"),
        Figure(
            NAME,
            "CPU per callback: load client",
            _median_cpu(webhook_runs, "client"),
            "µs",
            baseline=_median_cpu(hello_runs, "client"),
            baseline_name="same client, hello-world",
        ),
    ]
    figures += _memory_figures(bench)
    for figure in figures:
        print(figure.line())
    return figures


def _client_argv(url: str, warmup: float, duration: float, first_mid: int) -> list[str]:
    port = url.rsplit(":", 1)[1]
    argv = [sys.executable, str(BENCH / "httpload.py"), "--host", HOST, "--port", port]
    argv += ["--public-url", PUBLIC_WEBHOOK_URL, "--auth-token", AUTH_TOKEN]
    argv += ["--account-sid", ACCOUNT_SID, "--connections", str(CONNECTIONS)]
    argv += ["--warmup", str(warmup), "--duration", str(duration)]
    return [*argv, "--first-mid", str(first_mid)]


def _memory_figures(bench: Bench) -> list[Figure]:
    """Peak RSS of the webhook's workers (sum and largest) and its master, under load."""
    trees = {t.name: t for t in bench.tree_memory}
    masters = {m.name: m for m in bench.memory}
    workers = trees.get("webhook/webhook")
    master = masters.get("webhook/webhook")
    if workers is None or master is None:
        raise BenchError("the webhook's memory was not sampled")
    return [
        Figure(
            NAME,
            f"RSS of the {workers.children} workers together (sampled peak)",
            workers.sum_mib,
            "MiB",
        ),
        Figure(
            NAME,
            "RSS of the largest worker (VmHWM or sampled)",
            workers.max_mib,
            "MiB",
            target=f"< {RSS_TARGET_MIB:.0f} MiB",
            passed=workers.max_mib < RSS_TARGET_MIB,
        ),
        Figure(
            NAME,
            "RSS of the gunicorn master",
            master.peak_mib,
            "MiB",
            target=f"< {RSS_TARGET_MIB:.0f} MiB",
            passed=master.peak_mib < RSS_TARGET_MIB,
        ),
    ]


def _median_cpu(runs: list[LoadRun], name: str) -> float:
    return statistics.median(r.cpu_per_call_us()[name] for r in runs)


def _print_run(label: str, run: LoadRun) -> None:
    errors = f", errors {dict(run.errors)}" if run.errors else ""
    print(
        f"  {label}: {run.rate:,.0f} req/s{errors}; latency p50 {run.p(0.5):.2f} ms, "
        f"p99 {run.p(0.99):.2f} ms; {run.describe_cpu()}",
        flush=True,
    )
