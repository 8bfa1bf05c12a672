#!/usr/bin/env bash
# The ceiling of `sma call`'s load mode, next to SIPp's uac in the same run, both calling
# SIPp's built-in uas (which answers every INVITE and sends no RTP). Prints figures.
#
#   bench/qa-load.sh [RATES...]     (default: 200 500 1000 2000 3000)
#
# For each rate, SECONDS_PER_RATE seconds of calls (default 5): INVITE, answer, then the
# caller hangs up at once (SIPp's uac with -d 0; the scenario bench/scenarios/trivial.yaml).
# Reported: calls attempted / completed / failed, the rate actually offered, the UAC's CPU
# in CPU milliseconds per call, and for sma call its INVITE-to-200 latency percentiles. A
# rate is "clean" when every call completed; the highest clean rate is the ceiling. Then
# HOLD_RATE calls/s (default 500) that stay up 2 s with RTP both ways (sma call only: SIPp's
# built-in scenarios carry no RTP): the media side of the caller.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(200 500 1000 2000 3000)
SECONDS_PER_RATE=${SECONDS_PER_RATE:-5}

[ -x /usr/bin/time ] || { echo "GNU time is missing (apt install time)"; exit 1; }
. bench/lib.sh
# CPU milliseconds per call, from GNU time's user+system seconds in $1 (its last line) and the
# number of calls in $2: independent of how long stragglers kept the process alive.
cpu() { tail -1 "$1" | awk -v n="$2" '{printf "%.3f", 1000 * ($1 + $2) / n}'; }

echo "machine: $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
UAS_PORT=$(free_port)
(cd "$WORK" && exec sipp -sn uas -i 127.0.0.1 -p "$UAS_PORT" -mi 127.0.0.1 -nostdin \
    -buff_size 4194304 >/dev/null 2>&1) &
PIDS+=("$!")
sleep 0.5
sed "s/127.0.0.1:5070/127.0.0.1:$UAS_PORT/" bench/scenarios/trivial.yaml > "$WORK/trivial.yaml"

printf '\n%-6s | %-42s | %-66s\n' "rate" "SIPp uac: attempted ok failed CPU ms/call" "sma call: attempted ok failed offered/s CPU ms/call setup p50/p99 ms"
for rate in "${RATES[@]}"; do
  calls=$((rate * SECONDS_PER_RATE))
  # SIPp uac.
  dir=$WORK/sipp-$rate; mkdir -p "$dir"
  (cd "$dir" && /usr/bin/time -f "%U %S" -o "$dir/time" sipp -sn uac "127.0.0.1:$UAS_PORT" \
      -i 127.0.0.1 -p "$(free_port)" -mi 127.0.0.1 -mp "$(free_port)" -r "$rate" -m "$calls" \
      -d 0 -l $((rate * 4 + 100)) -buff_size 4194304 -timeout $((SECONDS_PER_RATE + 30)) \
      -nostdin -trace_stat -fd 1 >/dev/null 2>&1) || true
  sipp_cpu=$(cpu "$dir/time" "$calls")
  stat=$(ls "$dir"/*_.csv 2>/dev/null | head -1)
  sipp=$(python3 - "$stat" <<'PY'
import sys, csv
try:
    rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
    head, last = rows[0], rows[-1]
    col = lambda n: int(last[head.index(n)])
    print(col("OutgoingCall(C)"), col("SuccessfulCall(C)"), col("FailedCall(C)"))
except Exception:
    print("n/a n/a n/a")
PY
)
  # sma call, load mode.
  /usr/bin/time -f "%U %S" -o "$WORK/sma-$rate.time" "$SMA" call -s "$WORK/trivial.yaml" \
      --calls "$calls" --rate "$rate" --rtp-ports 20000-59999 \
      --json "$WORK/sma-$rate.json" >"$WORK/sma-$rate.out" 2>&1 || true
  sma_cpu=$(cpu "$WORK/sma-$rate.time" "$calls")
  sma=$(python3 - "$WORK/sma-$rate.json" <<'PY'
import sys, json
try:
    s = json.load(open(sys.argv[1]))
    p50, p99 = s["setup_ms"]["p50"], s["setup_ms"]["p99"]
    print(s["attempted"], s["passed"], s["failed"], f'{s["offered_rate"]:.0f}',
          f"{p50:.2f}/{p99:.2f}" if p50 is not None else "n/a")
except Exception as e:
    print("n/a n/a n/a n/a n/a")
PY
)
  read -r s_att s_ok s_fail <<<"$sipp"
  read -r m_att m_ok m_fail m_rate m_lat <<<"$sma"
  printf '%-6s | %9s %6s %6s %8s        | %9s %6s %6s %10s %8s     %s\n' "$rate" "$s_att" "$s_ok" "$s_fail" "$sipp_cpu" \
      "$m_att" "$m_ok" "$m_fail" "$m_rate" "$sma_cpu" "$m_lat"
  if [ "$m_fail" != "0" ]; then sed -n '/failed:/p' "$WORK/sma-$rate.out" | head -5; fi
done

HOLD_RATE=${HOLD_RATE:-500}
echo
echo "media: sma call at $HOLD_RATE calls/s, each held 2 s (SIPp's uas sends no RTP back)"
for silence in send suppress; do
  sed "s/127.0.0.1:5070/127.0.0.1:$UAS_PORT/; s/silence: send/silence: $silence/" \
      bench/scenarios/hold.yaml > "$WORK/hold.yaml"
  calls=$((HOLD_RATE * SECONDS_PER_RATE))
  /usr/bin/time -f "%U %S" -o "$WORK/hold.time" "$SMA" call -s "$WORK/hold.yaml" --calls "$calls" \
      --rate "$HOLD_RATE" --rtp-ports 20000-59999 --json "$WORK/hold.json" >"$WORK/hold.out" 2>&1 || true
  python3 - "$WORK/hold.json" "$(cpu "$WORK/hold.time" "$calls")" "$silence" <<'PY'
import sys, json
s = json.load(open(sys.argv[1]))
print(f"  silence {sys.argv[3]:>8}: attempted {s['attempted']} passed {s['passed']} failed {s['failed']}, "
      f"peak in progress {s['peak_in_progress']}, CPU {sys.argv[2]} ms per call")
PY
done
