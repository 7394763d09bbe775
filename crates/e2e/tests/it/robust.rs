//! Never hang, never panic, never confuse: servers that take the connection and then say nothing,
//! a stdout closed by its reader, a `users` table of unexpected shape, cursors with offsets,
//! `prod` without credentials, Postgres over TLS, and the local stack's scripts.

use ddb_core::patterns::{self, Page};
use ddb_core::seed::COURSE_GROUP;
use e2e::fault::FaultProxy;
use e2e::*;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Far above any expected run: only a hang reaches it.
const WATCHDOG: Duration = Duration::from_secs(60);

/// Exit 1 and exactly one line on stderr, `error: ...` containing `want`.
fn assert_one_error_line(what: &str, out: &Output, want: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: one line, got: {err}");
    assert!(err.starts_with("error: ") && err.contains(want), "{what}: {err:?} lacks {want:?}");
}

#[test]
fn a_dynamodb_that_never_answers_is_one_line_naming_the_timeout() {
    let silent = SilentServer::start();
    let db = TestDb::create();
    let g = COURSE_GROUP.to_string();
    let runs: [(&str, &[&str], &str); 9] = [
        ("list-tables", &[], "ListTables"),
        ("schema-load", &[], "CreateTable"),
        ("scan", &[], "Scan"),
        ("drop", &["t-silent"], "DeleteTable"),
        ("get-conversations", &[], "Query"),
        ("list-conversations", &[], "Query"),
        ("seed", &[], "DescribeTable"),
        ("create-message", &[&g, "bayko", "hi"], "Query"),
        ("create-conversation", &["bayko", "yaya2devops", "hi"], "TransactWriteItems"),
    ];
    for (name, args, op) in runs {
        let out = run_watched(clean_cmd(name).args(args).env("AWS_ENDPOINT_URL", silent.url()).env("CONNECTION_URL", &db.url), WATCHDOG);
        assert_one_error_line(name, &out, &format!("DynamoDB at {} did not answer within 10 s ({op})", silent.url()));
        assert!(stderr(&out).contains("./bin/local/status"), "{name}: {}", stderr(&out));
    }
}

#[test]
fn a_postgres_that_never_answers_is_one_line_naming_the_timeout() {
    let silent = SilentServer::start();
    let t = TestTable::create(DynamoLocal::shared(), "pgsilent");
    let url = format!("postgresql://postgres@{}/cruddur", silent.addr);
    let g = COURSE_GROUP.to_string();
    let runs: [(&str, &[&str]); 7] = [
        ("seed", &[]),
        ("list-conversations", &[]),
        ("create-message", &[&g, "bayko", "hi"]),
        ("create-conversation", &["bayko", "yaya2devops", "hi"]),
        ("db-setup", &[]),
        ("db-setup", &["--check"]),
        ("update_cognito_user_ids", &["--user-pool-id", "us-east-1_x"]),
    ];
    for (name, args) in runs {
        let out = run_watched(t.cmd(name).args(args).env("CONNECTION_URL", &url), WATCHDOG);
        let err = stderr(&out);
        // update_cognito_user_ids prints its course header on stdout first; stderr is the one line.
        assert_one_error_line(name, &out, &format!("postgres ({url}): did not answer within 5 s"));
        assert!(err.contains(&format!("pg_isready -h 127.0.0.1 -p {}", silent.addr.rsplit(':').next().unwrap())), "{name}: {err}");
    }
    assert!(t.items().is_empty());
    // For a caller of the library, it is a timeout (and a refused connection is not).
    let err = block_on(ddb_core::pg::connect(&url)).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ddb_core::ErrorKind::Timeout, "{err}");
    let refused = format!("postgresql://postgres@127.0.0.1:{}/cruddur", free_port());
    let err = block_on(ddb_core::pg::connect(&refused)).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ddb_core::ErrorKind::Postgres, "{err}");
    assert!(std::error::Error::source(&err).is_some(), "the client's error is kept as the source: {err:?}");
}

