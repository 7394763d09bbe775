# Shared by the bench/ scripts: a Python virtualenv for the baselines, fresh DynamoDB Local
# servers, timing by hyperfine and the figures of its JSON. Sourced, not run.
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$BENCH_ROOT/bin/local/lib.sh"
BASELINE="${BASELINE:-$BENCH_ROOT/../shared/baseline}"
BENCH_VENV="$STATE/venv"
BENCH_TARGET="${CARGO_TARGET_DIR:-$BENCH_ROOT/target}"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1

# bench_venv: the baselines' Python packages (AWS CLI, boto3, psycopg, matplotlib), installed once.
bench_venv() {
  if [ ! -f "$BENCH_VENV/.bench-ok" ]; then
    say "installing the baselines' Python packages into $BENCH_VENV"
    python3 -m venv "$BENCH_VENV" || die "python3 -m venv failed (apt-get install python3-venv)"
    "$BENCH_VENV/bin/pip" install -q --disable-pip-version-check awscli boto3 'psycopg[binary]' matplotlib >&2 ||
      die "pip could not install the baselines' packages"
    touch "$BENCH_VENV/.bench-ok"
  fi
}

# bench_build: the release build of our binaries.
bench_build() { (cd "$BENCH_ROOT" && cargo build --release --workspace --locked --quiet) || die "cargo build failed"; }

# flood_rs: path of the ceiling probe's binary, built once into .local/flood-target.
flood_rs() {
  local dir="$STATE/flood-target"
  if [ ! -x "$dir/release/flood-rs" ]; then
    [ -f "$BASELINE/flood-rs/Cargo.toml" ] || die "the ceiling probe is not at $BASELINE/flood-rs (set BASELINE)"
    say "building the ceiling probe flood-rs (once)"
    (cd "$BASELINE/flood-rs" && CARGO_TARGET_DIR="$dir" cargo build --release --quiet) >&2 || die "flood-rs did not build"
  fi
  echo "$dir/release/flood-rs"
}

# bench_db: a Postgres database with the course's users for the baselines and ours; sets
# CONNECTION_URL.
bench_db() {
  export CONNECTION_URL="${BENCH_PG_URL:-postgresql://postgres@127.0.0.1:5432/cruddur_bench}"
  "$BENCH_ROOT/bin/db/setup" >/dev/null || die "Postgres is not ready for the benchmark database $CONNECTION_URL"
}

# end_pid PID: stops PID (TERM, then KILL after 10 s) and waits until it is gone.
end_pid() {
  kill "$1" 2>/dev/null || return 0
  wait "$1" 2>/dev/null || true
  for _ in $(seq 40); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.25; done
  kill -9 "$1" 2>/dev/null || true
}

# Every server a bench starts is stopped when it exits: those of fresh_server by pid, those that
# bench/fresh-server starts for hyperfine by their pid files.
SERVERS=() PIDFILES=()
stop_each() { local f; for f in "${PIDFILES[@]}"; do [ -f "$f" ] && end_pid "$(cat "$f")"; rm -f "$f"; done; }
stop_servers() { local p; stop_each; for p in "${SERVERS[@]}"; do end_pid "$p"; done; SERVERS=(); }
trap stop_servers EXIT

# start_server PORT: a new in-memory DynamoDB Local on PORT (SPEC.md: every measurement gets its
# own); sets EP, AWS_ENDPOINT_URL and SERVER_PID. make_table: the table of schema-load on it.
start_server() {
  need_java; ddb_install
  ddb_start "$1" /dev/null
  SERVER_PID=$DDB_STARTED_PID
  EP="http://127.0.0.1:$1"
  export AWS_ENDPOINT_URL="$EP"
}
make_table() { "$BENCH_ROOT/bin/ddb/schema-load" --endpoint-url "$EP" >/dev/null || die "schema-load failed on $EP"; }

# fresh_server [--no-table]: start_server on a free port (stopped at exit at the latest), and the
# table unless --no-table.
fresh_server() {
  start_server "$(free_port)"
  SERVERS+=("$SERVER_PID")
  [ "${1:-}" = --no-table ] || make_table
}

