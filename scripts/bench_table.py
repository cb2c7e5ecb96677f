#!/usr/bin/env python3
"""The table of one benchmark run: medians of the repetitions, gateway vs baseline.

usage: bench_table.py target/bench-results/<run>/results.jsonl

Reads the JSON lines scripts/bench.sh wrote and prints one markdown table: per scenario and
figure, the gateway's median, the baseline's median from the same run, their ratio
(gateway / baseline), and the issue-7 target where there is one.

When the run also measured an older build (PREVIOUS_BIN, side "previous"), a second table
"this build vs previous build" follows: for GetRefund and CreateRefund, per case, the
medians of both builds and their ratio (this / previous) for req/s, p99 and server CPU per
call, each marked ✓ when this build is no worse (req/s and CPU/call within NOISE, 3 %; p99
not above the previous build's), ✗ otherwise, and a one-line verdict.
"""
import json
import statistics
import sys
from collections import defaultdict

# What the A/B table forgives as noise on req/s and server CPU per call (not on p99).
NOISE = 0.03


def load(path):
    rows = []
    for line in open(path):
        line = line.strip()
        if line:
            r = json.loads(line)
            if isinstance(r.get("due_at_restart"), dict):
                r["_due_max"] = r["due_at_restart"].get("max_s")
            rows.append(r)
    return rows


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=None):
    if v is None:
        return "—"
    if digits is None:
        digits = 0 if abs(v) >= 100 else (1 if abs(v) >= 10 else 2)
    return f"{v:,.{digits}f}"


def ratio(g, b):
    if g is None or b is None or b == 0:
        return None
    return g / b


