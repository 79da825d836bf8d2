#!/usr/bin/env bash
# Regenerates agent-symbols.txt: the functions `rkube agent` runs, then those `rkube server` runs besides, which
# crates/rkube/build.rs has the linker place first, next to each other (see there why). Run as root on a host with containerd, runc, the CNI plugins and
# valgrind, after `cargo build --release -p rkube`:
#
#   crates/rkube/link-order/regenerate.sh [target/release/rkube]
#   crates/rkube/link-order/regenerate.sh --check [target/release/rkube]   (how much of the list still matches)
#
# It starts `rkube server --disable-agent` and `rkube agent`, both under callgrind, as `rkube bench node` does,
# runs the bench's workload on them (2 pods, 3 single pods, 30 pods, idling), dumps the executed functions, then
# stops and cleans everything. The agent's functions come first, so its code is packed whatever the server runs;
# each part keeps the binary's address order (code of one crate stays together).
set -euo pipefail
export LC_ALL=C # sort and join must agree on the order
here=$(cd "$(dirname "$0")" && pwd)
check=false
if [ "${1:-}" = --check ]; then check=true; shift; fi
bin=$(realpath "${1:-$here/../../../target/release/rkube}")
out=$here/agent-symbols.txt
if $check; then
  # Names drift as code changes (a crate's new dependencies change the hashes of the generics it instantiates):
  # regenerate when much of the list is gone.
  defined=$(nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ { print $3 }' | sort -u | comm -12 - <(sort -u "$out") | wc -l)
  echo "$bin defines $defined of the $(wc -l <"$out") functions listed in $out"
  exit 0
fi
kubectl=${KUBECTL:-/usr/lib/google-cloud-sdk/bin/kubectl.1.33}
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 1; }

data=$(mktemp -d /tmp/rkube-link-order-XXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
kubelet_port=$(free_port)
bridge=rklo$port
server_pid="" agent_pid=""
cleanup() {
  set +e
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  "$bin" agent clean --data-dir "$data" >/dev/null 2>&1
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$data"
}
trap cleanup EXIT
wait_line() { # file, text, seconds
  for _ in $(seq "$3"); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 1; done
  echo "no '$2' in $1 after $3 s" >&2; exit 1
}

RUST_LOG=warn valgrind --tool=callgrind --demangle=no --dump-instr=no --dump-line=no \
  --callgrind-out-file="$data/server-callgrind.%p" \
  "$bin" server --disable-agent --node-name link-order-server --bind-address 127.0.0.1 \
  --https-listen-port "$port" --cluster-cidr 10.232.254.0/24 --node-cidr-mask-size 24 --data-dir "$data" \
  >"$data/server.out" 2>"$data/server.err" &
server_pid=$!
wait_line "$data/server.out" "is ready" 600
tls=$data/server/tls
RUST_LOG=warn valgrind --tool=callgrind --demangle=no --dump-instr=no --dump-line=no \
  --callgrind-out-file="$data/agent-callgrind.%p" \
  "$bin" agent --server "https://127.0.0.1:$port" --node-name link-order-node --kubeconfig "$data/kubeconfig.yaml" \
  --tls-cert-file "$tls/serving-kube-apiserver.crt" --tls-private-key-file "$tls/serving-kube-apiserver.key" \
  --client-ca-file "$tls/ca.crt" --kubelet-port "$kubelet_port" --cni-bridge "$bridge" \
  --flannel-backend none --disable-proxy --disable-dns --data-dir "$data" >"$data/agent.out" 2>"$data/agent.err" &
agent_pid=$!
wait_line "$data/agent.out" "is ready" 600

k() { "$kubectl" --kubeconfig "$data/kubeconfig.yaml" -n link-order "$@"; }
pods() { # names...: pods running the pause image the agent imported
  for name in "$@"; do
    printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  terminationGracePeriodSeconds: 1\n' "$name"
    printf '  containers: [{name: c, image: "rkube.io/pause:1.0", imagePullPolicy: IfNotPresent}]\n---\n'
  done | k apply -f - >/dev/null
}
wait_count() { # running-or-total, count
  for _ in $(seq 600); do
    if [ "$1" = running ]; then n=$(k get pods --no-headers 2>/dev/null | grep -c " Running " || true)
    else n=$(k get pods --no-headers 2>/dev/null | wc -l); fi
    [ "$n" -eq "$2" ] && return 0
    sleep 1
  done
  echo "waited too long for $2 pods $1" >&2; exit 1
}
"$kubectl" --kubeconfig "$data/kubeconfig.yaml" create namespace link-order >/dev/null
for _ in $(seq 60); do k get serviceaccount default >/dev/null 2>&1 && break; sleep 1; done
sleep 10
pods p1 p2; wait_count running 2; sleep 5
k delete pods --all --wait=false >/dev/null; wait_count total 0
for i in 1 2 3; do pods "s$i"; wait_count running 1; k delete pod "s$i" --wait=false >/dev/null; wait_count total 0; done
pods $(seq -f "b%g" 30); wait_count running 30; sleep 30
callgrind_control -d "$agent_pid" >/dev/null
callgrind_control -d "$server_pid" >/dev/null
sleep 10

# Every function with a cost in a dump (callgrind names each once, as "fn=(id) name" or "cfn=(id) name"),
# kept if the binary defines it, in the binary's address order.
nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ { print $1, $3 }' | sort -k2,2 >"$data/defined"
executed() { # dump
  sed -nE 's/^c?fn=\([0-9]+\) (.+)$/\1/p' "$1" | sort -u | join -1 1 -2 2 -o 2.1,2.2 - "$data/defined" |
    sort -u | sort -k1,1 | awk '{ print $2 }'
}
{ executed "$(ls "$data"/agent-callgrind.*.1)"; executed "$(ls "$data"/server-callgrind.*.1)"; } |
  awk '!seen[$0]++' >"$out"
echo "$(wc -l <"$out") functions written to $out"