# stop_server: stops the server of the last fresh_server.
stop_server() { end_pid "$SERVER_PID"; unset AWS_ENDPOINT_URL; }

# fresh_each [--no-table]: a fresh server for every timed run: picks a port, sets EP (and
# AWS_ENDPOINT_URL) and PREPARE, hyperfine's --prepare that replaces the server on that port
# (bench/fresh-server); stop_each stops the last one, as the exit does.
fresh_each() {
  local port; port=$(free_port)
  EP="http://127.0.0.1:$port"
  export AWS_ENDPOINT_URL="$EP"
  PREPARE=$(q "$BENCH_ROOT/bench/fresh-server" "$port" "$@")
  PIDFILES+=("$STATE/bench-server-$port.pid")
}

# run_quiet CMD...: runs CMD with its output discarded; when it fails, shows its stderr and stops.
run_quiet() { "$@" >/dev/null 2>"$STATE/bench-last.err" || { cat "$STATE/bench-last.err" >&2; die "failed: $*"; }; }

# q ARGS...: ARGS quoted as one command line, for hyperfine (with or without its shell).
q() { local s; s=$(printf '%q ' "$@"); printf '%s' "${s% }"; }

# need_hyperfine: stops with how to install hyperfine when it is missing; there is no other clock.
need_hyperfine() {
  command -v hyperfine >/dev/null 2>&1 ||
    die "hyperfine not found: bench/ times every command with it (Debian/Ubuntu: apt-get install hyperfine; elsewhere: cargo install --locked hyperfine)"
}

# hf NAME HYPERFINE-ARGS...: times commands with hyperfine (no timing code of our own: it runs,
# warms up, repeats and prepares each run), its figures exported to $HF_OUT/NAME.json for fig.
HF_OUT="$BENCH_ROOT/bench/out/hyperfine"
hf() {
  need_hyperfine
  local json="$HF_OUT/$1.json"; shift
  mkdir -p "$HF_OUT"
  : > "$STATE/bench-prepare.err"
  hyperfine --style none --export-json "$json" "$@" >&2 || {
    [ -s "$STATE/bench-prepare.err" ] && cat "$STATE/bench-prepare.err" >&2
    die "hyperfine stopped: one of its commands failed (run it by hand to see why): hyperfine $*"
  }
}

# fig NAME COMMAND FIELD: a figure of hf NAME's JSON (bench/figures.py: median, mean, min, max,
# cpu, runs), for COMMAND (its -n name, or its command line).
fig() { python3 "$BENCH_ROOT/bench/figures.py" hyperfine "$HF_OUT/$1.json" "$2" "$3"; }

# from_json FILE FIELD...: the median of each FIELD over the JSON objects of FILE, one a line (our
# binaries' --json output).
from_json() { python3 "$BENCH_ROOT/bench/figures.py" lines "$@"; }

# calc FORMAT EXPR: the arithmetic EXPR of numbers, printed with printf's FORMAT.
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# peak_rss_mb CMD...: runs CMD and prints its peak resident set size in MB.
peak_rss_mb() {
  run_quiet /usr/bin/time -f '%M' -o "$STATE/bench-rss" "$@"
  calc %.1f "$(cat "$STATE/bench-rss") / 1024"
}

# verdict VALUE OP GOAL: "met" or "NOT met".
verdict() { awk -v v="$1" -v g="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? (v >= g) : (v <= g); print ok ? "met" : "NOT met" }'; }

# result METRIC OURS BASELINE RATIO GOAL VERDICT [WHY]: one row of bench/run's table (appended to
# $BENCH_RESULTS when bench/run set it); WHY, for a goal not met, is the measured reason.
result() { [ -z "${BENCH_RESULTS:-}" ] || printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "${7:-}" >> "$BENCH_RESULTS"; }

# cpu_seconds PID: the user + system CPU time that process PID has used so far, in seconds.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
