# Shared set-up of the SIPp load benchmarks (sourced): the release sma, a scratch folder,
# background processes killed on exit, enough file descriptors, and a free-port helper.
command -v sipp >/dev/null || { echo "sipp is missing (apt install sip-tester)"; exit 1; }
cargo build -q --release -p sma-server
SMA=$TARGET/release/sma
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
[ "$(ulimit -n)" -ge 65536 ] || ulimit -n 65536 2>/dev/null || true

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
