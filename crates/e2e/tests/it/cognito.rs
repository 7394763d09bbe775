//! Cognito scripts against moto's server mode (which pages ListUsers at 60 like AWS) and a
//! Postgres database of the test's own.

use aws_sdk_cognitoidentityprovider::types::AttributeType;
use e2e::*;
use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};

/// A pool on `moto` with users `user000`.. (preferred_username = the same), plus `extra`
/// users without a preferred_username; returns the pool id and {handle: sub}.
fn pool(moto: &Moto, n: usize, extra: usize) -> (String, BTreeMap<String, String>) {
    let c = moto.cognito();
    block_on(async {
        let pool = c.create_user_pool().pool_name(format!("p-{}", uuid::Uuid::new_v4().simple())).send().await.unwrap();
        let id = pool.user_pool().unwrap().id().unwrap().to_string();
        let attr = |n: &str, v: &str| AttributeType::builder().name(n).value(v).build().unwrap();
        for i in 0..n {
            let h = format!("user{i:03}");
            c.admin_create_user()
                .user_pool_id(&id)
                .username(&h)
                .user_attributes(attr("preferred_username", &h))
                .user_attributes(attr("email", &format!("{h}@example.com")))
                .send()
                .await
                .unwrap();
        }
        for i in 0..extra {
            c.admin_create_user().user_pool_id(&id).username(format!("nohandle{i}")).send().await.unwrap();
        }
        let target = ddb_core::target::Target::Endpoint(moto.endpoint.clone());
        let users = ddb_core::cognito::Cognito { client: c.clone(), pool: id.clone(), target }.list_users().await.unwrap();
        let (map, _) = ddb_core::cognito::handle_map(&users);
        (id, map)
    })
}

/// moto with a pool of [`pool`]'s users, and a database whose `users` also has rows for the
/// first `rows` of them (see [`add_rows`]).
struct Cognito {
    moto: Moto,
    /// The pool's id.
    id: String,
    /// The pool's {handle: sub}.
    map: BTreeMap<String, String>,
    db: TestDb,
}

impl Cognito {
    fn start(users: usize, extra: usize, rows: usize) -> Self {
        let moto = Moto::start();
        let (id, map) = pool(&moto, users, extra);
        let db = TestDb::create();
        add_rows(&db, rows);
        Cognito { moto, id, map, db }
    }

    /// Binary `name` aimed at this moto, this pool and this database.
    fn cmd(&self, name: &str) -> Command {
        let mut c = clean_cmd(name);
        c.env("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", &self.moto.endpoint)
            .env("AWS_COGNITO_USER_POOL_ID", &self.id)
            .env("CONNECTION_URL", &self.db.url)
            .stdin(Stdio::null());
        c
    }

    fn sync(&self, args: &[&str]) -> Output {
        self.cmd("update_cognito_user_ids").args(args).output().unwrap()
    }

    /// The database's `users` as {handle: cognito_user_id}.
    fn ids(&self) -> BTreeMap<String, String> {
        block_on(async {
            let c = ddb_core::pg::connect(&self.db.url).await.unwrap();
            c.client().query("SELECT handle, cognito_user_id FROM users", &[]).await.unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()
        })
    }
}

/// Rows for the first `n` Cognito handles, all 'MOCK'.
fn add_rows(db: &TestDb, n: usize) {
    if n > 0 {
        db.exec(&format!(
            "INSERT INTO users (display_name, handle, email, cognito_user_id)
             SELECT 'User ' || i, 'user' || lpad(i::text, 3, '0'), 'u' || i || '@example.com', 'MOCK' FROM generate_series(0, {}) AS i",
            n - 1
        ));
    }
}

#[test]
fn list_users_reads_every_page() {
    let c = Cognito::start(150, 2, 0);
    assert_eq!(c.map.len(), 150, "the library read all three pages");
    let out = c.cmd("list-users").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // The course's output: the users as JSON, then the {handle: sub} map.
    let docs: Vec<serde_json::Value> = serde_json::Deserializer::from_slice(&out.stdout).into_iter().map(Result::unwrap).collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].as_array().unwrap().len(), 152);
    let printed: BTreeMap<String, String> = serde_json::from_value(docs[1].clone()).unwrap();
    assert_eq!(printed, c.map);
    let err = stderr(&out);
    assert!(err.contains("152 user(s)") && err.contains("skipped nohandle0: no preferred_username"), "{err}");
    // --output table: a line per user.
    let out = c.cmd("list-users").args(["--output", "table"]).output().unwrap();
    assert_eq!(stdout(&out).lines().count(), 153);
}

