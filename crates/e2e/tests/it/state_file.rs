//! The stream worker's state file. Its default name (`$XDG_STATE_HOME/cruddur-ddb/stream-ENDPOINT-TABLE.json`)
//! is one that a file system takes for every valid table name: DynamoDB allows 255 characters, a
//! file name 255 bytes (issue 20, fault 12). A state path that is no state file (a directory, a
//! FIFO, a device, a file too large) and a saved position that the stream cannot start from are
//! refused in one line that says what to do.

use e2e::*;
use std::time::{Duration, Instant};

#[test]
fn the_workers_default_state_file_fits_a_255_character_table_name() {
    let server = DynamoLocal::shared();
    let prefix = table_name("state");
    let name = format!("{prefix}{}", "x".repeat(255 - prefix.len()));
    assert_eq!(name.len(), 255);
    let t = TestTable { ddb: server.ddb(&name), name: name.clone(), endpoint: server.endpoint.clone() };
    let out = t.run("schema-load", &[]);
    assert!(out.status.success(), "schema-load: {}", stderr(&out));

    let home = std::env::temp_dir().join(format!("xdg-state-{}", uuid::Uuid::new_v4().simple()));
    let dir = home.join("cruddur-ddb");
    let log = home.with_extension("log");
    std::fs::create_dir_all(&home).unwrap();
    let child = t.worker_logged(None, &log).env("XDG_STATE_HOME", &home).spawn().unwrap();
    let mut worker = Guarded::new(child);
    // A record on the stream: the worker saves its position after the batch.
    let row = a_message("hello");
    block_on(t.client().put_item().table_name(&name).set_item(Some(row.to_item())).send()).unwrap();
    // Generous: this is a watchdog for a worker that never saves, not a measurement.
    let deadline = Instant::now() + Duration::from_secs(120);
    let saved = loop {
        let files: Vec<_> = std::fs::read_dir(&dir).map(|d| d.map(|e| e.unwrap().file_name()).collect()).unwrap_or_default();
        if let Some(f) = files.iter().find(|f| f.to_string_lossy().ends_with(".json")) {
            break f.to_string_lossy().into_owned();
        }
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(worker.0.try_wait().unwrap().is_none(), "the worker stopped: {log_text}");
        assert!(Instant::now() < deadline, "no state file in {} after 120 s: {log_text}", dir.display());
        std::thread::sleep(Duration::from_millis(100));
    };
    worker.kill();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(saved.len() <= 120, "{} bytes: {saved}", saved.len());
    assert!(saved.starts_with(&format!("stream-http___127.0.0.1_{}-{prefix}xxx", server.endpoint.rsplit(':').next().unwrap())), "{saved}");
    assert!(log_text.contains(&format!("(state: {})", dir.join(&saved).display())), "the worker names the file it uses: {log_text}");
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_file(&log);
}

/// A stream worker on `t` with `args`, run to its end under a watchdog, its address space bounded
/// (4 GiB) so that a read without end fails it instead of the machine.
fn worker_run(t: &TestTable, args: &[&str]) -> std::process::Output {
    let worker = t.cmd("stream-worker");
    let mut c = std::process::Command::new("bash");
    c.args(["-c", "ulimit -v 4194304 && exec \"$0\" \"$@\""]).arg(worker.get_program()).args(args);
    for (k, v) in worker.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    run_watched(&mut c, Duration::from_secs(120))
}

