#!/usr/bin/env bash
# Load benchmark of the call engine, driven by SIPp (Debian's sip-tester). Prints figures.
#
#   bench/calls.sh [RATES...]     (default rates: 100 200 400 600 800 1000 1200)
#
# 1. Ceiling of this machine: SIPp's own uac -> uas pair, in the same run.
# 2. Full call flow at rising rates: INVITE -> NEW_INBOUND_CALL to the Rust IVR component ->
#    answer -> its (cached) spoken menu plays -> the caller hangs up after 1 s. For each rate:
#    calls attempted / successful / failed, the runtime's CPU, and answer latency p50/p99
#    (INVITE received -> 200 OK sent, logged by sma in microseconds; SIPp's own response-time
#    trace has only millisecond resolution, so for the SIPp pair it is shown as measured).
# 3. Concurrency: calls that stay up hearing the menu, held at rising counts (CONCURRENT); the
#    runtime's pacer reports the RTP send-time error (p50/p90/p99/p99.9), and /proc gives its CPU
#    and memory per call; the largest count with p99 <= 1 ms is printed.
# 4. Admission control at 120 % of a configured CPS ceiling: every admitted call completes,
#    every refused one got 503.
# 5. Conference mixing: cost per participant per tick, the largest meeting and the most
#    participants across 50 meetings with p99 tick <= 2 ms, on one core.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(100 200 400 600 800 1000 1200)
SECONDS_PER_RATE=${SECONDS_PER_RATE:-5}
# PACER_PRIORITY: [media] pacer_realtime_priority for the runtime (default 0, time-shared).
# CONCURRENT: the held-call counts tried in turn (stops at the first whose p99 send error > 1 ms).
read -r -a HELD <<< "${CONCURRENT:-2000 2500 3000}"

. bench/lib.sh
cargo build -q --profile guest --target wasm32-wasip2 -p ivr-menu-rust
IVR=$TARGET/wasm32-wasip2/guest/ivr_menu_rust.wasm

# p50/p99 of SIPp's rtt trace (date_ms;response_time_ms;rtd_no).
quantiles() {
  python3 - "$@" <<'PY'
import sys, glob
values = []
for f in sys.argv[1:]:
    for line in open(f):
        parts = line.strip().split(';')
        if len(parts) >= 2:
            try: values.append(float(parts[1]))
            except ValueError: pass
values.sort()
if not values: print("n/a n/a"); sys.exit()
q = lambda p: values[min(len(values)-1, int(p*len(values)))]
print(f"{q(0.5):.1f} {q(0.99):.1f}")
PY
}