#[test]
fn the_stream_worker_keeps_trying_a_silent_server_and_says_so() {
    let silent = SilentServer::start();
    let dir = TempDir::new("worker-silent");
    let state = dir.join("state.json");
    let mut child = clean_cmd("stream-worker")
        .args(["--wait-for-table", "--state"])
        .arg(&state)
        .env("AWS_ENDPOINT_URL", silent.url())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its log says what it waits for; then it asks again (a new connection: the one that timed
    // out is dropped), and is still running.
    use std::io::BufRead;
    let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if line.contains("did not answer") {
                let _ = tx.send(line);
            }
        }
    });
    let note = rx.recv_timeout(WATCHDOG);
    let deadline = std::time::Instant::now() + WATCHDOG;
    while silent.accepted() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let still_running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    let note = note.expect("a note about the silent server in the worker's log");
    assert!(note.starts_with("stream-worker: waiting for table") && note.contains(&format!("{} did not answer within 10 s", silent.url())), "{note}");
    assert!(silent.accepted() >= 2, "the worker did not ask again");
    assert!(still_running, "the worker gave up");
}

/// Runs `cmd` with its stdout a pipe whose reading end is already closed.
fn with_closed_stdout(cmd: &mut Command) -> Output {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    wait_watched(child, WATCHDOG, &format!("{cmd:?} with a closed stdout"))
}

fn assert_quiet_success(what: &str, out: &Output) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(0), "{what}: {err}");
    assert!(!err.contains("panicked") && !err.contains("error"), "{what}: {err}");
}

#[test]
fn a_closed_stdout_is_a_quiet_success_in_every_script() {
    let (t, db) = seeded(DynamoLocal::shared(), "closed", &[]);
    let g = COURSE_GROUP.to_string();
    let other = TestTable::create(DynamoLocal::shared(), "closeddrop");
    let runs: Vec<(&str, Vec<&str>)> = vec![
        ("list-tables", vec![]),
        ("schema-load", vec![]),
        ("scan", vec![]),
        ("get-conversations", vec![]),
        ("list-conversations", vec![]),
        ("seed", vec![]),
        ("create-message", vec![&g, "bayko", "hi"]),
        ("create-conversation", vec!["bayko", "yaya2devops", "hi"]),
        ("db-setup", vec![]),
        ("db-setup", vec!["--check"]),
        ("drop", vec![&other.name]),
    ];
    for (name, args) in runs {
        let out = with_closed_stdout(t.cmd_db(name, &db).args(&args));
        assert_quiet_success(name, &out);
    }
    // The seed still did its work before it had nothing to say it to.
    assert_eq!(t.items().iter().filter(|i| s(i, "pk").starts_with("MSG#")).count(), 24 + 1 + 1);
}

#[test]
fn unexpected_users_columns_are_one_line_naming_the_column() {
    let t = TestTable::create(DynamoLocal::shared(), "oddusers");
    let null_db = TestDb::create();
    null_db.exec("ALTER TABLE users ALTER COLUMN display_name DROP NOT NULL; UPDATE users SET display_name = NULL WHERE handle = 'bayko'");
    let int_db = TestDb::create();
    int_db.exec("ALTER TABLE users ALTER COLUMN handle TYPE integer USING length(handle)");
    let text_uuid_db = TestDb::create();
    text_uuid_db.exec("ALTER TABLE users ALTER COLUMN uuid TYPE text");
    for (db, want) in [
        (&null_db, "column users.display_name is NULL for handle bayko, expected text"),
        (&int_db, "column users.handle has type int4, expected text"),
        (&text_uuid_db, "column users.uuid has type text, expected uuid"),
    ] {
        for name in ["seed", "list-conversations", "create-conversation"] {
            let args: &[&str] = if name == "create-conversation" { &["yaya2devops", "bayko", "hi"] } else { &[] };
            let out = run_watched(t.cmd_db(name, db).args(args), WATCHDOG);
            if name == "list-conversations" && db.url == null_db.url {
                // yaya2devops, whom it looks up, has a display name: nothing to complain about.
                assert!(out.status.success(), "{}", stderr(&out));
                continue;
            }
            assert_one_error_line(name, &out, want);
        }
    }
    assert!(t.items().is_empty(), "nothing written");
}

