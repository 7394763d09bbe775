//! bin/local's scripts at their edges: pid files that no longer name the process `up` started
//! (they outlive reboots and workspace restarts), pid files holding no pid at all, and a server
//! on the port that is not DynamoDB. Each test uses a port of its own, so its pid files are its own.

use e2e::*;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

/// The pid files of the stack on `port`: DynamoDB Local's and the stream worker's.
fn pid_files(port: u16) -> [PathBuf; 2] {
    [root().join(format!(".local/dynamodb/dynamodb-local-{port}.pid")), root().join(format!(".local/stream-worker-{port}.pid"))]
}

/// Stops the stack on this port (bin/local/down) when the test ends, however it ends, and removes
/// the worker's files of that port.
struct Down(u16);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(root().join("bin/local/down")).env("DDB_LOCAL_PORT", self.0.to_string()).output();
        // What no pid file names any more (a test that failed): this port's, found by command line.
        for pid in processes_of(self.0) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        for ext in ["json", "lock", "log"] {
            let _ = std::fs::remove_file(root().join(format!(".local/stream-worker-{}.{ext}", self.0)));
        }
        let _ = std::fs::remove_file(root().join(format!(".local/dynamodb/dynamodb-local-{}.log", self.0)));
    }
}

/// Runs `bin/local/SCRIPT ARGS` for the stack on `port`, with `db` as its Postgres, the binaries
/// of this build, and `env` besides.
fn local(port: u16, db: &TestDb, script: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let target = bin("stream-worker").parent().and_then(|p| p.parent()).unwrap().to_path_buf();
    let mut c = Command::new(root().join("bin/local").join(script));
    c.args(args).env("DDB_LOCAL_PORT", port.to_string()).env("CONNECTION_URL", &db.url).env("CARGO_TARGET_DIR", target);
    c.envs(env.iter().copied());
    run_watched(&mut c, Duration::from_secs(120))
}

/// The processes of the stack on `port`, by their command lines: DynamoDB Local's java (`-port
/// PORT`) and the stream worker (`--endpoint-url http://localhost:PORT`).
fn processes_of(port: u16) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let args = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let args: Vec<String> = args.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        let has = |pair: [&str; 2]| args.windows(2).any(|w| w[0] == pair[0] && w[1] == pair[1]);
        let java = args.iter().any(|a| a == "DynamoDBLocal.jar") && has(["-port", &port.to_string()]);
        let worker = args.first().is_some_and(|a| a.ends_with("/stream-worker")) && has(["--endpoint-url", &format!("http://localhost:{port}")]);
        if java || worker {
            found.push(pid);
        }
    }
    found
}

fn plant(port: u16, content: &str) {
    for f in pid_files(port) {
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, content).unwrap();
    }
}

