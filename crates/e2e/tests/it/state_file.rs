//! The stream worker's default state file (`$XDG_STATE_HOME/cruddur-ddb/stream-ENDPOINT-TABLE.json`)
//! has a name that a file system takes for every valid table name: DynamoDB allows 255
//! characters, a file name 255 bytes. Issue 20, fault 12.

use ddb_core::records::MessageRow;
use e2e::*;
use std::process::Stdio;
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
    let child = t
        .cmd("stream-worker")
        .args(["--idle-ms", "50"])
        .env("XDG_STATE_HOME", &home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut worker = Guarded::new(child);
    // A record on the stream: the worker saves its position after the batch.
    let row = MessageRow {
        message_group_uuid: uuid::Uuid::new_v4(),
        created_at: ddb_core::records::parse_ts("2026-01-01T00:00:00Z").unwrap(),
        message_uuid: uuid::Uuid::new_v4(),
        message: "hello".into(),
        user_uuid: uuid::Uuid::new_v4(),
        user_display_name: "A".into(),
        user_handle: "a".into(),
    };
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
