"""P1: durable accepts per second of the gateway ÷ a no-op grpcio server's replies per second,
both driven by the same closed-loop client in the same run; rows in PostgreSQL are counted.
"""

from __future__ import annotations

import statistics

from figures import Figure
from harness import Bench
from load import LoadRun, run_load
from procstats import with_children

NAME = "P1"
TARGET_RATIO = 0.6


def run(bench: Bench) -> list[Figure]:
    rounds, warmup, duration = (1, 1.0, 3.0) if bench.quick else (3, 2.0, 10.0)
    database = bench.database("p1")
    env = bench.service_env(database, "p1")
    first = bench.index_block()
    noop_runs: list[LoadRun] = []
    gateway_runs: list[LoadRun] = []
    with bench.services("p1") as services:
        noop, noop_target = services.noop_server()
        gateway, gateway_target = services.gateway(env)
        backends = bench.backend_pids()
        # Alternate the two servers, so a change in the machine's load hits both alike;
        # the idle one costs next to nothing meanwhile.
        for n in range(rounds):
            noop_runs.append(
                run_load(
                    noop_target,
                    mode="closed",
                    warmup=warmup,
                    duration=duration,
                    first_index=first,
                    processes={"server": with_children(noop.pid)},
                )
            )
            _print_run(f"no-op server, round {n + 1}", noop_runs[-1])
            gateway_runs.append(
                run_load(
                    gateway_target,
                    mode="closed",
                    warmup=warmup,
                    duration=duration,
                    first_index=first + sum(r.ok_total + r.error_count for r in gateway_runs),
                    processes={"gateway": with_children(gateway.pid), **backends},
                )
            )
            _print_run(f"gateway, round {n + 1}", gateway_runs[-1])
        gateway.require_alive()
    stored = bench.query(database, "SELECT count(*) FROM messages")[0][0]
    accepted = sum(r.ok_total for r in gateway_runs)
    noop_rate = statistics.median(r.rate for r in noop_runs)
    gateway_rate = statistics.median(r.rate for r in gateway_runs)
    bench.results["p1_max_rate"] = gateway_rate
    bench.results["p1_noop_rate"] = noop_rate
    errors = sum(r.error_count for r in gateway_runs)
    ratio = gateway_rate / noop_rate
    figures = [
        Figure(
            NAME,
            "durable accepts/s (median of rounds)",
            gateway_rate,
            "req/s",
            baseline=noop_rate,
            baseline_name="no-op grpcio server",
            ratio=ratio,
            target=f"ratio >= {TARGET_RATIO}",
            passed=ratio >= TARGET_RATIO,
        ),
        Figure(NAME, "accept errors", errors, "calls", target="0", passed=errors == 0),
        Figure(
            NAME,
            "rows in PostgreSQL",
            stored,
            "rows",
            baseline=accepted,
            baseline_name="ids returned",
            target="= ids returned",
            passed=stored == accepted,
        ),
    ]
    figures += _cpu_figures(noop_runs, gateway_runs)
    for figure in figures:
        print(figure.line())
    return figures


def _cpu_figures(noop_runs: list[LoadRun], gateway_runs: list[LoadRun]) -> list[Figure]:
    """Where the CPU goes, per reply (medians over the rounds): the evidence for the ratio."""
    noop = _median_cpu(noop_runs)
    gateway = _median_cpu(gateway_runs)
    figures = [
        Figure(
            NAME,
            f"CPU per accept: {name}",
            gateway[name],
            "µs",
            baseline=noop["server" if name == "gateway" else name],
            baseline_name=f"no-op {'server' if name == 'gateway' else name}",
        )
        for name in ("gateway", "client")
    ]
    figures += [
        Figure(NAME, f"CPU per accept: {name}", gateway[name], "µs")
        for name in ("postgres", "tansu")
    ]
    figures.append(
        Figure(
            NAME,
            "CPU per accept: all our processes",
            gateway["total"],
            "µs",
            baseline=noop["total"],
            baseline_name="no-op server + client",
        )
    )
    return figures


def _median_cpu(runs: list[LoadRun]) -> dict[str, float]:
    per_call = [run.cpu_per_call_us() for run in runs]
    return {name: statistics.median(c[name] for c in per_call) for name in per_call[0]}


def _print_run(label: str, run: LoadRun) -> None:
    errors = f", errors {dict(run.errors)}" if run.errors else ""
    print(
        f"  {label}: {run.rate:,.0f} req/s{errors}; latency p50 {run.p(0.5):.2f} ms, "
        f"p99 {run.p(0.99):.2f} ms; {run.describe_cpu()}",
        flush=True,
    )