#[test]
fn cursors_with_any_offset_select_the_same_page() {
    let (t, _db) = seeded(DynamoLocal::shared(), "offsets", &[]);
    let all = block_on(patterns::list_messages(&t.ddb, COURSE_GROUP, &Page { limit: 1000, before: None })).unwrap().items;
    // The cursor of the 10th message, spelt as the table does, with Z, and at +05:30.
    let at = ddb_core::records::parse_ts(&all[9].created_at).unwrap();
    let spellings = [
        ddb_core::records::format_ts(at),
        at.format(&time::format_description::well_known::Rfc3339).unwrap().replace("+00:00", "Z"),
        at.to_offset(time::macros::offset!(+5:30)).format(&time::format_description::well_known::Rfc3339).unwrap(),
        at.to_offset(time::macros::offset!(-8)).format(&time::format_description::well_known::Rfc3339).unwrap(),
    ];
    assert!(spellings[1].ends_with('Z') && spellings[2].ends_with("+05:30"), "{spellings:?}");
    let want: Vec<_> = all[..9].iter().map(|m| m.uuid).collect();
    for c in &spellings {
        let page = block_on(patterns::list_messages(&t.ddb, COURSE_GROUP, &Page { limit: 1000, before: Some(c.clone()) })).unwrap();
        assert_eq!(page.items.iter().map(|m| m.uuid).collect::<Vec<_>>(), want, "--before {c}");
        // And through the script.
        let out = t.run("get-conversations", &["--output", "json", "--limit", "1000", "--before", c]);
        let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
        assert_eq!(listed.len(), 9, "--before {c}");
    }
    // A nanosecond after the 9th message still includes it; at it, excludes it.
    let ninth = ddb_core::records::parse_ts(&all[8].created_at).unwrap();
    let fmt = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).unwrap();
    for (c, n) in [(fmt(ninth + time::Duration::nanoseconds(1)), 9), (fmt(ninth), 8)] {
        let page = block_on(patterns::list_messages(&t.ddb, COURSE_GROUP, &Page { limit: 1000, before: Some(c.clone()) })).unwrap();
        assert_eq!(page.items.len(), n, "--before {c}");
    }
}