def main():
    rows = load(sys.argv[1])
    meta = next((r for r in rows if r.get("scenario") == "meta"), {})
    groups = defaultdict(list)
    for r in rows:
        if r.get("scenario") in (None, "meta", "list-populate"):
            continue
        key = (r["scenario"], r.get("case", ""), r["side"], r.get("stalled", 0))
        groups[key].append(r)

    def m(scenario, case, side, field, scale=1.0, stalled=0):
        vals = [r.get(field) for r in groups.get((scenario, case, side, stalled), [])]
        v = med([x for x in vals if isinstance(x, (int, float))])
        return None if v is None else v * scale

    def n(scenario, case, side, stalled=0):
        return len(groups.get((scenario, case, side, stalled), []))

    out = []
    reps = max((len(v) for v in groups.values()), default=0)
    out.append(f"Run {meta.get('run', '?')} · {meta.get('cpu', '?')} ({meta.get('cpus', '?')} vCPU, "
               f"{meta.get('hypervisor', '') or 'bare metal'}) · kernel {meta.get('kernel', '?')} · "
               f"{meta.get('rustc', '?')} · gateway {meta.get('gateway_commit', '?')} · "
               f"medians of {reps} reps · load avg at start {' '.join(meta.get('loadavg', []))}")
    out.append("")
    out.append("| scenario | case | figure | gateway | baseline | gw / base | target |")
    out.append("|---|---|---|---:|---:|---:|---|")

    def row(scenario, case, figure, g, b, target="", check=None, digits=None):
        r = ratio(g, b)
        mark = ""
        if check is not None:
            value = r if check[0] == "ratio" else g
            if value is not None:
                mark = " ✓" if check[1](value) else " ✗"
        out.append(f"| {scenario} | {case} | {figure} | {fmt(g, digits)} | {fmt(b, digits)} | "
                   f"{fmt(r, 2) if r is not None else '—'} | {target}{mark} |")

    cases = lambda scenario, side: sorted({k[1] for k in groups if k[0] == scenario and k[2] == side},
                                          key=lambda c: (len(c), c))

    # 1. GetRefund
    for case in cases("get", "gateway"):
        t64 = case == "c=64"
        row("GetRefund", case, "req/s", m("get", case, "gateway", "rps"), m("get", case, "baseline", "rps"),
            "≥ 0.60" if t64 else "", ("ratio", lambda r: r >= 0.60) if t64 else None)
        row("GetRefund", case, "p99 ms", m("get", case, "gateway", "p99_us", 1e-3), m("get", case, "baseline", "p99_us", 1e-3))
        row("GetRefund", case, "server CPU µs/call", m("get", case, "gateway", "server_cpu_us_per_req"),
            m("get", case, "baseline", "server_cpu_us_per_req"))
    # 2. CreateRefund
    for case in cases("create", "gateway"):
        t64 = case == "c=64"
        row("CreateRefund", case, "req/s", m("create", case, "gateway", "rps"), m("create", case, "baseline", "rps"),
            "≥ 0.25" if t64 else "", ("ratio", lambda r: r >= 0.25) if t64 else None)
        row("CreateRefund", case, "p99 ms (client)", m("create", case, "gateway", "p99_us", 1e-3),
            m("create", case, "baseline", "p99_us", 1e-3))
        own = groups.get(("create", case, "gateway", 0), [{}])
        src = "histogram" if own and own[0].get("own_source", "").startswith("refund_gateway") else "estimate"
        row("CreateRefund", case, f"gateway's own p99 ms ({src})", m("create", case, "gateway", "own_p99_ms"), None,
            "< 5 ms" if t64 else "", ("value", lambda v: v < 5) if t64 else None)
        row("CreateRefund", case, "provider (simulator) mean ms", m("create", case, "gateway", "provider_mean_ms"), None)
        row("CreateRefund", case, "server CPU µs/call", m("create", case, "gateway", "server_cpu_us_per_req"),
            m("create", case, "baseline", "server_cpu_us_per_req"))
    # 3. ListRefunds
    base_case = next(iter(cases("list", "baseline")), None)
    for case in cases("list", "gateway"):
        row("ListRefunds", case, "req/s", m("list", case, "gateway", "rps"), m("list", base_case, "baseline", "rps"))
        row("ListRefunds", case, "p99 ms", m("list", case, "gateway", "p99_us", 1e-3),
            m("list", base_case, "baseline", "p99_us", 1e-3))
    # 4. WatchRefunds
    for case in cases("watch", "gateway"):
        big = case.startswith("10000/")
        within = ("ratio", lambda r: r <= 1.5) if big else None
        t = "≤ 1.5" if big else ""
        row("WatchRefunds", case, "server CPU µs/delivery", m("watch", case, "gateway", "server_cpu_us_per_delivery"),
            m("watch", case, "baseline", "server_cpu_us_per_delivery"), t, within)
        row("WatchRefunds", case, "server KiB/subscriber", m("watch", case, "gateway", "server_kib_per_stream"),
            m("watch", case, "baseline", "server_kib_per_stream"), t, within)
        row("WatchRefunds", case, "time to reach all, p50 of events ms", m("watch", case, "gateway", "last_delivery_p50_us", 1e-3),
            m("watch", case, "baseline", "last_delivery_p50_us", 1e-3), t, within)
        row("WatchRefunds", case, "delivery p50 ms", m("watch", case, "gateway", "p50_us", 1e-3),
            m("watch", case, "baseline", "p50_us", 1e-3))
        row("WatchRefunds", case, "delivery p99 ms", m("watch", case, "gateway", "p99_us", 1e-3),
            m("watch", case, "baseline", "p99_us", 1e-3))
        if n("watch", case, "gateway", 1):
            for q in ("p50", "p99"):
                g1 = m("watch", case, "gateway", f"{q}_us", 1e-3, stalled=1)
                g0 = m("watch", case, "gateway", f"{q}_us", 1e-3)
                r = ratio(g1, g0)
                out.append(f"| WatchRefunds | {case} | delivery {q} ms, one subscriber stalled | {fmt(g1)} | "
                           f"{fmt(m('watch', case, 'baseline', f'{q}_us', 1e-3))} | {fmt(ratio(g1, m('watch', case, 'baseline', f'{q}_us', 1e-3)), 2)} | "
                           f"vs gateway unstalled: ×{fmt(r, 2)} |")
    # 5. Restart
    for case in cases("restart", "gateway"):
        row("Restart", f"{case} non-final", "time until all final s", m("restart", case, "gateway", "all_final_s"), None,
            "≤ 30 s (no baseline)", ("value", lambda v: v <= 30))
        row("Restart", f"{case} non-final", "time until 90% final s", m("restart", case, "gateway", "p90_final_s"), None,
            "no baseline")
        row("Restart", f"{case} non-final", "latest next check at restart s", m("restart", case, "gateway", "_due_max"), None,
            "no baseline")
        timed_out = sum(1 for r in groups[("restart", case, "gateway", 0)] if r.get("timed_out"))
        if timed_out:
            out.append(f"| Restart | {case} non-final | runs that timed out | {timed_out} | — | — | |")
    # 6. A noisy neighbour: tenant B's GetRefund with tenant A bursting over its limit
    # ("gateway" column) and with A quiet ("baseline" column; the ratio is bursting / quiet)
    if cases("noisy", "gateway"):
        for figure, field, scale in (("B req/s", "rps", 1.0), ("B p50 ms", "p50_us", 1e-3),
                                     ("B p99 ms", "p99_us", 1e-3), ("B errors", "errors", 1.0),
                                     ("A calls/s (mostly refused)", "a_calls_per_s", 1.0),
                                     ("A served", "a_served", 1.0)):
            row("Noisy neighbour", "A bursting / A quiet", figure,
                m("noisy", "noisy", "gateway", field, scale), m("noisy", "quiet", "gateway", field, scale))
    print("\n".join(out))

    ab = ab_table(meta, m, n, cases)
    if ab:
        print()
        print("\n".join(ab))

    # Health of the run: errors and loader saturation.
    warnings = []
    for (scenario, case, side, stalled), rs in sorted(groups.items()):
        for r in rs:
            if r.get("errors"):
                warnings.append(f"{scenario} {case} {side} rep {r.get('rep')}: {r['errors']} errors {r.get('first_error', '')}")
            if r.get("grpc_not_ok"):
                warnings.append(f"{scenario} {case} {side} rep {r.get('rep')}: {r['grpc_not_ok']} calls not OK at the gateway")
            if r.get("not_succeeded"):
                warnings.append(f"{scenario} {case} {side} rep {r.get('rep')}: {r['not_succeeded']} refunds not SUCCEEDED")
            if r.get("server_core_foreign_pct", 0) >= 15:
                warnings.append(f"{scenario} {case} {side} rep {r.get('rep')}: {r['server_core_foreign_pct']}% of the server's "
                                f"core went to other processes (noisy run)")
            if r.get("loader_cpu_pct", 0) >= 95:
                warnings.append(f"{scenario} {case} {side} rep {r.get('rep')}: loader CPU {r['loader_cpu_pct']}% (loader-bound?)")
            if "delivered" in r and r["delivered"] < r.get("expected", 0):
                warnings.append(f"{scenario} {case} {side} rep {r.get('rep')}: delivered {r['delivered']} of {r['expected']}")
    if warnings:
        print()
        print("Warnings:")
        for w in warnings:
            print(f"- {w}")


