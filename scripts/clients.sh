#!/usr/bin/env bash
# The generated clients (clients/python, clients/typescript, clients/go) against the real
# binary: regenerates them from proto/ and fails when the checked-in code is stale, builds
# refund-gateway, starts it on loopback on its embedded default (sandbox providers, open mode)
# and runs each language's example, which refunds, watches, resumes the feed and decodes an
# error. Any failure fails the script.
#
# Needs: cargo, buf, python3 (venv), node/npm, go with protoc-gen-go, protoc-gen-go-grpc and
# Debian's Go packages of gRPC and protobuf (golang-google-grpc-dev,
# golang-google-protobuf-dev, golang-github-golang-protobuf-1-5-dev): .ci/run installs them.
# The Go example builds offline, in GOPATH mode against /usr/share/gocode.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
gateway_pid=""
cleanup() {
  if [ -n "$gateway_pid" ]; then kill "$gateway_pid" 2>/dev/null || true; wait "$gateway_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

for tool in cargo buf python3 npm node go protoc-gen-go protoc-gen-go-grpc; do
  command -v "$tool" >/dev/null || { echo "scripts/clients.sh needs $tool (.ci/run installs it)" >&2; exit 1; }
done

echo "--- client toolchains (Python venv in target/clients-venv, npm packages)"
venv=target/clients-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet -r clients/python/requirements-dev.txt ./clients/python
export PATH="$root/$venv/bin:$PATH"
(cd clients/typescript && npm ci --no-audit --no-fund --silent)

echo "--- generated code is up to date (buf generate, then git diff)"
rm -rf clients/python/src/refunds clients/typescript/src/gen clients/go/refundsv1
buf generate
if ! git diff --exit-code --stat -- clients || [ -n "$(git status --porcelain -- clients)" ]; then
  git status --short -- clients
  echo "generated client code is stale: run scripts/clients.sh and commit clients/" >&2
  exit 1
fi

echo "--- refund-gateway on loopback, embedded default"
cargo build --quiet --bin refund-gateway
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
grpc=127.0.0.1:50051
if ! port_free 50051 || ! port_free 8080; then
  # Someone else on this machine uses the default ports: the same default on others.
  grpc=127.0.0.1:$((20000 + RANDOM % 20000))
  export REFUND_GATEWAY__SERVER__GRPC_LISTEN=$grpc
  export REFUND_GATEWAY__SERVER__HTTP_LISTEN=127.0.0.1:$((40000 + RANDOM % 20000))
  echo "(50051 or 8080 taken here: gRPC on $grpc)"
fi
(cd "$work" && exec "$root/target/debug/refund-gateway" serve >gateway.log 2>&1) &
gateway_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/${grpc%:*}/${grpc#*:}") 2>/dev/null && break
  kill -0 "$gateway_pid" 2>/dev/null || { cat "$work/gateway.log"; exit 1; }
  sleep 0.1
done
export REFUND_GATEWAY_ADDR=$grpc

echo "--- Python example"
python clients/python/examples/refund.py

echo "--- Node example"
(cd clients/typescript && npm run --silent build && node dist/examples/refund.js)

echo "--- Go example"
gopath=$work/gopath
mkdir -p "$gopath/src/github.com/refund-gateway/refund-gateway"
ln -s "$root/clients" "$gopath/src/github.com/refund-gateway/refund-gateway/clients"
(cd "$gopath/src/github.com/refund-gateway/refund-gateway/clients/go" \
  && GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS= go vet ./... \
  && GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS= go run ./example)

echo "--- protoc with the Go plugins on proto/, no flags"
protoc -I proto --go_out="$work" --go-grpc_out="$work" proto/refunds/v1/*.proto

echo "clients: all three examples passed against the real binary"
