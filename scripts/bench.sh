#!/usr/bin/env bash
# refund-gateway benchmark suite (issue 7). See BENCHMARKS.md for the method.
#
# Runs the REAL release binary (target/release/refund-gateway) on its embedded default (a
# fresh SQLite file in a fresh temp dir, the provider simulators in-process) pinned to core
# SERVER_CPU, loads it from processes pinned to core CLIENT_CPU, and runs the bare-tonic
# baseline (bench/src/bin/baseline_server.rs with its baseline_loadgen and baseline_fanout,
# built with the other bench tools) in the same run, interleaved: baseline, gateway,
# baseline, gateway... per repetition. Prints one table of medians and ratios; raw JSON
# lines go to target/bench-results/<run>/results.jsonl.
#
# Env knobs (defaults): REPS (5), DURATION (10 s), WARMUP (2 s), CONCS ("1 16 64 256"),
#   CONNS_MAX (4: N in flight over min(N,4) connections), SCENARIOS
#   ("get create list watch restart"), WATCH_CASES ("1000:10 10000:100" = streams:conns),
#   EVENTS (20 events per subscriber), INTERVAL_MS (250), LIST_COUNT (100000), LIST_DEPTH
#   (50000), LIST_CONC (64), RESTART_COUNT (10000), RESTART_REPS (REPS), RESTART_TIMEOUT (300),
#   RESTART_WORKER_TOML (""), SERVER_CPU/CLIENT_CPU (0/1), BASELINE_DIR (unset: the
#   repository's own baseline; set: the sources of another baseline crate with binaries
#   server, loadgen and fanout of the same interface, built from a copy in
#   target/bench-baseline), BUILD (1: cargo build everything first), ports GW_GRPC_PORT
#   (50061), GW_HTTP_PORT (8091), BASE_PORT (50062), RESTART_GRPC_PORT (50071),
#   RESTART_HTTP_PORT (8095).
#   PREVIOUS_BIN (unset): an older refund-gateway binary to hold the current build against
#   ("no slower"). The get and create scenarios then also run it in every repetition, side
#   "previous", started exactly like the gateway (embedded default, a fresh directory, the
#   same ports after the gateway has stopped, pinned to SERVER_CPU), the two alternating which
#   goes first; bench_table.py adds a "this build vs previous build" table.
#   Scenario "noisy" (not in the default SCENARIOS): tenant B's GetRefund with NOISY_B_CONC (16)
#   in flight while tenant A is quiet, then while A bursts with NOISY_A_CONC (64) in flight over
#   its limit of NOISY_A_RPS (50) calls/s, burst NOISY_A_BURST (100); alternating, REPS times.
#   SKIP_BASELINE (0): 1 leaves the bare-tonic baseline out of every scenario (nothing of it
#   is needed), for a run that only wants the A/B comparison.
#   GW_BIN (target/release/refund-gateway): the gateway binary measured as "this build", e.g.
#   a release binary of an earlier commit kept aside (with BUILD=0).
#
# Quick check while developing:  REPS=1 DURATION=3 WARMUP=1 CONCS=64 ./scripts/bench.sh
# This build against an older one:  SKIP_BASELINE=1 PREVIOUS_BIN=/path/to/old/refund-gateway \
#   SCENARIOS="get create" ./scripts/bench.sh
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPS="${REPS:-5}"; DURATION="${DURATION:-10}"; WARMUP="${WARMUP:-2}"
CONCS="${CONCS:-1 16 64 256}"; CONNS_MAX="${CONNS_MAX:-4}"
SCENARIOS="${SCENARIOS:-get create list watch restart}"
WATCH_CASES="${WATCH_CASES:-1000:10 10000:100}"; EVENTS="${EVENTS:-20}"; INTERVAL_MS="${INTERVAL_MS:-250}"
LIST_COUNT="${LIST_COUNT:-100000}"; LIST_DEPTH="${LIST_DEPTH:-50000}"; LIST_CONC="${LIST_CONC:-64}"
RESTART_COUNT="${RESTART_COUNT:-10000}"; RESTART_REPS="${RESTART_REPS:-$REPS}"
RESTART_TIMEOUT="${RESTART_TIMEOUT:-300}"; RESTART_WORKER_TOML="${RESTART_WORKER_TOML:-}"
SERVER_CPU="${SERVER_CPU:-0}"; CLIENT_CPU="${CLIENT_CPU:-1}"
BASELINE_DIR="${BASELINE_DIR:-}"
BUILD="${BUILD:-1}"
PREVIOUS_BIN="${PREVIOUS_BIN:-}"; SKIP_BASELINE="${SKIP_BASELINE:-0}"
NOISY_B_CONC="${NOISY_B_CONC:-16}"; NOISY_A_CONC="${NOISY_A_CONC:-64}"
NOISY_A_RPS="${NOISY_A_RPS:-50}"; NOISY_A_BURST="${NOISY_A_BURST:-100}"
GW_GRPC_PORT="${GW_GRPC_PORT:-50061}"; GW_HTTP_PORT="${GW_HTTP_PORT:-8091}"; BASE_PORT="${BASE_PORT:-50062}"
RESTART_GRPC_PORT="${RESTART_GRPC_PORT:-50071}"; RESTART_HTTP_PORT="${RESTART_HTTP_PORT:-8095}"