def ab_table(meta, m, n, cases):
    """This build ("gateway") against PREVIOUS_BIN ("previous"), measured in the same run."""
    scenarios = [(s, name) for s, name in (("get", "GetRefund"), ("create", "CreateRefund"))
                 if cases(s, "previous")]
    if not scenarios:
        return []

    def described(b):
        if not b:
            return "?"
        return f"`{b.get('path', '?')}` (sha256 {b.get('sha256', '?')}, file time {b.get('mtime', '?')})"

    out = ["### This build vs previous build", "",
           f"This build: {described(meta.get('gateway_bin'))}, commit {meta.get('gateway_commit', '?')}; "
           f"previous build: {described(meta.get('previous_bin'))}. Same run, interleaved.",
           "",
           f"Medians of the repetitions; ratio = this build / previous build. ✓ = this build is no "
           f"worse: req/s ≥ {1 - NOISE:.2f}× and server CPU/call ≤ {1 + NOISE:.2f}× "
           f"(allowing {NOISE * 100:.0f} % for noise), p99 ≤ 1.00× (no allowance).",
           "",
           "| scenario | case | figure | this build | previous | this / prev | no worse |",
           "|---|---|---|---:|---:|---:|:---:|"]
    checked, worse = 0, []
    for scenario, name in scenarios:
        all_cases = sorted(set(cases(scenario, "gateway")) | set(cases(scenario, "previous")),
                           key=lambda c: (len(c), c))
        p99_label = "p99 ms (client)" if scenario == "create" else "p99 ms"
        for case in all_cases:
            for figure, field, scale, ok in (
                    ("req/s", "rps", 1.0, lambda r: r >= 1 - NOISE),
                    (p99_label, "p99_us", 1e-3, lambda r: r <= 1.0),
                    ("server CPU µs/call", "server_cpu_us_per_req", 1.0, lambda r: r <= 1 + NOISE)):
                cur, prev = m(scenario, case, "gateway", field, scale), m(scenario, case, "previous", field, scale)
                r = ratio(cur, prev)
                mark = ""
                if r is not None:
                    checked += 1
                    mark = "✓" if ok(r) else "✗"
                    if mark == "✗":
                        worse.append(f"{name} {case} {figure} ×{r:.2f}")
                out.append(f"| {name} | {case} | {figure} | {fmt(cur)} | {fmt(prev)} | "
                           f"{fmt(r, 3) if r is not None else '—'} | {mark} |")
            runs = (n(scenario, case, "gateway"), n(scenario, case, "previous"))
            if runs[0] != runs[1]:
                out.append(f"| {name} | {case} | runs (this / previous) | {runs[0]} | {runs[1]} | — | "
                           f"unequal: a run failed |")
    out.append("")
    if not checked:
        out.append("No slower: not known (no figure measured on both builds).")
    elif worse:
        out.append(f"No slower: **no**, {len(worse)} of {checked} figures worse: {'; '.join(worse)}.")
    else:
        out.append(f"No slower: **yes**, all {checked} figures ✓.")
    return out


if __name__ == "__main__":
    main()