#[test]
fn prod_without_credentials_says_so_and_sends_nothing() {
    let home = std::env::temp_dir().join(format!("no-aws-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&home).unwrap();
    // Under prod the SDK honours AWS_ENDPOINT_URL: a listener there proves that nothing was sent.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    for name in ["list-tables", "scan"] {
        let out = run_watched(
            clean_cmd(name)
                .arg("prod")
                .env("HOME", &home)
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ENDPOINT_URL", format!("http://{}", trap.local_addr().unwrap())),
            WATCHDOG,
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(last.starts_with("error: no AWS credentials found for DynamoDB at AWS") && last.contains("AWS_ACCESS_KEY_ID"), "{err}");
        assert!(!err.contains("cannot reach") && !err.contains("endpoint URL"), "{err}");
    }
    assert!(trap.accept().is_err(), "a request was sent without credentials");
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn help_tells_the_true_defaults_and_flags_that_do_nothing_are_refused() {
    let help_of = |name: &str| stdout(&clean_cmd(name).arg("--help").output().unwrap()).split_whitespace().collect::<Vec<_>>().join(" ");
    for name in ["list-users", "update_cognito_user_ids"] {
        let help = help_of(name);
        assert!(!help.contains("localhost:8000"), "{name}: {help}");
        assert!(help.contains("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER or AWS_ENDPOINT_URL when set, else AWS"), "{name}: {help}");
    }
    let help = help_of("scan");
    assert!(help.contains("else http://localhost:8000"), "{help}");

    let out = clean_cmd("list-tables").args(["--table", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unexpected argument '--table'"), "{}", stderr(&out));

    let out = run_watched(Command::new(root().join("bin/test")).arg("--help"), WATCHDOG);
    assert!(out.status.success() && stdout(&out).starts_with("bin/test: ") && stdout(&out).contains("Usage: bin/test"), "{}", stdout(&out));
    assert!(stderr(&out).is_empty(), "bin/test --help built or ran something: {}", stderr(&out));
}

#[test]
fn the_seed_tells_written_from_cleared_and_an_early_stop_from_a_late_one() {
    let (t, db) = seeded(DynamoLocal::shared(), "seedline", &[]);
    let again = t.seed(&db, &[]);
    let last = stdout(&again).lines().last().unwrap().to_string();
    assert!(last.contains(": 26 items written in ") && last.contains("; replaced the earlier seed (26 items), cleared in "), "{last}");
    assert_eq!(stdout(&again).lines().count(), 1, "{}", stdout(&again));

    // Every BatchWriteItem hangs: the seed stops in its writing phase with only the two group
    // rows written (they go first, in a transaction; the messages go by BatchWriteItem).
    let proxy = FaultProxy::start(&t.endpoint);
    proxy.faults.only(&["BatchWriteItem"]);
    proxy.faults.delay_ms.store(30_000, Relaxed);
    let fresh = TestTable::create(DynamoLocal::shared(), "seedstop");
    let out = run_watched(fresh.seed_cmd(&db, &[]).env("AWS_ENDPOINT_URL", &proxy.endpoint).env_remove("DDB_LOCAL_TIMEOUT"), WATCHDOG);
    assert_one_error_line("seed", &out, "did not answer within 10 s (BatchWriteItem)");
    assert!(stderr(&out).contains("; the seed stopped while writing (2 of 26 items done); run it again"), "{}", stderr(&out));
}

/// A `users` table that is not the course's (no `handle` column): db-setup says so and what to do,
/// not only Postgres's words.
#[test]
fn db_setup_names_a_users_table_of_another_shape() {
    let db = TestDb::create();
    db.exec("ALTER TABLE users DROP COLUMN handle");
    let out = run_watched(clean_cmd("db-setup").env("CONNECTION_URL", &db.url), WATCHDOG);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with("error: ") && err.lines().count() == 1, "{err}");
    assert!(err.contains("column \"handle\"") && err.contains("not shaped as the course's (db/schema.sql)"), "{err}");
}

/// CONNECTION_URL may name the server's Unix socket, as libpq's URLs do (`host=/var/run/...`):
/// a plain connection needs no DNS name (it was refused as "invalid dns name"), and TLS over it
/// says what to do.
#[test]
fn postgres_over_a_unix_socket_connects() {
    let db = TestDb::create();
    let dirs: String = block_on(async {
        let c = ddb_core::pg::connect(&db.url).await.unwrap();
        c.client().query_one("SHOW unix_socket_directories", &[]).await.unwrap().get(0)
    });
    let dir =
        dirs.split(',').map(str::trim).find(|d| !d.is_empty()).unwrap_or_else(|| {
            panic!("the tests' Postgres listens on no Unix socket (unix_socket_directories = {dirs:?}): set one in postgresql.conf")
        });
    let name = db.url.rsplit('/').next().unwrap();
    let socket = format!("postgresql:///{name}?host={dir}&user=postgres");
    let out = run_watched(clean_cmd("db-setup").arg("--check").env("CONNECTION_URL", &socket), WATCHDOG);
    assert!(out.status.success() && stdout(&out).contains("users table with 2 row(s)"), "{}", stderr(&out));
    let out = run_watched(clean_cmd("db-setup").arg("--check").env("CONNECTION_URL", format!("{socket}&sslmode=require")), WATCHDOG);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("for a Unix socket, use sslmode=disable"), "{}", stderr(&out));
}

#[test]
fn postgres_over_tls_encrypts_and_checks_what_it_is_asked_to() {
    let db = TestDb::create();
    let require = format!("{}?sslmode=require", db.url);
    let ssl = block_on(async {
        let c = ddb_core::pg::connect(&require).await.unwrap();
        c.client().query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get::<_, bool>(0)
    });
    assert!(ssl, "sslmode=require connected without TLS (the machine's Postgres has ssl = on)");
    let out = run_watched(clean_cmd("db-setup").arg("--check").env("CONNECTION_URL", &require), WATCHDOG);
    assert!(out.status.success() && stdout(&out).contains("users table with 2 row(s)"), "{}", stderr(&out));
    // Without sslmode: plain, as before.
    let plain = block_on(async {
        let c = ddb_core::pg::connect(&db.url).await.unwrap();
        c.client().query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get::<_, bool>(0)
    });
    assert!(!plain);

    // verify-full with no root to check against, and with roots that did not sign it.
    let home = std::env::temp_dir().join(format!("no-pg-roots-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&home).unwrap();
    let out = run_watched(
        clean_cmd("db-setup").arg("--check").env("HOME", &home).env("CONNECTION_URL", format!("{}?sslmode=verify-full", db.url)),
        WATCHDOG,
    );
    assert_one_error_line("verify-full without roots", &out, "no root certificate to check the server's against: name its CA with sslrootcert=");
    let bundle = "/etc/ssl/certs/ca-certificates.crt";
    let out = run_watched(
        clean_cmd("db-setup").arg("--check").env("CONNECTION_URL", format!("{}?sslmode=verify-full&sslrootcert={bundle}", db.url)),
        WATCHDOG,
    );
    assert_one_error_line("verify-full with other roots", &out, "the server's certificate is not trusted");

    // With the server's own certificate as the root: verify-ca passes whatever the name;
    // verify-full passes when the URL names the host the certificate names.
    let (cert_file, names) = server_cert();
    let ca = format!("{}?sslmode=verify-ca&sslrootcert={cert_file}", db.url);
    let out = run_watched(clean_cmd("db-setup").arg("--check").env("CONNECTION_URL", &ca), WATCHDOG);
    assert!(out.status.success(), "verify-ca with the server's certificate: {}", stderr(&out));
    let out = run_watched(
        clean_cmd("db-setup").arg("--check").env("CONNECTION_URL", format!("{}?sslmode=verify-full&sslrootcert={cert_file}", db.url)),
        WATCHDOG,
    );
    if !names.iter().any(|n| n == "127.0.0.1") {
        assert_one_error_line("verify-full by address", &out, "the server's certificate is not for this host name");
    }
    // Skipped where the certificate names no host (Debian's snakeoil: CN only).
    if let Some(name) = names.first() {
        let dbname = db.url.rsplit('/').next().unwrap();
        let by_name = format!("postgresql://postgres@{name}:5432/{dbname}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={cert_file}");
        let out = run_watched(clean_cmd("db-setup").arg("--check").env("CONNECTION_URL", &by_name), WATCHDOG);
        assert!(out.status.success(), "verify-full by the certificate's name {name}: {}", stderr(&out));
    }
    let _ = std::fs::remove_dir_all(&home);
}

/// The server's certificate file (readable by the tests, which run as the machine's owner) and
/// the host names it is for (Debian's snakeoil certificate has none: CN only).
fn server_cert() -> (String, Vec<String>) {
    let file = block_on(async {
        let c = ddb_core::pg::connect(&pg_server_url()).await.unwrap();
        let dir: String = c.client().query_one("SHOW data_directory", &[]).await.unwrap().get(0);
        let f: String = c.client().query_one("SHOW ssl_cert_file", &[]).await.unwrap().get(0);
        if f.starts_with('/') {
            f
        } else {
            format!("{dir}/{f}")
        }
    });
    let out = Command::new("openssl").args(["x509", "-noout", "-subject", "-ext", "subjectAltName", "-in", &file]).output().expect("openssl");
    assert!(out.status.success(), "cannot read the server's certificate {file}: {}", stderr(&out));
    // Only subjectAltName counts: rustls, like browsers, ignores the subject's CN.
    let names = stdout(&out).split([',', '\n']).filter_map(|p| p.trim().strip_prefix("DNS:").map(str::to_string)).collect();
    (file, names)
}

/// Stops the local stacks of these ports (bin/local/down) when the test ends, however it ends.
struct Down(Vec<u16>);

impl Drop for Down {
    fn drop(&mut self) {
        for port in &self.0 {
            let _ = Command::new(root().join("bin/local/down")).env("DDB_LOCAL_PORT", port.to_string()).output();
        }
    }
}

#[test]
fn the_local_stack_keeps_its_state_per_port_and_reports_what_is_down() {
    let db = TestDb::create();
    let (p1, p2) = (free_port(), free_port());
    let _down = Down(vec![p1, p2]);
    // A build whose stream worker dies at start, beside the real db-setup.
    let fake = std::env::temp_dir().join(format!("fake-target-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(fake.join("release")).unwrap();
    std::os::unix::fs::symlink(bin("db-setup"), fake.join("release/db-setup")).unwrap();
    let worker = fake.join("release/stream-worker");
    std::fs::write(&worker, "#!/bin/sh\necho 'stream-worker: cannot start (a test)' >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&worker, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let local = |port: u16, script: &str, args: &[&str]| {
        let mut c = Command::new(root().join("bin/local").join(script));
        c.args(args).env("DDB_LOCAL_PORT", port.to_string()).env("CONNECTION_URL", &db.url).env("CARGO_TARGET_DIR", &fake);
        run_watched(&mut c, Duration::from_secs(120))
    };
    let answers = |port: u16| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();

    let up = local(p1, "up", &[]);
    assert_eq!(up.status.code(), Some(1), "{}", stderr(&up));
    assert!(
        stderr(&up).contains("the stream worker exited right after it started") && stderr(&up).contains("cannot start (a test)"),
        "{}",
        stderr(&up)
    );
    let status = local(p1, "status", &[]);
    assert_eq!(status.status.code(), Some(1), "{}", stdout(&status));
    assert!(stdout(&status).contains(&format!("dynamodb-local: running on http://localhost:{p1}")), "{}", stdout(&status));
    assert!(stdout(&status).contains("stream-worker: not running"), "{}", stdout(&status));

    // A second stack on another port has files of its own: stopping it leaves the first running.
    let up = local(p2, "up", &["--no-worker"]);
    assert!(up.status.success(), "{}", stderr(&up));
    assert!(root().join(format!(".local/dynamodb/dynamodb-local-{p2}.pid")).exists());
    let down = local(p2, "down", &[]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(!answers(p2), "DynamoDB Local on {p2} still answers after down");
    assert!(answers(p1), "down on {p2} stopped the server on {p1}");
    let down = local(p1, "down", &[]);
    assert!(down.status.success() && stderr(&down).contains("stopped DynamoDB Local"), "{}", stderr(&down));
    assert!(!answers(p1));
    let status = local(p1, "status", &[]);
    assert_eq!(status.status.code(), Some(1));
    assert!(stdout(&status).contains("dynamodb-local: not running"), "{}", stdout(&status));
    let _ = std::fs::remove_dir_all(&fake);
}

#[test]
fn two_users_rows_of_one_handle_are_named_not_picked_silently() {
    let t = TestTable::create(DynamoLocal::shared(), "twins");
    let db = TestDb::create();
    db.exec("INSERT INTO users (display_name, handle, email, cognito_user_id) VALUES ('Another Bayko', 'bayko', 'b2@example.com', 'MOCK')");
    let runs: [(&str, &[&str]); 3] = [("seed", &[]), ("list-conversations", &["bayko"]), ("create-conversation", &["yaya2devops", "bayko", "hi"])];
    for (name, args) in runs {
        let out = run_watched(t.cmd_db(name, &db).args(args), WATCHDOG);
        assert_one_error_line(name, &out, "users has 2 rows with handle bayko (uuid ");
        assert!(stderr(&out).contains("the handle is how the scripts find a user"), "{name}: {}", stderr(&out));
    }
    assert!(t.items().is_empty(), "nothing written");
}