/// The worker's `error:` line, which must be its last line and its only error.
fn error_line(out: &std::process::Output) -> String {
    let err = stderr(out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert_eq!(err.lines().last(), Some(errors[0]), "the error ends the run: {err}");
    errors[0].to_string()
}

/// Issue 20: `--state /dev/zero` read without end (5.7 GB in 10 s) and created /dev/zero.lock; a
/// FIFO blocked the worker for ever. A state path that is not a regular file (a directory, a
/// FIFO, a device), or a file larger than a state file can be, is refused at start in one line
/// naming it and what to do, before the lock file is created beside it.
#[test]
fn a_state_path_that_is_not_a_regular_file_or_too_large_is_refused_at_start() {
    let t = TestTable::create(DynamoLocal::shared(), "statepath");
    let dir = TempDir::new("state-path");
    std::fs::create_dir(dir.join("dir")).unwrap();
    let fifo = std::process::Command::new("mkfifo").arg(dir.join("fifo")).status().unwrap();
    assert!(fifo.success());
    // A device in the test's own folder: a link to /dev/zero (the lock would be zero.lock here).
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.json")).unwrap();
    std::fs::File::create(dir.join("big.json")).unwrap().set_len(16 * 1024 * 1024 + 1).unwrap();
    let cases = [
        ("dir", "dir.lock", "is a directory, not a regular file: give --state the path of a file".to_string()),
        ("fifo", "fifo.lock", "is a named pipe (FIFO), not a regular file: give --state the path of a file".to_string()),
        ("zero.json", "zero.lock", "is a device, not a regular file: give --state the path of a file".to_string()),
        (
            "big.json",
            "big.lock",
            format!(
                "is {} bytes, more than a state file of ours holds (at most 16 MiB): give --state another file, or delete it to start over",
                16 * 1024 * 1024 + 1
            ),
        ),
    ];
    for (name, lock, says) in cases {
        let path = dir.join(name);
        let out = worker_run(&t, &["--state", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        let line = error_line(&out);
        assert_eq!(stderr(&out).lines().count(), 1, "{name}: the refusal is the only line: {}", stderr(&out));
        assert!(line.starts_with(&format!("error: the worker's state file {} {says}", path.display())), "{name}: {line}");
        assert!(!dir.join(lock).exists(), "{name}: the lock file was created beside it");
    }
}

/// Issue 20: a state file whose saved position of a shard is not one the stream can start from
/// (edited by hand) ended with `GetShardIterator failed: InternalFailure: ... unknown error`, and
/// with --wait-for-table was tried again for ever. Now one line names the state file, the shard
/// and the position, and says what to do.
#[test]
fn a_saved_position_the_stream_cannot_start_from_is_one_line_naming_it() {
    let t = TestTable::create(DynamoLocal::shared(), "badpos");
    let dir = TempDir::new("bad-position");
    let state = dir.join("state.json");
    let mut worker = t.worker(&state);
    let row = a_message("hello");
    block_on(t.client().put_item().table_name(&t.name).set_item(Some(row.to_item())).send()).unwrap();
    // Generous: a watchdog for a worker that never saves, not a measurement.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (saved, shard) = loop {
        let saved: Option<serde_json::Value> = std::fs::read(&state).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let shard = saved.as_ref().and_then(|s| s["shards"].as_object()?.iter().find(|(_, p)| p["last"].is_string()).map(|(id, _)| id.clone()));
        if let (Some(saved), Some(shard)) = (saved, shard) {
            break (saved, shard);
        }
        assert!(worker.0.try_wait().unwrap().is_none(), "the worker stopped");
        assert!(Instant::now() < deadline, "no position saved within 120 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    worker.kill();
    // Not a sequence number (ValidationException), and two of its length that the shard never had
    // (DynamoDB Local's InternalFailure): tried with --wait-for-table too, which must not retry them.
    for (position, args) in
        [("x", &[][..]), ("999999999999999999999", &["--wait-for-table"][..]), ("xxxxxxxxxxxxxxxxxxxxx", &["--wait-for-table"][..])]
    {
        let mut edited = saved.clone();
        edited["shards"][&shard]["last"] = serde_json::Value::String(position.into());
        std::fs::write(&state, serde_json::to_vec(&edited).unwrap()).unwrap();
        let out = worker_run(&t, &[&["--state", state.to_str().unwrap()][..], args].concat());
        assert_eq!(out.status.code(), Some(1), "{position}: {}", stderr(&out));
        let line = error_line(&out);
        assert!(
            line.starts_with(&format!(
                "error: the state file {} saves a position that the stream cannot start from (shard {shard}, after sequence number \"{position}\"; GetShardIterator answered ",
                state.display()
            )) && line.ends_with("delete it to start over (the stream is then read from its oldest record, as --from trim-horizon does; records already applied change nothing)"),
            "{position}: {line}"
        );
        assert!(!stderr(&out).contains("trying again"), "{position}: {}", stderr(&out));
    }
    // Deleted, as the line says: the worker starts over and reads the stream again.
    std::fs::remove_file(&state).unwrap();
    let mut worker = t.worker(&state);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(&state).is_ok_and(|s| s.contains("\"last\"")) {
        assert!(worker.0.try_wait().unwrap().is_none(), "the worker stopped");
        assert!(Instant::now() < deadline, "no position saved within 120 s after starting over");
        std::thread::sleep(Duration::from_millis(100));
    }
    worker.kill();
}
