"""P2: accept latency p50/p99 at half of P1's maximum, open loop (calls start at fixed
times; latency runs from the scheduled start), next to the no-op server at the same rate.
"""

from __future__ import annotations

import re

from figures import Figure
from harness import SLOW_STATEMENT_MS, Bench
from load import LoadRun, run_load
from procstats import with_children

NAME = "P2"
TARGET_P99_MS = 10.0
LOAD_FRACTION = 0.5


def run(bench: Bench) -> list[Figure]:
    warmup, duration = (1.0, 3.0) if bench.quick else (2.0, 10.0)
    database = bench.database("p2")
    env = bench.service_env(database, "p2")
    first = bench.index_block()
    with bench.services("p2") as services:
        noop, noop_target = services.noop_server()
        gateway, gateway_target = services.gateway(env)
        max_rate = bench.results.get("p1_max_rate")
        if max_rate is None:
            # Run alone: measure the maximum the way P1 does, briefly.
            probe = run_load(
                gateway_target,
                mode="closed",
                warmup=1.0,
                duration=3.0,
                first_index=first,
                processes={},
            )
            max_rate = probe.rate
            first += probe.ok_total + probe.error_count
            print(f"  maximum (closed loop, 3 s): {max_rate:,.0f} req/s")
        rate = LOAD_FRACTION * max_rate
        print(f"  offered load: {rate:,.0f} req/s (half of {max_rate:,.0f})", flush=True)
        runs: dict[str, LoadRun] = {}
        for name, target, pid in (
            ("no-op server", noop_target, noop.pid),
            ("gateway", gateway_target, gateway.pid),
        ):
            processes = {"server": with_children(pid)}
            if name == "gateway":
                processes.update(bench.backend_pids())
                log_start = bench.postgres.log_path.stat().st_size
            runs[name] = run_load(
                target,
                mode="open",
                rate=rate,
                warmup=warmup,
                duration=duration,
                first_index=first,
                processes=processes,
            )
            r = runs[name]
            print(
                f"  {name}: {r.rate:,.0f} req/s answered, p50 {r.p(0.5):.2f} ms, "
                f"p99 {r.p(0.99):.2f} ms, max {max(r.latencies_ms, default=0):.1f} ms, "
                f"errors {r.error_count}; {r.describe_cpu()}",
                flush=True,
            )
        gateway.require_alive()
    slow = slow_statements(bench.postgres.log_path.read_text()[log_start:])
    print(
        f"  PostgreSQL statements over {SLOW_STATEMENT_MS} ms in the gateway's window: "
        f"{len(slow)}"
        + (f", longest {max(ms for ms, _ in slow):.0f} ms: " if slow else "")
        + ", ".join(f"{what} {ms:.0f} ms" for ms, what in slow[:8])
    )
    gw, base = runs["gateway"], runs["no-op server"]
    figures = [
        Figure(NAME, "offered load (0.5 x P1 max)", rate, "req/s"),
        Figure(
            NAME,
            "accept latency p50",
            gw.p(0.5),
            "ms",
            baseline=base.p(0.5),
            baseline_name="no-op server, same rate",
        ),
        Figure(
            NAME,
            "accept latency p99",
            gw.p(0.99),
            "ms",
            baseline=base.p(0.99),
            baseline_name="no-op server, same rate",
            target=f"< {TARGET_P99_MS:.0f} ms",
            passed=gw.p(0.99) < TARGET_P99_MS,
        ),
        Figure(
            NAME,
            "accept latency max",
            max(gw.latencies_ms, default=0.0),
            "ms",
            baseline=max(base.latencies_ms, default=0.0),
            baseline_name="no-op server, same rate",
        ),
        Figure(NAME, "errors", gw.error_count, "calls", target="0", passed=gw.error_count == 0),
    ]
    for figure in figures:
        print(figure.line())
    return figures


_DURATION = re.compile(r"duration: ([0-9.]+) ms[ \t]+(?:statement|execute [^:]*):[ \t]*(\S*)")


def slow_statements(log: str) -> list[tuple[float, str]]:
    """(milliseconds, first word of the statement) of each slow statement PostgreSQL logged
    (an empty word is the extended protocol's EXECUTE of a prepared statement)."""
    return [(float(m.group(1)), m.group(2) or "EXECUTE") for m in _DURATION.finditer(log)]
