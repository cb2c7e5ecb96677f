#!/usr/bin/env bash
# Smoke test of the built binary with grpcurl, as a newcomer would use it: start the
# embedded default (in a scratch directory, on spare ports set through environment
# overrides), then list, describe, create a refund of a sandbox Compago payment, get it.
set -euo pipefail

bin=${1:-target/debug/refund-gateway}
bin=$(realpath "$bin")
grpc=127.0.0.1:${SMOKE_GRPC_PORT:-50151}
http=127.0.0.1:${SMOKE_HTTP_PORT:-8151}
work=$(mktemp -d)
log=$work/gateway.log
cleanup() {
  [[ -n ${pid:-} ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cd "$work"
REFUND_GATEWAY__SERVER__GRPC_LISTEN=$grpc REFUND_GATEWAY__SERVER__HTTP_LISTEN=$http \
  "$bin" serve >"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -fs "http://$http/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://$http/readyz" >/dev/null || { cat "$log"; echo "smoke: gateway not ready"; exit 1; }

fail() { echo "smoke: $*"; cat "$log"; exit 1; }

services=$(grpcurl -plaintext "$grpc" list)
echo "$services"
grep -qx refunds.v1.RefundService <<<"$services" || fail "RefundService not listed"
grep -qx grpc.health.v1.Health <<<"$services" || fail "health not listed"

described=$(grpcurl -plaintext "$grpc" describe refunds.v1.RefundService)
for rpc in CreateRefund GetRefund ListRefunds SyncRefund WatchRefund WatchRefunds GetPayment ListProviders; do
  grep -q "rpc $rpc" <<<"$described" || fail "describe lacks $rpc"
done

created=$(grpcurl -plaintext -d '{
  "request_id": "smoke-1",
  "provider": "compago",
  "payment": {
    "payment_id": "11111111-2222-3333-4444-555555555555",
    "payment_method_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
  },
  "description": "smoke test"
}' "$grpc" refunds.v1.RefundService/CreateRefund)
echo "$created"
grep -q '"status": "REFUND_STATUS_SUCCEEDED"' <<<"$created" || fail "refund did not succeed"
id=$(grep -m1 '"id"' <<<"$created" | cut -d'"' -f4)

got=$(grpcurl -plaintext -d "{\"id\": \"$id\"}" "$grpc" refunds.v1.RefundService/GetRefund)
echo "$got"
grep -q "\"id\": \"$id\"" <<<"$got" || fail "GetRefund did not return the refund"
grep -q '"minorUnits": "50000"' <<<"$got" || fail "wrong amount"

# Bad input gets a clean INVALID_ARGUMENT with details, and the gateway stays up.
if bad=$(grpcurl -plaintext -d '{}' "$grpc" refunds.v1.RefundService/CreateRefund 2>&1); then
  fail "an empty request was accepted"
fi
grep -q "InvalidArgument" <<<"$bad" || fail "expected InvalidArgument: $bad"
grep -q "google.rpc.BadRequest" <<<"$bad" || fail "expected BadRequest details: $bad"
curl -fs "http://$http/healthz" >/dev/null || fail "gateway died"
echo "smoke: ok"
