#!/usr/bin/env bash
# Instructions per call of one refund-gateway binary, counted by valgrind's callgrind: the
# same figure for the same binary and load whatever else the machine is doing, so two builds
# can be compared on a busy machine where timings cannot (BENCHMARKS.md, "Instruction counts").
#
#   scripts/instructions.sh BINARY get|create [N] [CONCURRENCY]
#
# Starts BINARY on its embedded default (fresh SQLite file, simulators in-process) under
# callgrind, warms it, zeroes the counters, then sends N GetRefunds one at a time (h2load;
# default 2000) or runs loadgen's CreateRefunds for N seconds (default 20) with CONCURRENCY in
# flight (default 1), dumps the counters and prints the process's instructions per call.
# Everything the process does in that window counts (all threads: tokio, the SQLite writer,
# the simulators, background timers). Needs valgrind and h2load (apt: valgrind,
# nghttp2-client) and the bench tools (`cargo build --release --manifest-path bench/Cargo.toml
# --target-dir target`). The callgrind file is left in target/instructions/ for
# `callgrind_annotate --inclusive=yes`.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -ge 2 ] || { sed -n 6,7p "$0" >&2; exit 2; }
BIN="$(readlink -f "$1")"; MODE="$2"
case "$MODE" in
  get) N="${3:-2000}" ;;
  create) N="${3:-20}" ;;
  *) echo "instructions: MODE is get or create" >&2; exit 2 ;;
esac
CONC="${4:-1}"
TOOLS="$ROOT/target/release"
GRPC_PORT="${GRPC_PORT:-50171}"; HTTP_PORT="${HTTP_PORT:-8197}"
for tool in valgrind callgrind_control h2load "$TOOLS/prepare" "$TOOLS/loadgen"; do
  command -v "$tool" >/dev/null || { echo "instructions: $tool is missing" >&2; exit 1; }
done
WORK="$(mktemp -d /tmp/refund-gateway-instructions.XXXXXX)"
VG=""
cleanup() {
  if [ -n "$VG" ] && kill -0 "$VG" 2>/dev/null; then kill -INT "$VG" 2>/dev/null || true; wait "$VG" || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
OUT="$ROOT/target/instructions"; mkdir -p "$OUT"

# A build with per-tenant limits gets them raised out of the way; an older one has none.
limits=(REFUND_GATEWAY__LIMITS__REQUESTS_PER_SECOND=1000000000 REFUND_GATEWAY__LIMITS__BURST=1000000000)
"$BIN" check-config >/dev/null 2>&1 || limits=()
( cd "$WORK" && exec env -u RUST_LOG -u REFUND_GATEWAY_CONFIG \
    REFUND_GATEWAY__SERVER__GRPC_LISTEN="127.0.0.1:$GRPC_PORT" \
    REFUND_GATEWAY__SERVER__HTTP_LISTEN="127.0.0.1:$HTTP_PORT" "${limits[@]}" \
    valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$BIN" serve \
    >"$WORK/gateway.log" 2>&1 ) &
VG=$!
for _ in $(seq 1 600); do
  grep -q "refund-gateway serving" "$WORK/gateway.log" 2>/dev/null && break
  kill -0 "$VG" 2>/dev/null || { cat "$WORK/gateway.log" >&2; exit 1; }
  sleep 0.2
done
ADDR="http://127.0.0.1:$GRPC_PORT"
if [ "$MODE" = get ]; then
  "$TOOLS/prepare" get-body --addr "$ADDR" --out "$WORK/get.grpc" >/dev/null
  h2() { h2load -c 1 -m 1 -t 1 -H 'content-type: application/grpc' -H 'te: trailers' \
    -d "$WORK/get.grpc" "$ADDR/refunds.v1.RefundService/GetRefund" "$@"; }
  h2 -n 300 >/dev/null
  callgrind_control -z "$VG" >/dev/null 2>&1
  h2 -n "$N" >"$WORK/load.out"
  CALLS="$(grep -oP 'requests: .* \K\d+(?= succeeded)' "$WORK/load.out")"
else
  "$TOOLS/loadgen" --addr "$ADDR" --concurrency "$CONC" --duration 5 --warmup 0 >/dev/null
  callgrind_control -z "$VG" >/dev/null 2>&1
  "$TOOLS/loadgen" --addr "$ADDR" --concurrency "$CONC" --duration "$N" --warmup 0 >"$WORK/load.out"
  CALLS="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ok"])' "$WORK/load.out")"
fi
callgrind_control -d "$VG" >/dev/null 2>&1
sleep 1
DUMP="$(ls -t "$WORK"/callgrind.out.* | head -1)"
NAME="$(basename "$BIN")-$MODE-c$CONC-$(date -u +%Y%m%dT%H%M%SZ).callgrind"
cp "$DUMP" "$OUT/$NAME"
TOTAL="$(awk '/^summary:/ {print $2; exit}' "$DUMP")"
python3 - "$TOTAL" "$CALLS" "$MODE" "$CONC" "$BIN" "$OUT/$NAME" <<'PY'
import json, sys
total, calls = int(sys.argv[1]), int(sys.argv[2])
print(json.dumps({"binary": sys.argv[5], "rpc": "GetRefund" if sys.argv[3] == "get" else "CreateRefund",
                  "concurrency": int(sys.argv[4]), "calls": calls, "instructions": total,
                  "instructions_per_call": round(total / calls), "callgrind_file": sys.argv[6]}))
PY