/// The pid after `prefix` in `text` ("... (pid 123, ..."), if any.
fn pid_after(text: &str, prefix: &str) -> Option<u32> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Fault 1: pid files holding the pid of an unrelated process (this test's `sleep`): `down`
/// leaves it alone and says the files were stale, `status` says nothing runs, `up` starts its
/// own server and worker instead of "already running". Before, `down` sent it TERM.
#[test]
fn pid_files_naming_another_process_are_never_trusted() {
    let db = TestDb::create();
    let port = free_port();
    let _down = Down(port);
    let mut stranger = Guarded::new(Command::new("sleep").arg("600").spawn().unwrap());
    let spid = stranger.0.id();
    let alive = |s: &mut Guarded| s.0.try_wait().unwrap().is_none();
    let [ddb_file, worker_file] = pid_files(port);

    plant(port, &format!("{spid}\n"));
    let down = local(port, &db, "down", &[], &[]);
    let err = stderr(&down);
    assert!(down.status.success(), "{err}");
    for (file, name) in [(&ddb_file, "DynamoDB Local"), (&worker_file, "the stream worker")] {
        assert!(err.contains(&format!("removed the stale pid file {} (pid {spid} is another program now, not {name})", file.display())), "{err}");
        assert!(!file.exists(), "{} is still there", file.display());
    }
    assert!(err.contains("DynamoDB Local is not running") && err.contains("the stream worker is not running"), "{err}");
    assert!(alive(&mut stranger), "down stopped a process it did not start");

    plant(port, &format!("{spid}\n"));
    let status = local(port, &db, "status", &[], &[]);
    assert_eq!(status.status.code(), Some(1), "{}", stdout(&status));
    assert!(stdout(&status).contains("dynamodb-local: not running") && stdout(&status).contains("stream-worker: not running"), "{}", stdout(&status));
    assert!(stderr(&status).contains("removed the stale pid file"), "{}", stderr(&status));

    plant(port, &format!("{spid}\n"));
    let up = local(port, &db, "up", &[], &[]);
    let err = stderr(&up);
    assert!(up.status.success(), "{err}");
    assert!(!err.contains("already running"), "{err}");
    assert!(err.contains(&format!("DynamoDB Local running on http://localhost:{port}")) && err.contains("stream worker running (pid"), "{err}");
    let status = local(port, &db, "status", &[], &[]);
    let out = stdout(&status);
    assert!(status.status.success(), "{out}");
    let ddb_pid = pid_after(&out, &format!("dynamodb-local: running on http://localhost:{port} (pid ")).unwrap_or_else(|| panic!("{out}"));
    let worker_pid = pid_after(&out, "stream-worker: running (pid ").unwrap_or_else(|| panic!("{out}"));
    assert!(ddb_pid != spid && worker_pid != spid, "{out}");

    let down = local(port, &db, "down", &[], &[]);
    let err = stderr(&down);
    assert!(
        err.contains(&format!("stopped the stream worker (pid {worker_pid})")) && err.contains(&format!("stopped DynamoDB Local (pid {ddb_pid})")),
        "{err}"
    );
    assert!(alive(&mut stranger), "down stopped a process it did not start");
}

/// Pid files holding no pid (0, -1, nothing, words, a number no pid can be) are stale files, and
/// nothing of theirs reaches `kill` (a `kill 0` or `kill -1` would signal a process group or
/// every process). A `kill` function in BASH_ENV takes the builtin's place and records each call.
#[test]
fn pid_files_holding_no_pid_never_reach_kill() {
    let db = TestDb::create();
    let port = free_port();
    let _down = Down(port);
    let dir = std::env::temp_dir().join(format!("no-pid-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (log, shim) = (dir.join("kill.log"), dir.join("bash-env"));
    std::fs::write(&shim, format!("kill() {{ printf '%s\\n' \"$*\" >> '{}'; }}\n", log.display())).unwrap();
    let env = [("BASH_ENV", shim.to_str().unwrap())];
    for content in ["0", "-1", "", "\n", "garbage", "12abc", "-0", " 0 ", "1 2", "99999999999999999999", "$(true)"] {
        plant(port, content);
        let down = local(port, &db, "down", &[], &env);
        let err = stderr(&down);
        assert!(down.status.success(), "{content:?}: {err}");
        for file in pid_files(port) {
            assert!(err.contains(&format!("removed the stale pid file {} (it holds no pid)", file.display())), "{content:?}: {err}");
            assert!(!file.exists(), "{content:?}");
        }
        plant(port, content);
        let status = local(port, &db, "status", &[], &env);
        assert!(stdout(&status).contains("dynamodb-local: not running") && stdout(&status).contains("stream-worker: not running"), "{content:?}");
    }
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(calls.is_empty(), "kill was called: {calls}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server on the port that is not DynamoDB (a web server, one that never answers): `up` stops
/// with one line that says so and what to do, instead of "using it" and scripts failing later on
/// a parse error; `status` says so too. DynamoDB Local started by someone else is still used.
#[test]
fn up_refuses_a_server_on_its_port_that_is_not_dynamodb() {
    let db = TestDb::create();
    let port = free_port();
    let _down = Down(port);
    let _web = serve(Command::new("python3").args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1"]), port, "python3 -m http.server");
    let up = local(port, &db, "up", &[], &[]);
    let err = stderr(&up);
    assert_eq!(up.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with(&format!(
            "error: port {port} is taken by a server that is not DynamoDB Local (it answered DynamoDB's ListTables with HTTP 501"
        )) && err.contains(&format!("stop it, or run the stack on another port (DDB_LOCAL_PORT={} ./bin/local/up", 8001))
            && err.contains("AWS_ENDPOINT_URL="),
        "{err}"
    );
    assert!(pid_files(port).iter().all(|f| !f.exists()), "nothing started");
    let status = local(port, &db, "status", &[], &[]);
    assert_eq!(status.status.code(), Some(1));
    assert!(stdout(&status).contains(&format!("dynamodb-local: not running; something else answers on port {port}")), "{}", stdout(&status));

    let silent = SilentServer::start();
    let silent_port: u16 = silent.addr.rsplit(':').next().unwrap().parse().unwrap();
    let _down_silent = Down(silent_port);
    let up = local(silent_port, &db, "up", &[], &[]);
    let err = stderr(&up);
    assert_eq!(up.status.code(), Some(1), "{err}");
    assert!(err.starts_with(&format!("error: port {silent_port} is taken by a server that is not DynamoDB Local (it gave no HTTP answer")), "{err}");

    let server = DynamoLocal::start();
    let ddb_port: u16 = server.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let _down_ddb = Down(ddb_port);
    let up = local(ddb_port, &db, "up", &["--no-worker"], &[]);
    assert!(up.status.success(), "{}", stderr(&up));
    assert!(stderr(&up).contains(&format!("DynamoDB already answers on port {ddb_port}")) && stderr(&up).contains("using it"), "{}", stderr(&up));
}

/// Issue 20: a pid file path that is a directory made `up` print a raw `Is a directory`, exit 1
/// and leave the DynamoDB Local it had started running, untracked; `down` said "not running" and
/// failed on `rm`. Now `up` refuses in one line before anything starts, and `status` and `down`
/// say the same line (exit 1) and remove nothing.
#[test]
fn a_pid_file_path_that_is_not_a_file_is_refused_before_anything_starts() {
    let db = TestDb::create();
    let port = free_port();
    let _down = Down(port);
    for (file, name) in pid_files(port).into_iter().zip(["DynamoDB Local", "the stream worker"]) {
        std::fs::create_dir_all(&file).unwrap();
        let says = |script: &str| {
            format!("error: the pid file of {name}, {}, is a directory, not a file: remove it, then run bin/local/{script} again", file.display())
        };
        let up = local(port, &db, "up", &[], &[]);
        let err = stderr(&up);
        assert_eq!(up.status.code(), Some(1), "{name}: {err}");
        assert_eq!(err.lines().collect::<Vec<_>>(), [says("up")], "{name}: one line");
        assert!(processes_of(port).is_empty() && std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "{name}: up started something");

        let status = local(port, &db, "status", &[], &[]);
        assert_eq!(status.status.code(), Some(1), "{name}: {}", stdout(&status));
        assert!(stderr(&status).lines().any(|l| l == says("status")), "{name}: {}", stderr(&status));

        let down = local(port, &db, "down", &[], &[]);
        let err = stderr(&down);
        assert_eq!(down.status.code(), Some(1), "{name}: {err}");
        assert!(err.lines().any(|l| l == says("down")) && !err.contains("rm:") && !err.contains(&format!("{name} is not running")), "{name}: {err}");
        assert!(file.is_dir(), "{name}: down removed what it did not write");
        std::fs::remove_dir(&file).unwrap();
    }
}

/// When a pid file cannot be written after a start, what started is stopped again: a pid file
/// that is a link into a folder that does not exist (what a write that fails looks like; a
/// directory put there meanwhile, a full disk). For DynamoDB Local, and for the stream worker.
#[test]
fn what_started_is_stopped_again_when_its_pid_file_cannot_be_written() {
    let db = TestDb::create();
    let port = free_port();
    let _down = Down(port);
    let [ddb_file, worker_file] = pid_files(port);
    let nowhere = std::env::temp_dir().join(format!("no-such-folder-{}", uuid::Uuid::new_v4().simple())).join("x.pid");
    std::fs::create_dir_all(ddb_file.parent().unwrap()).unwrap();
    for (file, name) in [(&ddb_file, "DynamoDB Local"), (&worker_file, "the stream worker")] {
        let _ = std::fs::remove_file(file);
        std::os::unix::fs::symlink(&nowhere, file).unwrap();
        let up = local(port, &db, "up", &[], &[]);
        let err = stderr(&up);
        assert_eq!(up.status.code(), Some(1), "{name}: {err}");
        let line = err.lines().last().unwrap_or_default();
        assert!(
            line.starts_with(&format!("error: cannot write the pid file {} (No such file or directory), so {name} (pid ", file.display()))
                && line.ends_with(&format!(
                    "which nothing would have kept track of, was stopped again: remove or fix {}, then run bin/local/up again",
                    file.display()
                )),
            "{name}: {err}"
        );
        let left: Vec<u32> = processes_of(port);
        match name {
            "DynamoDB Local" => assert!(left.is_empty(), "{name}: left running: {left:?}"),
            // DynamoDB Local started before it, its pid file written: still running, and stopped by down.
            _ => {
                assert!(
                    !left.is_empty()
                        && left.iter().all(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap().contains("DynamoDBLocal.jar")),
                    "{name}: {left:?}"
                );
                let down = local(port, &db, "down", &[], &[]);
                assert!(stderr(&down).contains("stopped DynamoDB Local (pid "), "{}", stderr(&down));
            }
        }
        let _ = std::fs::remove_file(file);
    }
    assert!(processes_of(port).is_empty(), "{:?}", processes_of(port));
}

/// Issue 20: `DDB_LOCAL_PORT=abc bin/local/status` said "not running (./bin/local/up starts it)".
/// Every bin/local script checks it first: a whole number from 1 to 65535, else one line, exit 2.
#[test]
fn a_ddb_local_port_that_is_not_a_port_is_refused_by_every_script() {
    let db = TestDb::create();
    let run = |script: &str, args: &[&str], value: &str| {
        let target = bin("stream-worker").parent().and_then(|p| p.parent()).unwrap().to_path_buf();
        let mut c = Command::new(root().join("bin/local").join(script));
        c.args(args).env("DDB_LOCAL_PORT", value).env("CONNECTION_URL", &db.url).env("CARGO_TARGET_DIR", target);
        run_watched(&mut c, Duration::from_secs(120))
    };
    let check = |script: &str, args: &[&str], value: &str, shown: &str| {
        let out = run(script, args, value);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{script} with {value:?}: {err}");
        assert_eq!(
            err.lines().collect::<Vec<_>>(),
            [format!("error: DDB_LOCAL_PORT=\"{shown}\" is not a port: give a whole number from 1 to 65535 (unset, it is 8000)")],
            "{script} with {value:?}"
        );
    };
    for (value, shown) in
        [("abc", "abc"), ("70000", "70000"), ("8000 -x", "8000 -x"), ("0", "0"), ("-1", "-1"), ("08000", "08000"), ("\u{1b}[2J", "?[2J")]
    {
        for script in ["status", "down"] {
            check(script, &[], value, shown);
        }
    }
    // Scripts that would start something are run with words that no server takes; the others ask
    // for their help, which comes after the check.
    for script in ["up", "reset"] {
        check(script, &[], "abc", "abc");
    }
    for script in ["dynamodb-local", "install", "install-moto", "install-cargo-lambda", "install-cargo-tools", "install-deploy-tools"] {
        check(script, &["--help"], "8000 -x", "8000 -x");
    }
}
