#!/usr/bin/env python3
"""One h2load run as one JSON line, in the shape of bench/'s loadgen output.

usage: h2load_json.py STDOUT LOGFILE CONCURRENCY CONNS DURATION WARMUP [LABEL]

STDOUT is what h2load printed, LOGFILE its --log-file (tab-separated: request start in µs
since the epoch, HTTP status, µs until the end of the response; status -1 for a failed
stream). scripts/bench.sh uses it for every side of every h2load scenario, so all sides'
figures are computed by the same code.

- rps: h2load's own "finished in …, N req/s" (the measured window; the warm-up is not in it).
- ok / errors: h2load's "requests:" line (succeeded; failed + errored; -1 if the line is
  missing, which the table then lists as a warning).
- p50/p90/p99/max_us: nearest-rank percentiles of the latencies of the 2xx rows of the log.
  h2load 1.52 logs only the measured window, but it appends to an existing file: bench.sh
  deletes the file before each run, and as a second guard only the latest `total` rows (by
  start time) are used, `total` being h2load's own request count.
- WARMUP is not used for any figure; it is recorded with the run's settings.
"""
import json
import math
import re
import sys


def requests_line(text):
    """h2load's 'requests: T total, S started, D done, OK succeeded, F failed, E errored'."""
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored", text)
    if not m:
        return None
    total, _started, _done, ok, failed, errored = (int(x) for x in m.groups())
    return {"total": total, "ok": ok, "errors": failed + errored}


def throughput(text):
    m = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", text)
    return float(m.group(1)) if m else 0.0


def log_rows(path):
    rows = []
    with open(path) as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 3:
                continue
            try:
                rows.append((int(cols[0]), cols[1], int(cols[2])))
            except ValueError:
                continue
    rows.sort()
    return rows


def nearest_rank(sorted_values, p):
    """The smallest value with at least p % of the values at or below it."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def main(argv):
    if len(argv) < 7:
        sys.exit(__doc__)
    stdout_path, log_path, conc, conns, duration, warmup = argv[1:7]
    label = argv[7] if len(argv) > 7 else ""
    with open(stdout_path) as f:
        text = f.read()
    counts = requests_line(text)
    rows = log_rows(log_path)
    if counts and counts["total"]:
        rows = rows[-counts["total"]:]
    latencies = sorted(us for _start, status, us in rows if status.startswith("2"))
    print(json.dumps({
        "tool": "h2load", "label": label, "concurrency": int(conc), "conns": int(conns),
        "duration_s": float(duration), "warmup_s": float(warmup),
        "ok": counts["ok"] if counts else 0,
        "errors": counts["errors"] if counts else -1,
        "rps": round(throughput(text)), "logged": len(latencies),
        "p50_us": nearest_rank(latencies, 50), "p90_us": nearest_rank(latencies, 90),
        "p99_us": nearest_rank(latencies, 99), "max_us": latencies[-1] if latencies else 0,
    }))


if __name__ == "__main__":
    main(sys.argv)
