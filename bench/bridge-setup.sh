#!/usr/bin/env bash
# Bridge set-up under load: how many CallAndBridge calls per second the runtime sets up with
# no failure, and how long from the far end's answer to the caller's. Prints figures.
#
#   bench/bridge-setup.sh [RATES...]     (default: 25 50 100 150 200 300)
#
# `sma call`'s load mode dials +12065550100 with `X-Chaos-Mode: bridge`; the chaos test
# component (tests/guests/chaos) answers NEW_INBOUND_CALL with a CallAndBridge to
# +14255550199, which a [[carriers]] entry sends to SIPp's built-in uas (it answers at once).
# The caller waits for its 200 OK, stays 1 s, and hangs up; the component then hangs up the
# second leg. Per rate, SECONDS_PER_RATE seconds of calls (default 5):
#   - calls attempted / passed / failed (sma call's verdicts),
#   - set-up p50/p99: INVITE to the caller's 200 OK, which holds the handler's turn and the
#     whole second leg (sma call's histogram),
#   - answer-to-bridge p50/p99: the far end's 200 OK received -> the caller's 200 OK handed to
#     the transport (sma's `sma::latency` log, microseconds),
#   - sma's CPU per bridged call (two legs) from /proc.
# A rate is clean when every call passed; the highest clean rate is the figure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(25 50 100 150 200 300)
SECONDS_PER_RATE=${SECONDS_PER_RATE:-5}

. bench/lib.sh
cargo build -q --profile guest --target wasm32-wasip2 -p chaos-guest
CHAOS=$TARGET/wasm32-wasip2/guest/chaos_guest.wasm

echo "machine: $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
UAS_PORT=$(free_port)
(cd "$WORK" && exec sipp -sn uas -i 127.0.0.1 -p "$UAS_PORT" -mi 127.0.0.1 -nostdin \
    -buff_size 4194304 >/dev/null 2>&1) &
PIDS+=("$!")

SIP_PORT=$(free_port)
cat > "$WORK/sma.toml" <<TOML
[sip]
listen = ["udp:127.0.0.1:$SIP_PORT"]
[media]
port_range = [30000, 45000]
[node]
cdr_path = "$WORK/cdr.jsonl"
[storage]
root = "$WORK/buckets"
[calls]
max_concurrent_calls = 20000
max_calls_per_second = 100000
[[phone_numbers]]
number = "+12065550100"
[[applications]]
id = "bridge"
name = "bridge"
endpoint = "$CHAOS"
[[sip_rules]]
name = "bridge"
trigger_type = "ToPhoneNumber"
trigger_value = "+12065550100"
targets = [{ application = "bridge", priority = 1 }]
[[carriers]]
name = "uas"
proxy = "sip:127.0.0.1:$UAS_PORT"
TOML
SMA_LOG=warn,sma::latency=info,sma::serve=info NO_COLOR=1 "$SMA" serve --config "$WORK/sma.toml" \
  --api-listen off > "$WORK/sma.out" 2> "$WORK/sma.log" &
SMA_PID=$!
PIDS+=("$SMA_PID")
for _ in $(seq 100); do grep -q ready "$WORK/sma.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$WORK/sma.out" || { echo "sma did not start"; cat "$WORK/sma.log"; exit 1; }

cat > "$WORK/caller.yaml" <<YAML
name: bridged
call:
  to: sip:+12065550100@127.0.0.1:$SIP_PORT
  from: sip:+15555550123@127.0.0.1
  headers: {X-Chaos-Mode: bridge}
  answer_timeout: 15s
media:
  silence: suppress
steps:
  - expect: answered
  - wait: 1s
  - hangup
YAML

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

printf '\n%-6s | %9s %6s %6s | %-17s | %-23s | %s\n' rate attempted passed failed "set-up p50/p99 ms" "answer-to-bridge p50/p99" "sma CPU ms/call"
best=none
for rate in "${RATES[@]}"; do
  calls=$((rate * SECONDS_PER_RATE))
  lines_before=$(wc -l < "$WORK/sma.log")
  ticks_before=$(cpu_ticks "$SMA_PID")
  "$SMA" call -s "$WORK/caller.yaml" --calls "$calls" --rate "$rate" --rtp-ports 46000-59999 \
      --json "$WORK/call-$rate.json" > "$WORK/call-$rate.out" 2>&1 || true
  ticks_after=$(cpu_ticks "$SMA_PID")
  read -r att ok fail lat < <(python3 - "$WORK/call-$rate.json" <<'PY'
import sys, json
try:
    s = json.load(open(sys.argv[1]))
    p50, p99 = s["setup_ms"]["p50"], s["setup_ms"]["p99"]
    print(s["attempted"], s["passed"], s["failed"], f"{p50:.1f}/{p99:.1f}" if p50 is not None else "n/a")
except Exception:
    print("n/a n/a n/a n/a")
PY
)
  bridge=$(tail -n +"$((lines_before + 1))" "$WORK/sma.log" | python3 -c '
import re, sys
v = sorted(int(m.group(1)) for m in (re.search(r"bridge_us=(\d+)", l) for l in sys.stdin) if m)
if not v: print("n/a"); sys.exit()
q = lambda p: v[min(len(v) - 1, int(p * len(v)))]
print(f"{q(0.5) / 1000:.2f}/{q(0.99) / 1000:.2f} ms ({len(v)})")')
  cpu=$(awk -v a="$ticks_before" -v b="$ticks_after" -v n="$calls" 'BEGIN {printf "%.2f", (b - a) * 10 / n}')
  printf '%-6s | %9s %6s %6s | %-17s | %-23s | %s\n' "$rate" "$att" "$ok" "$fail" "$lat" "$bridge" "$cpu"
  if [ "$fail" = "0" ] && [ "$att" != "n/a" ]; then best=$rate; else sed -n '/failed:/,+4p' "$WORK/call-$rate.out" | head -5; fi
  sleep 2
done
echo
echo "highest clean rate: $best CallAndBridge calls/s (every call bridged and completed)"