RUN_ID="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$ROOT/target/bench-results/$RUN_ID"
RESULTS="$OUT/results.jsonl"
WORK="$(mktemp -d /tmp/refund-gateway-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT   # set at once: the checks below may exit
GW_BIN="${GW_BIN:-$ROOT/target/release/refund-gateway}"   # GW_BIN: another build of this one to measure
TOOLS="$ROOT/target/release"            # loadgen, fanout, prepare, restart, baseline_* (bench/)
BASE_COPY="$ROOT/target/bench-baseline"   # only with BASELINE_DIR
if [ -z "$BASELINE_DIR" ]; then
  BASE_SERVER="$TOOLS/baseline_server"; BASE_LOADGEN="$TOOLS/baseline_loadgen"; BASE_FANOUT="$TOOLS/baseline_fanout"
else
  BASE_SERVER="$BASE_COPY/target/release/server"; BASE_LOADGEN="$BASE_COPY/target/release/loadgen"
  BASE_FANOUT="$BASE_COPY/target/release/fanout"
fi
GW_ADDR="http://127.0.0.1:$GW_GRPC_PORT"
GW_METRICS="http://127.0.0.1:$GW_HTTP_PORT/metrics"
BASE_ADDR="http://127.0.0.1:$BASE_PORT"
TCK="$(getconf CLK_TCK)"

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

# --- prerequisites and builds ---------------------------------------------------------------
if ! command -v h2load >/dev/null; then
  log "installing h2load (nghttp2-client)"
  apt-get install -y nghttp2-client >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y nghttp2-client >/dev/null; }
fi
for tool in taskset python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done
case "$SKIP_BASELINE" in 0|1) ;; *) echo "bench: SKIP_BASELINE is 0 or 1" >&2; exit 1 ;; esac
if [ -n "$PREVIOUS_BIN" ]; then
  # Absolute, because each server is started from its own working directory.
  if [ ! -f "$PREVIOUS_BIN" ] || [ ! -x "$PREVIOUS_BIN" ]; then
    echo "bench: PREVIOUS_BIN=$PREVIOUS_BIN is not an executable file" >&2; exit 1
  fi
  PREVIOUS_BIN="$(readlink -f "$PREVIOUS_BIN")"
fi
if [ "$BUILD" = 1 ]; then
  log "building the gateway, the bench tools and the baseline (release)"
  (cd "$ROOT" && cargo build --release --quiet)
  (cd "$ROOT" && cargo build --release --quiet --manifest-path bench/Cargo.toml --target-dir target)
  if [ "$SKIP_BASELINE" = 0 ] && [ -n "$BASELINE_DIR" ]; then
    [ -d "$BASELINE_DIR" ] || { echo "bench: no baseline at $BASELINE_DIR (set BASELINE_DIR, or SKIP_BASELINE=1)" >&2; exit 1; }
    log "building the baseline from a copy of $BASELINE_DIR"
    mkdir -p "$BASE_COPY"
    # Copy the sources only (its own target/ and results/ stay out).
    (cd "$BASELINE_DIR" && tar --exclude=./target --exclude=./results -cf - .) | (cd "$BASE_COPY" && tar -xf -)
    (cd "$BASE_COPY" && cargo build --release --quiet)
  fi
fi
NEEDED=("$GW_BIN" "$TOOLS/loadgen" "$TOOLS/fanout" "$TOOLS/prepare" "$TOOLS/restart" "$TOOLS/noisy")
[ "$SKIP_BASELINE" = 1 ] || NEEDED+=("$BASE_SERVER" "$BASE_LOADGEN" "$BASE_FANOUT")
for bin in "${NEEDED[@]}"; do
  [ -x "$bin" ] || { echo "bench: $bin missing (run with BUILD=1)" >&2; exit 1; }
done
if [ -n "$PREVIOUS_BIN" ] && cmp -s "$PREVIOUS_BIN" "$GW_BIN"; then
  log "note: PREVIOUS_BIN is the same binary as $GW_BIN (an A/A run: the differences are noise)"
fi
PORTS=("$GW_GRPC_PORT" "$GW_HTTP_PORT" "$RESTART_GRPC_PORT" "$RESTART_HTTP_PORT")
[ "$SKIP_BASELINE" = 1 ] || PORTS+=("$BASE_PORT")
for port in "${PORTS[@]}"; do
  if ss -ltnH "sport = :$port" | grep -q .; then
    echo "bench: port $port is in use; set GW_GRPC_PORT/GW_HTTP_PORT/BASE_PORT/RESTART_*_PORT" >&2; exit 1
  fi
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p "$OUT"   # only once the checks have passed: no empty result folders