# Runs SIPp's uac at a rate for SECONDS_PER_RATE seconds; prints "attempted ok failed p50 p99".
uac_run() { # target rate calls duration_ms dir
  local target=$1 rate=$2 calls=$3 hold=$4 dir=$5
  mkdir -p "$dir"
  (cd "$dir" && sipp -sn uac "$target" -i 127.0.0.1 -p "$(free_port)" -mp "$(free_port)" \
      -r "$rate" -m "$calls" -d "$hold" -l $((rate * 4 + 100)) -timeout $((SECONDS_PER_RATE + 30)) \
      -nostdin -trace_stat -fd 1 -trace_rtt -rtt_freq 1 -trace_err >/dev/null 2>&1 || true)
  local stat
  stat=$(ls "$dir"/*_.csv 2>/dev/null | head -1)
  python3 - "$stat" <<'PY' | tr '\n' ' '
import sys, csv
rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
head, last = rows[0], rows[-1]
col = lambda n: int(last[head.index(n)])
print(col("OutgoingCall(C)"), col("SuccessfulCall(C)"), col("FailedCall(C)"))
PY
  quantiles "$dir"/*_rtt.csv
}

config() { # listen-port max_cps
  cat <<EOF
[sip]
listen = ["udp:127.0.0.1:$1"]
[media]
port_range = [20000, 60000]
pacer_realtime_priority = ${PACER_PRIORITY:-0}
[node]
cdr_path = "$WORK/cdr.jsonl"
[storage]
root = "$WORK/buckets"
[calls]
max_concurrent_calls = 20000
max_calls_per_second = $2
[[applications]]
id = "ivr"
name = "ivr"
endpoint = "$IVR"
[[sip_rules]]
name = "loopback"
trigger_type = "RequestUriHostname"
trigger_value = "127.0.0.1"
targets = [{ application = "ivr", priority = 1 }]
EOF
}

start_sma() { # port max_cps
  config "$1" "$2" > "$WORK/sma-$1.toml"
  SMA_LOG=warn,sma::latency=info,sma::serve=info NO_COLOR=1 "$SMA" serve --config "$WORK/sma-$1.toml" --api-listen off \
    > "$WORK/sma-$1.out" 2> "$WORK/sma-$1.log" &
  SMA_PID=$!
  PIDS+=("$SMA_PID")
  for _ in $(seq 100); do grep -q ready "$WORK/sma-$1.out" 2>/dev/null && return; sleep 0.1; done
  echo "sma did not start"; cat "$WORK/sma-$1.log"; exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB; load $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "== 1. ceiling: SIPp uac -> SIPp uas (no runtime), calls hang up after 1 s"
UAS_PORT=$(free_port)
(cd "$WORK" && exec sipp -sn uas -i 127.0.0.1 -p "$UAS_PORT" -nostdin >/dev/null 2>&1) &
UAS_PID=$!
PIDS+=("$UAS_PID")
sleep 0.5
printf "%8s %10s %10s %8s %10s %10s\n" rate attempted ok failed p50_ms p99_ms
for rate in "${RATES[@]}"; do
  read -r att ok failed p50 p99 < <(uac_run "127.0.0.1:$UAS_PORT" "$rate" $((rate * SECONDS_PER_RATE)) 1000 "$WORK/uas-$rate")
  printf "%8s %10s %10s %8s %10s %10s\n" "$rate" "$att" "$ok" "$failed" "$p50" "$p99"
done
kill "$UAS_PID" 2>/dev/null || true

echo
echo "== 2. full call flow through sma (Rust IVR component, answer, cached spoken menu, caller hangs up after 1 s)"
PORT=$(free_port)
start_sma "$PORT" 100000
# Warm the speech cache with one call.
uac_run "127.0.0.1:$PORT" 1 1 1000 "$WORK/warm" >/dev/null
printf "%8s %10s %10s %8s %12s %12s %8s\n" rate attempted ok failed answer_p50 answer_p99 cpu%
for rate in "${RATES[@]}"; do
  sleep 2
  lines=$(wc -l < "$WORK/sma-$PORT.log")
  before=$(cpu_ticks "$SMA_PID"); t0=$(date +%s.%N)
  read -r att ok failed _ _ < <(uac_run "127.0.0.1:$PORT" "$rate" $((rate * SECONDS_PER_RATE)) 1000 "$WORK/sma-$rate")
  after=$(cpu_ticks "$SMA_PID"); t1=$(date +%s.%N)
  cpu=$(python3 -c "print(f'{($after-$before)/$(getconf CLK_TCK)/($t1-$t0)*100:.0f}')")
  read -r p50 p99 < <(tail -n +"$((lines + 1))" "$WORK/sma-$PORT.log" | python3 -c '
import sys, re
v = sorted(int(m.group(1)) for m in (re.search(r"answer_us=(\d+)", l) for l in sys.stdin) if m)
q = lambda p: v[min(len(v)-1, int(p*len(v)))] / 1000 if v else float("nan")
print(f"{q(0.5):.2f}ms {q(0.99):.2f}ms")')
  printf "%8s %10s %10s %8s %12s %12s %8s\n" "$rate" "$att" "$ok" "$failed" "$p50" "$p99" "$cpu"
done

echo
kill "$SMA_PID" 2>/dev/null || true
# Held calls at rising counts, plain RTP or SRTP (the caller offers RTP/SAVP with an SDES
# key: sma protects every packet of the menu it plays); sets LARGEST and CPU_PER_CALL.
held_phase() { # plain|srtp
  local mode=$1 scenario=(-sn uac)
  [ "$mode" = srtp ] && scenario=(-sf "$ROOT/bench/sipp/uac-srtp.xml")
  # KiB/call: resident growth from the idle (warmed) runtime to all calls held, over the calls:
  # an upper bound, as it includes one-time growth (allocator arenas, tasks' first use).
  # marginal: the growth between this count and the previous one, per extra call.
  printf "%8s %10s %9s %9s %9s %9s %8s %10s %10s\n" held packets/s p50_us p90_us p99_us p99.9_us cpu% KiB/call marginal
  LARGEST=0
  CPU_PER_CALL=n/a
  local prev_held=0 prev_rss=0
  for held in "${HELD[@]}"; do
    PORT=$(free_port)
    start_sma "$PORT" 100000
    uac_run "127.0.0.1:$PORT" 1 1 1000 "$WORK/warm-$mode-$held" >/dev/null
    sleep 2
    rss0=$(rss_kib "$SMA_PID")
    HOLD_MS=$(( (held / 200 + 25) * 1000 ))
    (cd "$WORK" && mkdir -p "hold-$mode-$held" && cd "hold-$mode-$held" && sipp "${scenario[@]}" "127.0.0.1:$PORT" -s +12065550100 -i 127.0.0.1 -p "$(free_port)" -mp "$(free_port)" \
      -r 200 -m "$held" -d "$HOLD_MS" -l "$held" -nostdin -timeout $((HOLD_MS / 1000 + 60)) >/dev/null 2>&1 &)
    sleep $(( held / 200 + 8 ))
    lines=$(wc -l < "$WORK/sma-$PORT.log")
    before=$(cpu_ticks "$SMA_PID"); t0=$(date +%s.%N)
    sleep 10
    after=$(cpu_ticks "$SMA_PID"); t1=$(date +%s.%N)
    rss1=$(rss_kib "$SMA_PID")
    # The pacer's 5 s reports while every call was held (the last one of the window).
    stats=$(tail -n +"$((lines + 1))" "$WORK/sma-$PORT.log" | grep "media stats" | grep "streams=$held " | tail -1)
    field() { echo "$stats" | grep -o "$1=[0-9]*" | cut -d= -f2; }
    cpu=$(python3 -c "print(f'{($after-$before)/$(getconf CLK_TCK)/($t1-$t0)*100:.0f}')")
    per_call=$(python3 -c "print(f'{($rss1-$rss0)/$held:.1f}')")
    marginal=$(python3 -c "print(f'{($rss1-$prev_rss)/($held-$prev_held):.1f}' if $prev_held else '-')")
    prev_held=$held; prev_rss=$rss1
    p99=$(field lateness_p99_us)
    printf "%8s %10s %9s %9s %9s %9s %8s %10s %10s\n" "$held" "$(field packets_per_sec)" "$(field lateness_p50_us)" \
      "$(field lateness_p90_us)" "${p99:-n/a}" "$(field lateness_p999_us)" "$cpu" "$per_call" "$marginal"
    pkill -f "127.0.0.1:$PORT -s +12065550100" 2>/dev/null || true
    kill "$SMA_PID" 2>/dev/null || true
    sleep 1
    if [ -n "$p99" ] && [ "$p99" -le 1000 ]; then
      LARGEST=$held
      CPU_PER_CALL=$(python3 -c "print(f'{$cpu/$held:.4f}')")
    else
      break
    fi
  done
}

echo "== 3. concurrency: calls held, hearing the menu (prompt cache shared); a fresh runtime per count"
held_phase plain
PLAIN_LARGEST=$LARGEST; PLAIN_CPU=$CPU_PER_CALL
echo "largest count held with p99 send-time error <= 1 ms: $PLAIN_LARGEST (runtime CPU is the whole process)"
echo
echo "== 3b. the same with SRTP (AES_CM_128_HMAC_SHA1_80 offered by the caller)"
held_phase srtp
echo "largest count held with SRTP, p99 <= 1 ms: $LARGEST (plain: $PLAIN_LARGEST); CPU % per held call at that count: SRTP $CPU_PER_CALL, plain $PLAIN_CPU (target: SRTP costs <= 15 % of the calls held in the clear)"

echo
echo "== 4. admission control: ceiling 200 CPS, offered 240 CPS"
PORT=$(free_port)
start_sma "$PORT" 200
read -r att ok failed p50 p99 < <(uac_run "127.0.0.1:$PORT" 240 $((240 * SECONDS_PER_RATE)) 1000 "$WORK/adm")
refused=$(cat "$WORK"/adm/*_errors.log 2>/dev/null | grep -c "503" || true)
echo "attempted $att, completed $ok, failed $failed (of which refused with 503: $refused)"

echo
echo "== 5. conference mixing on one core, next to the playout figures above (runtime/media/benches/conference.rs)"
cargo bench -q -p sma-media --bench conference 2>/dev/null | grep -v '^$'