#[test]
fn update_sets_every_matching_row_in_one_go_and_reports_the_rest() {
    let c = Cognito::start(150, 1, 120);

    // --dry-run: the report, and nothing changed.
    let before = c.ids();
    let out = c.sync(&["--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("120 row(s) would change"), "{}", stdout(&out));
    assert_eq!(c.ids(), before, "a dry run changes nothing");

    let out = c.sync(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("== db-update-cognito-user-ids\n"), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("---- user")).count(), 150);
    assert!(text.contains(&format!("---- user000 {}", c.map["user000"])), "{text}");
    assert!(text.contains("120 row(s) changed, 0 already up to date"), "{text}");
    assert!(text.contains("30 Cognito handle(s) with no row in users: user120, user121"), "{text}");
    assert!(text.contains("2 row(s) still hold MOCK: bayko, yaya2devops"), "{text}");
    assert!(text.contains("skipped nohandle0: no preferred_username"), "{text}");
    let after = c.ids();
    for i in 0..120 {
        let h = format!("user{i:03}");
        assert_eq!(after[&h], c.map[&h], "{h}");
    }
    assert_eq!(after["bayko"], "MOCK");

    // Again: nothing to change.
    let out = c.sync(&[]);
    assert!(stdout(&out).contains("0 row(s) changed, 120 already up to date"), "{}", stdout(&out));

    // --json: one object on stdout and nothing else, the same report (bench/cognito reads it).
    c.db.exec("UPDATE users SET cognito_user_id = 'MOCK' WHERE handle = 'user007'");
    let out = c.sync(&["--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(report["changed"], serde_json::json!([{"handle": "user007", "before": "MOCK", "after": c.map["user007"]}]));
    assert_eq!((report["unchanged"].as_u64(), report["dry_run"].as_bool()), (Some(119), Some(false)));
    assert_eq!(report["unmatched"].as_array().map(Vec::len), Some(30));
    assert_eq!(report["still_mock"], serde_json::json!(["bayko", "yaya2devops"]));
    assert!(report["cognito_seconds"].as_f64().is_some_and(|s| s > 0.0) && report["postgres_seconds"].as_f64().is_some_and(|s| s > 0.0));
    assert!(stderr(&out).contains("skipped nohandle0: no preferred_username"), "{}", stderr(&out));
}

#[test]
fn a_failure_in_the_middle_leaves_the_table_unchanged() {
    let c = Cognito::start(80, 0, 80);
    // A constraint that the 43rd row violates.
    c.db.exec("ALTER TABLE users ADD CONSTRAINT user042_stays CHECK (handle <> 'user042' OR cognito_user_id = 'MOCK')");
    let before = c.ids();
    let out = c.sync(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("user042_stays"), "{}", stderr(&out));
    assert_eq!(c.ids(), before, "all or nothing");
}

#[test]
fn cognito_errors_are_clear_and_change_nothing() {
    let c = Cognito::start(3, 0, 3);
    let before = c.ids();

    // No pool id.
    let out = c.cmd("update_cognito_user_ids").env_remove("AWS_COGNITO_USER_POOL_ID").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("AWS_COGNITO_USER_POOL_ID is not set: export"), "{}", stderr(&out));
    // A pool that does not exist.
    let out = c.cmd("list-users").env("AWS_COGNITO_USER_POOL_ID", "us-east-1_doesnotexist").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("user pool us-east-1_doesnotexist not found"), "{}", stderr(&out));
    // Postgres unreachable.
    let closed = free_port();
    let out =
        c.cmd("update_cognito_user_ids").env("CONNECTION_URL", format!("postgresql://postgres:secret@127.0.0.1:{closed}/cruddur")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("cannot connect") && !err.contains("secret"), "{err}");
    // Cognito unreachable.
    let out =
        c.cmd("update_cognito_user_ids").env("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", format!("http://127.0.0.1:{closed}")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot reach Cognito"), "{}", stderr(&out));
    assert_eq!(c.ids(), before);
}

#[test]
fn a_closed_stdout_is_a_quiet_success() {
    let c = Cognito::start(3, 0, 0);
    for (name, args) in [("list-users", &[][..]), ("update_cognito_user_ids", &["--dry-run"][..])] {
        let mut child = c.cmd(name).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // The reading end is closed before the script writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked") && !stderr(&out).contains("error"), "{name}: {}", stderr(&out));
    }
}

#[test]
fn a_row_locked_by_another_session_ends_the_sync_in_one_line_and_changes_nothing() {
    let c = Cognito::start(3, 0, 3);
    let before = c.ids();
    // Another session (the app, a psql left open) holds a row of users in its transaction.
    let holder = block_on(ddb_core::pg::connect(&c.db.url)).unwrap();
    block_on(holder.client().batch_execute("BEGIN; SELECT 1 FROM users WHERE handle = 'user001' FOR UPDATE")).unwrap();
    // The watchdog only stops a hang (the fault: the sync waited for ever); lock_timeout is 10 s.
    let out = run_watched(&mut c.cmd("update_cognito_user_ids"), std::time::Duration::from_secs(180));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: postgres ("), "{err}");
    assert!(err.contains("updating users.cognito_user_id: waited 10 s for a lock that another session holds"), "{err}");
    assert!(err.contains("end that session's transaction"), "{err}");
    block_on(holder.client().batch_execute("ROLLBACK")).unwrap();
    assert_eq!(c.ids(), before, "all or nothing");
    // The lock gone, the same run goes through.
    let out = c.sync(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(c.ids()["user001"], c.map["user001"]);
}

#[test]
fn a_handle_of_two_rows_is_refused_by_name_before_anything_changes() {
    let c = Cognito::start(3, 0, 3);
    c.db.exec("INSERT INTO users (display_name, handle, email, cognito_user_id) VALUES ('Twin', 'user002', 'twin@example.com', 'MOCK')");
    let before = c.ids();
    let out = c.sync(&[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("users has 2 rows with handle user002") && err.contains("delete or rename all but one"), "{err}");
    assert_eq!(c.ids(), before);
}