# --- process helpers (every process is stopped by its PID) ----------------------------------
GW_PID=""; GW_SIDE=gateway; BASE_PID=""
stop_pid() { # PID SIGNAL
  local pid="$1"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "-$2" "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
  fi
}
stop_gw() { stop_pid "$GW_PID" TERM; GW_PID=""; }
stop_base() { stop_pid "$BASE_PID" INT; BASE_PID=""; }
# Each scenario runs in a subshell with this trap: on failure it keeps the logs in $OUT and
# says what was running; either way it stops the servers it started.
scenario_exit() {
  local status=$?
  if [ "$status" != 0 ]; then
    for dir in "$WORK"/*/; do
      [ -f "$dir/gateway.log" ] && cp "$dir/gateway.log" "$OUT/$(basename "$dir")-gateway.log"
    done
    [ -f "$WORK/baseline.log" ] && cp "$WORK/baseline.log" "$OUT/baseline.log"
    echo "bench: scenario failed (exit $status); $GW_SIDE pid ${GW_PID:-none}" \
      "$( [ -n "$GW_PID" ] && kill -0 "$GW_PID" 2>/dev/null && echo alive || echo gone)," \
      "baseline pid ${BASE_PID:-none} $( [ -n "$BASE_PID" ] && kill -0 "$BASE_PID" 2>/dev/null && echo alive || echo gone);" \
      "logs in $OUT" >&2
  fi
  stop_gw; stop_base
}

# start_gw DIR [SIDE]: the embedded default (SQLite file DIR/refund-gateway.db, in-process
# simulators) with only the listen addresses overridden, pinned to SERVER_CPU; with GW_CONFIG
# set, that config file instead of the embedded default (listen addresses still overridden).
# The tenants' default limits are raised far above what one core serves: the scenarios measure
# the gateway's work, not its refusals (the noisy scenario sets its tenants' own limits). Default log
# level (info). SIDE "gateway" (default) runs this build, "previous" PREVIOUS_BIN, in the very
# same way: same ports (only one of them runs at a time), same core, same environment.
start_gw() {
  local dir="$1" side="${2:-gateway}" bin="$GW_BIN"; mkdir -p "$dir"
  local limits=(REFUND_GATEWAY__LIMITS__REQUESTS_PER_SECOND=1000000000
    REFUND_GATEWAY__LIMITS__BURST=1000000000 REFUND_GATEWAY__LIMITS__WATCH_STREAMS=1000000)
  if [ "$side" = previous ]; then bin="$PREVIOUS_BIN"; fi
  # A build from before [limits] (no check-config either) refuses the unknown table: it has
  # no limits to raise.
  "$bin" check-config >/dev/null 2>&1 || limits=()
  ( cd "$dir" && exec env -u RUST_LOG -u REFUND_GATEWAY_CONFIG \
      REFUND_GATEWAY__SERVER__GRPC_LISTEN="127.0.0.1:$GW_GRPC_PORT" \
      REFUND_GATEWAY__SERVER__HTTP_LISTEN="127.0.0.1:$GW_HTTP_PORT" \
      "${limits[@]}" \
      taskset -c "$SERVER_CPU" "$bin" serve ${GW_CONFIG:+--config "$GW_CONFIG"} >"$dir/gateway.log" 2>&1 ) &
  GW_PID=$!; GW_SIDE="$side"
  for _ in $(seq 1 600); do
    grep -q "refund-gateway serving" "$dir/gateway.log" 2>/dev/null && return 0
    kill -0 "$GW_PID" 2>/dev/null || { cat "$dir/gateway.log" >&2; echo "bench: the $side ($bin) died" >&2; exit 1; }
    sleep 0.05
  done
  cat "$dir/gateway.log" >&2; echo "bench: the $side ($bin) is not serving" >&2; exit 1
}

# ab_sides REP: the gateway-like sides of repetition REP of the get and create scenarios.
# Without PREVIOUS_BIN just "gateway"; with it both, the first alternating from one repetition
# to the next, so that neither build always runs right after the baseline or always second.
ab_sides() {
  if [ -z "$PREVIOUS_BIN" ]; then echo gateway
  elif [ $(( $1 % 2 )) = 1 ]; then echo gateway previous
  else echo previous gateway
  fi
}

start_base() {
  taskset -c "$SERVER_CPU" "$BASE_SERVER" --addr "127.0.0.1:$BASE_PORT" "$@" >"$WORK/baseline.log" 2>&1 &
  BASE_PID=$!
  for _ in $(seq 1 200); do
    grep -q listening "$WORK/baseline.log" 2>/dev/null && break
    sleep 0.05
  done
  sleep 0.3
}

rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# one core's jiffies from /proc/stat: "tasks (user+nice+system) irq+softirq steal total"
cpu_stat() { awk -v c="cpu$1" '$1==c {print $2+$3+$4, $7+$8, $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
metric_sum() { # URL NAME LABEL_FILTER(regex on the label set)
  curl -s "$1" | awk -v n="$2" -v f="$3" '$1 ~ "^"n"\\{" && $1 ~ f {s+=$2} END {printf "%d", s}'
}

# record JSON EXTRA_FIELDS: tags a tool's JSON line and appends it to the results.
record() {
  local line="$1" extra="$2"
  line="${line%\}},$extra,\"run\":\"$RUN_ID\"}"
  echo "$line" >>"$RESULTS"
  echo "$line" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("  ", d.get("scenario"), d.get("side"), d.get("case",""), {k: d[k] for k in ("rps","p50_us","p99_us","own_p99_ms","server_cpu_us_per_delivery","server_kib_per_stream","last_delivery_p50_us","all_final_s","errors") if k in d})' >&2
}

# mstart PID / mend: CPU of the server process and of both cores around one loader run;
# mextra LINE: those as JSON fields (server CPU %, per request when LINE has rps, loader CPU %
# when the loader ran under /usr/bin/time, per-core busy, irq and steal %, and "foreign" load
# on the server's core: task time (user+system) the server process did not use, i.e. other
# processes' work; interrupt time (loopback networking) is reported apart).
mstart() {
  M_PID="$1"; rm -f "$WORK/loader.time"
  M_C0S=$(cpu_stat "$SERVER_CPU"); M_C1S=$(cpu_stat "$CLIENT_CPU"); M_T0=$(cpu_ticks "$M_PID"); M_W0=$(date +%s.%N)
}
mend() {
  M_T1=$(cpu_ticks "$M_PID"); M_W1=$(date +%s.%N); M_C0E=$(cpu_stat "$SERVER_CPU"); M_C1E=$(cpu_stat "$CLIENT_CPU")
  M_RSS=$(rss_kib "$M_PID")
}
mextra() {
  python3 - "$M_T0" "$M_T1" "$M_W0" "$M_W1" "$TCK" "$WORK/loader.time" "$M_C0S" "$M_C0E" "$M_C1S" "$M_C1E" "$1" "$M_RSS" <<'EOF'
import json, os, sys
t0, t1, w0, w1, tck = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
def pct(a, b):  # tasks %, irq+softirq %, steal %
    a, b = [int(x) for x in a.split()], [int(x) for x in b.split()]; t = b[3] - a[3] or 1
    return [round(100 * (b[i] - a[i]) / t, 1) for i in range(3)]
cpu = 100 * (t1 - t0) / tck / (w1 - w0)
c0, c1 = pct(sys.argv[7], sys.argv[8]), pct(sys.argv[9], sys.argv[10])
out = {"server_cpu_pct": round(cpu, 1), "server_core_busy_pct": round(c0[0] + c0[1], 1),
       "server_core_irq_pct": c0[1], "server_core_steal_pct": c0[2],
       # task time on the server's core that the server process did not use: other processes
       "server_core_foreign_pct": round(max(0.0, c0[0] - cpu), 1),
       "loader_core_busy_pct": round(c1[0] + c1[1], 1), "loader_core_steal_pct": c1[2]}
if sys.argv[12]:
    out["server_rss_kib"] = int(sys.argv[12])
rps = json.loads(sys.argv[11]).get("rps")
if rps:
    out["server_cpu_us_per_req"] = round(cpu / 100 * 1e6 / rps, 1)
if os.path.exists(sys.argv[6]):
    u, s, e = (float(x) for x in open(sys.argv[6]).read().split()[:3])
    out["loader_cpu_pct"] = round(100 * (u + s) / e, 1) if e else 0
print(json.dumps(out)[1:-1])
EOF
}

# h2load_run SCENARIO SIDE CASE CONC PID URL BODY [METHOD]: one h2load run (gRPC frames),
# read by scripts/h2load_json.py (the same code for every side); METHOD: the gateway method whose OK/not-OK counters to
# read from /metrics around the run (h2load cannot read grpc-status).
h2load_run() {
  local scenario="$1" side="$2" case="$3" c="$4" pid="$5" url="$6" body="$7" method="${8:-}"
  local conns=$(( c < CONNS_MAX ? c : CONNS_MAX )); local m=$(( c / conns ))
  local ok0=0 all0=0 ok1=0 all1=0
  kill -0 "$pid" 2>/dev/null || { echo "bench: the $side server (pid $pid) is gone" >&2; return 1; }
  if [ -n "$method" ]; then
    ok0=$(metric_sum "$GW_METRICS" refund_gateway_grpc_requests_total "method=\"$method\",code=\"OK\"")
    all0=$(metric_sum "$GW_METRICS" refund_gateway_grpc_requests_total "method=\"$method\"")
  fi
  rm -f "$WORK/h2load.log"   # h2load appends to an existing log file
  mstart "$pid"
  /usr/bin/time -f '%U %S %e' -o "$WORK/loader.time" taskset -c "$CLIENT_CPU" \
    h2load -D "$DURATION" --warm-up-time "$WARMUP" -c "$conns" -m "$m" -t 1 \
    -H 'content-type: application/grpc' -H 'te: trailers' -d "$body" \
    --log-file "$WORK/h2load.log" "$url" >"$WORK/h2load.out" 2>&1
  mend
  local line; line=$(python3 "$ROOT/scripts/h2load_json.py" "$WORK/h2load.out" "$WORK/h2load.log" "$c" "$conns" "$DURATION" "$WARMUP" "rep$rep")
  local extra; extra="$(mextra "$line"),\"scenario\":\"$scenario\",\"side\":\"$side\",\"case\":\"$case\",\"rep\":$rep"
  if [ -n "$method" ]; then
    ok1=$(metric_sum "$GW_METRICS" refund_gateway_grpc_requests_total "method=\"$method\",code=\"OK\"")
    all1=$(metric_sum "$GW_METRICS" refund_gateway_grpc_requests_total "method=\"$method\"")
    extra="$extra,\"grpc_ok\":$((ok1 - ok0)),\"grpc_not_ok\":$(( (all1 - all0) - (ok1 - ok0) ))"
  fi
  record "$line" "$extra"
}

# --- the run's description ------------------------------------------------------------------
python3 - "$RUN_ID" "$ROOT" "$GW_BIN" "$PREVIOUS_BIN" <<'EOF' >>"$RESULTS"
import datetime, hashlib, json, os, platform, subprocess, sys
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return ""
def binary(path):  # which build a side ran: path, content hash, modification time
    if not path: return None
    with open(path, "rb") as f: digest = hashlib.sha256(f.read()).hexdigest()[:12]
    mtime = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
    return {"path": path, "sha256": digest, "mtime": mtime.strftime("%Y-%m-%dT%H:%M:%SZ")}
lscpu = dict(l.split(":", 1) for l in sh("lscpu").splitlines() if ":" in l)
print(json.dumps({"scenario": "meta", "run": sys.argv[1],
  "cpu": lscpu.get("Model name", "").strip(), "cpus": lscpu.get("CPU(s)", "").strip(),
  "hypervisor": lscpu.get("Hypervisor vendor", "").strip(), "kernel": platform.release(),
  "rustc": sh("rustc --version"), "h2load": sh("h2load --version | head -1"),
  "gateway_commit": sh(f"git -C {sys.argv[2]} rev-parse --short HEAD") + ("-dirty" if sh(f"git -C {sys.argv[2]} status --porcelain") else ""),
  "gateway_bin": binary(sys.argv[3]), "previous_bin": binary(sys.argv[4]),
  "loadavg": open("/proc/loadavg").read().split()[:3],
  "env": {k: os.environ.get(k) for k in ("REPS","DURATION","WARMUP","CONCS","SCENARIOS","WATCH_CASES","EVENTS","LIST_COUNT","RESTART_COUNT","PREVIOUS_BIN","SKIP_BASELINE","BASELINE_DIR") if os.environ.get(k)}}))
EOF
log "run $RUN_ID: REPS=$REPS DURATION=$DURATION WARMUP=$WARMUP CONCS=\"$CONCS\" SCENARIOS=\"$SCENARIOS\""
[ -z "$PREVIOUS_BIN" ] || log "previous build: $PREVIOUS_BIN (measured in the get and create scenarios)"
[ "$SKIP_BASELINE" = 0 ] || log "SKIP_BASELINE=1: no baseline runs"
log "results: $RESULTS"
[ "$SKIP_BASELINE" = 1 ] || "$BASE_LOADGEN" --dump-body "$WORK/echo.grpc" 2>/dev/null
BASE_ECHO_URL="$BASE_ADDR/bench.v1.RefundBench/CreateRefund"

# --- 1. GetRefund vs the baseline's unary echo (h2load) -------------------------------------
# get_serve SIDE DIR: start SIDE's server on a fresh store in DIR, create the one refund the
# runs read (body in $WORK/get-SIDE.grpc), and warm the server once (allocator, connections),
# as the baseline is warmed.
get_serve() {
  local side="$1" dir="$2"
  rm -rf "$dir"; start_gw "$dir" "$side"
  taskset -c "$CLIENT_CPU" "$TOOLS/prepare" get-body --addr "$GW_ADDR" --out "$WORK/get-$side.grpc" >/dev/null
  taskset -c "$CLIENT_CPU" h2load -D 2 -c 4 -m 16 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' \
    -d "$WORK/get-$side.grpc" "$GW_ADDR/refunds.v1.RefundService/GetRefund" >/dev/null 2>&1
}

scenario_get() {
  local url="$GW_ADDR/refunds.v1.RefundService/GetRefund" side c
  log "GetRefund at $CONCS in flight (h2load)$( [ -z "$PREVIOUS_BIN" ] || echo ", this build and the previous")$( [ "$SKIP_BASELINE" = 1 ] || echo ", baseline: unary echo (h2load)")"
  if [ "$SKIP_BASELINE" = 0 ]; then
    start_base
    taskset -c "$CLIENT_CPU" h2load -D 2 -c 4 -m 16 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' \
      -d "$WORK/echo.grpc" "$BASE_ECHO_URL" >/dev/null 2>&1
  fi
  if [ -z "$PREVIOUS_BIN" ]; then
    # One gateway for the whole scenario; per case: baseline, gateway.
    get_serve gateway "$WORK/get"
    for rep in $(seq 1 "$REPS"); do
      for c in $CONCS; do
        [ "$SKIP_BASELINE" = 1 ] || h2load_run get baseline "c=$c" "$c" "$BASE_PID" "$BASE_ECHO_URL" "$WORK/echo.grpc"
        h2load_run get gateway "c=$c" "$c" "$GW_PID" "$url" "$WORK/get-gateway.grpc" GetRefund
      done
    done
    stop_gw
  else
    # A/B: the two builds share the gateway's ports, so they cannot both stay up for the whole
    # scenario. Each repetition therefore RESTARTS both: per repetition, per side, a fresh
    # server on a fresh store with its one refund, the same 2 s warm-up, then every case of
    # CONCS, then stop. Both are treated alike (neither carries a longer-lived process, cache
    # or WAL into its runs), and which one goes first alternates per repetition (ab_sides).
    # The baseline (a port of its own) stays up and runs its cases first in each repetition.
    for rep in $(seq 1 "$REPS"); do
      if [ "$SKIP_BASELINE" = 0 ]; then
        for c in $CONCS; do
          h2load_run get baseline "c=$c" "$c" "$BASE_PID" "$BASE_ECHO_URL" "$WORK/echo.grpc"
        done
      fi
      for side in $(ab_sides "$rep"); do
        get_serve "$side" "$WORK/get-$side"
        for c in $CONCS; do
          h2load_run get "$side" "c=$c" "$c" "$GW_PID" "$url" "$WORK/get-$side.grpc" GetRefund
        done
        stop_gw
      done
    done
  fi
  stop_base
}

# --- 2. CreateRefund end to end vs the baseline's tonic loadgen -----------------------------
# create_run SIDE C CONNS: one loadgen run against a fresh server of SIDE (fresh store).
create_run() {
  local side="$1" c="$2" conns="$3" line
  rm -rf "$WORK/create-$side"; start_gw "$WORK/create-$side" "$side"
  mstart "$GW_PID"
  line=$(/usr/bin/time -f '%U %S %e' -o "$WORK/loader.time" taskset -c "$CLIENT_CPU" "$TOOLS/loadgen" \
    --addr "$GW_ADDR" --concurrency "$c" --conns "$conns" --duration "$DURATION" --warmup "$WARMUP" \
    --metrics "$GW_METRICS" --label "rep$rep")
  mend
  record "$line" "$(mextra "$line"),\"scenario\":\"create\",\"side\":\"$side\",\"case\":\"c=$c\",\"rep\":$rep"
  stop_gw
}

scenario_create() {
  log "CreateRefund at $CONCS in flight (bench loadgen, a fresh server per run)$( [ -z "$PREVIOUS_BIN" ] || echo ", this build and the previous")$( [ "$SKIP_BASELINE" = 1 ] || echo ", baseline: tonic loadgen")"
  if [ "$SKIP_BASELINE" = 0 ]; then
    start_base
    taskset -c "$CLIENT_CPU" "$BASE_LOADGEN" --addr "$BASE_ADDR" --concurrency 64 --duration 2 --warmup 0 >/dev/null
  fi
  # Per case: baseline, then this build and the previous one (alternating which goes first),
  # each on a fresh server.
  for rep in $(seq 1 "$REPS"); do
    for c in $CONCS; do
      local conns=$(( c < CONNS_MAX ? c : CONNS_MAX )) line side
      if [ "$SKIP_BASELINE" = 0 ]; then
        mstart "$BASE_PID"
        line=$(/usr/bin/time -f '%U %S %e' -o "$WORK/loader.time" taskset -c "$CLIENT_CPU" "$BASE_LOADGEN" \
          --addr "$BASE_ADDR" --concurrency "$c" --conns "$conns" --duration "$DURATION" --warmup "$WARMUP" --label "rep$rep")
        mend
        record "$line" "$(mextra "$line"),\"scenario\":\"create\",\"side\":\"baseline\",\"case\":\"c=$c\",\"rep\":$rep"
      fi
      for side in $(ab_sides "$rep"); do
        create_run "$side" "$c" "$conns"
      done
    done
  done
  stop_base
}

# --- 3. ListRefunds of a LIST_COUNT-refund store --------------------------------------------
# The store is made once through CreateRefund (real refunds, real path) and cached by the
# SQLite schema (migrations) and size, then copied into a fresh directory per run.
scenario_list() {
  local key cache
  key=$(cat "$ROOT"/src/store/sqlite/migrations/*.sql | sha256sum | cut -c1-12)
  cache="$ROOT/target/bench-cache/store-$LIST_COUNT-$key"
  if [ ! -f "$cache/refund-gateway.db" ]; then
    log "populating a $LIST_COUNT-refund store through CreateRefund (cached in $cache)"
    rm -rf "$WORK/populate"; start_gw "$WORK/populate"
    local line; line=$(taskset -c "$CLIENT_CPU" "$TOOLS/prepare" populate --addr "$GW_ADDR" --count "$LIST_COUNT" --concurrency 128)
    echo "${line%\}},\"scenario\":\"list-populate\"}" >>"$RESULTS"; log "$line"
    stop_gw
    mkdir -p "$cache"; cp "$WORK"/populate/refund-gateway.db* "$cache/"
  fi
  log "ListRefunds (page_size 50, first page and $LIST_DEPTH deep) at $LIST_CONC in flight$( [ "$SKIP_BASELINE" = 1 ] || echo ", baseline: unary echo")"
  rm -rf "$WORK/list"; mkdir -p "$WORK/list"; cp "$cache"/refund-gateway.db* "$WORK/list/"
  [ "$SKIP_BASELINE" = 1 ] || start_base
  start_gw "$WORK/list"
  taskset -c "$CLIENT_CPU" "$TOOLS/prepare" list-bodies --addr "$GW_ADDR" --first "$WORK/list-first.grpc" \
    --deep "$WORK/list-deep.grpc" --depth "$LIST_DEPTH" --page-size 50 >/dev/null
  local url="$GW_ADDR/refunds.v1.RefundService/ListRefunds"
  taskset -c "$CLIENT_CPU" h2load -D 2 -c 4 -m 16 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' \
    -d "$WORK/list-first.grpc" "$url" >/dev/null 2>&1
  for rep in $(seq 1 "$REPS"); do
    [ "$SKIP_BASELINE" = 1 ] || h2load_run list baseline "c=$LIST_CONC" "$LIST_CONC" "$BASE_PID" "$BASE_ECHO_URL" "$WORK/echo.grpc"
    h2load_run list gateway "first page c=$LIST_CONC" "$LIST_CONC" "$GW_PID" "$url" "$WORK/list-first.grpc" ListRefunds
    h2load_run list gateway "page at $LIST_DEPTH c=$LIST_CONC" "$LIST_CONC" "$GW_PID" "$url" "$WORK/list-deep.grpc" ListRefunds
  done
  stop_gw; stop_base
}

# --- 4. WatchRefunds fan-out ------------------------------------------------------------------
# The baseline publishes EVENTS events INTERVAL_MS apart; the gateway gets EVENTS/2
# CreateRefunds 2*INTERVAL_MS apart, each making two events (created, SUCCEEDED): the same
# number of events per subscriber over the same time. Fresh server per run (clean RSS).
scenario_watch() {
  local creates=$(( EVENTS / 2 )) gap=$(( INTERVAL_MS * 2 ))
  for rep in $(seq 1 "$REPS"); do
    for case in $WATCH_CASES; do
      local k=${case%%:*} conns=${case##*:} line idle
      log "WatchRefunds $k subscribers over $conns connections (rep $rep)"
      if [ "$SKIP_BASELINE" = 0 ]; then
        start_base --broadcast-capacity 1024
        idle=$(rss_kib "$BASE_PID")
        mstart "$BASE_PID"; M_RSS=""
        line=$(taskset -c "$CLIENT_CPU" "$BASE_FANOUT" --addr "$BASE_ADDR" --streams "$k" --conns "$conns" \
          --events "$EVENTS" --interval-ms "$INTERVAL_MS" --payload 64 --label "rep$rep")
        mend; M_RSS=""
        record "$line" "$(mextra "$line"),\"server_rss_idle_proc_kib\":$idle,\"scenario\":\"watch\",\"side\":\"baseline\",\"case\":\"$k/$conns\",\"rep\":$rep"
        stop_base
      fi
      for stalled in 0 1; do
        rm -rf "$WORK/watch"; start_gw "$WORK/watch"
        local sandbox_addr
        sandbox_addr=$(grep "provider simulators started" "$WORK/watch/gateway.log" | sed -E 's/.*addr=([0-9.:]+).*/\1/')
        mstart "$GW_PID"
        line=$(taskset -c "$CLIENT_CPU" "$TOOLS/fanout" --addr "$GW_ADDR" --metrics "$GW_METRICS" --server-pid "$GW_PID" \
          --streams "$k" --conns "$conns" --events "$creates" --interval-ms "$gap" --stalled "$stalled" \
          --sandbox "$sandbox_addr" --label "rep$rep")
        mend; M_RSS=""
        record "$line" "$(mextra "$line"),\"scenario\":\"watch\",\"side\":\"gateway\",\"case\":\"$k/$conns\",\"rep\":$rep"
        stop_gw
      done
    done
  done
}

# --- 5. Restart with RESTART_COUNT non-final refunds (no baseline) ---------------------------
scenario_restart() {
  for rep in $(seq 1 "$RESTART_REPS"); do
    log "restart with $RESTART_COUNT non-final PayMongo refunds (rep $rep)"
    rm -rf "$WORK/restart"
    local line
    line=$(taskset -c "$CLIENT_CPU" "$TOOLS/restart" --bin "$GW_BIN" --dir "$WORK/restart" --count "$RESTART_COUNT" \
      --grpc-port "$RESTART_GRPC_PORT" --http-port "$RESTART_HTTP_PORT" --server-cpu "$SERVER_CPU" --sim-cpu "$CLIENT_CPU" \
      --timeout "$RESTART_TIMEOUT" --worker-toml "$RESTART_WORKER_TOML" --label "rep$rep")
    record "$line" "\"scenario\":\"restart\",\"side\":\"gateway\",\"case\":\"$RESTART_COUNT\",\"rep\":$rep"
  done
}

# --- 6. A noisy neighbour: tenant B's GetRefund while tenant A bursts over its limit --------
# One gateway with two tenants: A limited to NOISY_A_RPS calls/s (burst NOISY_A_BURST), B with
# a limit far above what the machine serves (so only A's limit is in play). Per repetition:
# B alone (A quiet), then B while A's callers send as fast as their refusals come back.
scenario_noisy() {
  local dir="$WORK/noisy" line mode flag
  log "noisy neighbour: tenant B's GetRefund ($NOISY_B_CONC in flight), tenant A quiet vs bursting ($NOISY_A_CONC in flight, limit $NOISY_A_RPS/s burst $NOISY_A_BURST)"
  rm -rf "$dir"; mkdir -p "$dir"
  cat >"$dir/gateway.toml" <<EOF
[store]
url = "sqlite://$dir/refund-gateway.db"
[providers.compago]
kind = "compago"
sandbox = true
[[tenants]]
id = "tenant-a"
api_keys = ["bench-tenant-a-key"]
requests_per_second = $NOISY_A_RPS
burst = $NOISY_A_BURST
[[tenants]]
id = "tenant-b"
api_keys = ["bench-tenant-b-key"]
requests_per_second = 1000000
burst = 1000000
EOF
  GW_CONFIG="$dir/gateway.toml" start_gw "$dir"
  for rep in $(seq 1 "$REPS"); do
    for mode in quiet noisy; do
      flag=""; [ "$mode" = quiet ] || flag="--noisy"
      mstart "$GW_PID"
      line=$(/usr/bin/time -f '%U %S %e' -o "$WORK/loader.time" taskset -c "$CLIENT_CPU" "$TOOLS/noisy" \
        --addr "$GW_ADDR" --key-a bench-tenant-a-key --key-b bench-tenant-b-key $flag \
        --concurrency "$NOISY_B_CONC" --noisy-concurrency "$NOISY_A_CONC" \
        --duration "$DURATION" --warmup "$WARMUP" --label "rep$rep")
      mend
      record "$line" "$(mextra "$line"),\"scenario\":\"noisy\",\"side\":\"gateway\",\"case\":\"$mode\",\"rep\":$rep"
    done
  done
  stop_gw
}

FAILED=""
for s in $SCENARIOS; do
  case "$s" in
    get|create|list|watch|restart|noisy) ;;
    *) echo "bench: unknown scenario $s" >&2; exit 1 ;;
  esac
  # A failed scenario is reported and the others still run. (Not `( ... ) || ...`: errexit
  # would be off inside the subshell.)
  set +e
  ( set -e; trap scenario_exit EXIT; trap 'echo "bench: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR; "scenario_$s" )
  rc=$?
  set -e
  [ "$rc" = 0 ] || { log "scenario $s FAILED"; FAILED="$FAILED $s"; }
done

python3 "$ROOT/scripts/bench_table.py" "$RESULTS" | tee "$OUT/table.md"
log "raw results: $RESULTS; table: $OUT/table.md"
if [ -n "$FAILED" ]; then
  log "FAILED scenarios:$FAILED (see the messages above and the logs in $OUT)"; exit 1
fi
