//! Test support for the toolkit's end-to-end tests: a real DynamoDB Local on a free port, a
//! Postgres database of the test's own, and the real binaries.
//!
//! Servers and databases are cleaned up by guards. Servers (DynamoDB Local, moto, the Lambda
//! emulator) are also watched by a small shell loop that kills them when the test process dies,
//! so that an aborted run leaves nothing behind. DynamoDB Local is started by
//! `bin/local/dynamodb-local`, the command line that `bin/local/up` uses too.
//!
//! The tests' uses of `ddb_core::target` (the clients' configuration), `seed::run` and
//! `write::write_all` are all here: in the macro `local_sdk!`, [`TestTable::write`] and
//! [`TestTable::run_seed_plan`].
#![deny(missing_docs)]

pub mod bad_inputs;
pub mod fault;

use aws_sdk_dynamodb::types::{Select, WriteRequest};
use aws_sdk_dynamodb::Client;
use ddb_core::pg::User;
use ddb_core::records::{Item, MessageGroupRow, MessageRow};
use ddb_core::seed::{SeedPlan, SeedReport};
use ddb_core::Ddb;
use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// ddb_core's SDK configuration for the local `endpoint`, and its target: `(config, target)`, what
/// every client of the tests is built from. (A macro, so that the configuration's type, which
/// this crate does not depend on, need not be named.)
macro_rules! local_sdk {
    ($endpoint:expr) => {{
        let settings = ddb_core::target::Settings { endpoint_url: Some($endpoint.to_string()), ..Default::default() };
        let resolved = settings.resolve_in(ddb_core::target::Service::DynamoDb, |_| None).expect("a local endpoint");
        (block_on(ddb_core::target::sdk_config(&resolved)).expect("an SDK configuration"), resolved.target)
    }};
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The path of a workspace binary of the same profile as the running test.
pub fn bin(name: &str) -> PathBuf {
    // The test executable lives in target/<profile>/deps; binaries one level up.
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run ./bin/test (it builds every binary before the tests), or cargo build --release --workspace",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind port 0").local_addr().expect("local addr").port()
}

/// The runtime for the test's own SDK and Postgres calls.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime"))
}

/// Runs a future to completion on [`rt`].
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    rt().block_on(f)
}

/// Runs `bin/local/SCRIPT` (one of the installers) and returns what it prints; fails the test
/// with its error when it fails.
pub fn install(script: &str) -> String {
    let out = Command::new(root().join("bin/local").join(script)).output().unwrap_or_else(|e| panic!("run bin/local/{script}: {e}"));
    assert!(out.status.success(), "bin/local/{script} failed: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// A child process killed when dropped, or by its [`watchdog`] when the test process is killed.
pub struct Guarded(pub Child);

impl Guarded {
    /// Guards `child`, starting its watchdog.
    pub fn new(child: Child) -> Self {
        watchdog(&child);
        Guarded(child)
    }

    /// Kills the process now.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Spawns the server `cmd` (no stdin, its output discarded), guarded, and waits until it listens
/// on `port`.
pub fn serve(cmd: &mut Command, port: u16, what: &str) -> Guarded {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // Guarded first, so that its Drop stops the server if the wait fails.
    let mut server = Guarded::new(child);
    wait_for_port(port, what, Some(&mut server.0));
    server
}

/// A DynamoDB Local server of the test's own, started by `bin/local/dynamodb-local` (as
/// `bin/local/up` starts the local stack's), in memory, on a free port.
pub struct DynamoLocal {
    process: Guarded,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl DynamoLocal {
    /// Starts a fresh server and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_at(free_port(), None)
    }

    /// Starts a server on `port`, in memory or (with `data`) keeping its tables in that folder, so
    /// that a restart on the same port finds them again.
    pub fn start_at(port: u16, data: Option<&Path>) -> Self {
        static INSTALLED: OnceLock<String> = OnceLock::new();
        INSTALLED.get_or_init(|| install("install"));
        let mut cmd = Command::new(root().join("bin/local/dynamodb-local"));
        cmd.arg(port.to_string());
        if let Some(d) = data {
            cmd.arg("-dbPath").arg(d);
        }
        DynamoLocal { process: serve(&mut cmd, port, "DynamoDB Local (bin/local/dynamodb-local)"), endpoint: format!("http://127.0.0.1:{port}") }
    }

    /// One server shared by the light tests of this process. Heavy tests (thousands of items)
    /// start their own: DynamoDB Local slows down for good on stream tables created after it
    /// holds many stream records (SPEC.md, 'DynamoDB Local facts').
    pub fn shared() -> &'static DynamoLocal {
        static SHARED: OnceLock<DynamoLocal> = OnceLock::new();
        SHARED.get_or_init(DynamoLocal::start)
    }

    /// A client for `table` on this server. It waits for answers as long as the binaries of the
    /// tests do ([`LOCAL_TIMEOUT`]).
    pub fn ddb(&self, table: &str) -> Ddb {
        ddb_at(&self.endpoint, table)
    }

    /// Kills the server now (for fault tests).
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// How long the tests' binaries and clients wait for DynamoDB Local to answer (DDB_LOCAL_TIMEOUT
/// of the binaries): a server that answers in milliseconds on a quiet machine may take more than
/// the default 10 s on a loaded one (its first CreateTable, while the JVM warms up). Tests of a
/// server that never answers use the default, through `clean_cmd`.
pub const LOCAL_TIMEOUT: Duration = Duration::from_secs(120);

/// A client for `table` at a local `endpoint` (a server, or a fault proxy in front of one). It
/// waits for answers as long as the binaries of the tests do ([`LOCAL_TIMEOUT`]).
pub fn ddb_at(endpoint: &str, table: &str) -> Ddb {
    let (config, target) = local_sdk!(endpoint);
    let mut ddb = Ddb::new(&config, &target, table);
    ddb.patience = ddb_core::target::Patience { operation: LOCAL_TIMEOUT, ..ddb_core::target::Patience::LOCAL };
    ddb.client = Client::from_conf(ddb.client.config().to_builder().timeout_config(ddb.patience.timeout_config()).build());
    ddb
}

/// A folder of the test's own under the system's temporary folder (state files, logs, homes),
/// removed with everything in it when dropped, so that runs leave nothing behind.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `TMP/TAG-UUID/`.
    pub fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{tag}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).expect("create a temporary folder");
        TempDir(path)
    }

    /// The path of `name` in it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A unique table name for one test.
pub fn table_name(tag: &str) -> String {
    format!("t-{tag}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// A table created by `schema-load` (the real binary) on `server`, deleted again by drop.
pub struct TestTable {
    /// Its client.
    pub ddb: Ddb,
    /// Its name.
    pub name: String,
    /// The server's endpoint.
    pub endpoint: String,
}

impl TestTable {
    /// Runs `schema-load` for a new table on `server`.
    pub fn create(server: &DynamoLocal, tag: &str) -> Self {
        let name = table_name(tag);
        let t = TestTable { ddb: server.ddb(&name), name, endpoint: server.endpoint.clone() };
        let out = t.run("schema-load", &[]);
        assert!(out.status.success(), "schema-load failed: {}", String::from_utf8_lossy(&out.stderr));
        t
    }

    /// [`create`](Self::create) on a server of its own (which the caller holds until the end:
    /// the table is deleted before the server stops).
    pub fn on_own_server(tag: &str) -> (Self, DynamoLocal) {
        let server = DynamoLocal::start();
        (Self::create(&server, tag), server)
    }

    /// A table name on `server` that does not exist (nothing is created).
    pub fn missing(server: &DynamoLocal) -> Self {
        let name = table_name("missing");
        TestTable { ddb: server.ddb(&name), name, endpoint: server.endpoint.clone() }
    }

    /// A command for binary `name` aimed at this table and server, with a clean AWS environment.
    pub fn cmd(&self, name: &str) -> Command {
        let mut c = clean_cmd(name);
        c.env("AWS_ENDPOINT_URL", &self.endpoint).env("DDB_MESSAGE_TABLE", &self.name).env("DDB_LOCAL_TIMEOUT", LOCAL_TIMEOUT.as_secs().to_string());
        c
    }

    /// [`cmd`](Self::cmd) with `db` as the users' database (CONNECTION_URL).
    pub fn cmd_db(&self, name: &str, db: &TestDb) -> Command {
        let mut c = self.cmd(name);
        c.env("CONNECTION_URL", &db.url);
        c
    }

    /// Runs binary `name` with `args` against this table.
    pub fn run(&self, name: &str, args: &[&str]) -> Output {
        self.cmd(name).args(args).stdin(Stdio::null()).output().expect("run binary")
    }

    /// Runs binary `name` with `args` against this table and `db`.
    pub fn run_db(&self, name: &str, db: &TestDb, args: &[&str]) -> Output {
        self.cmd_db(name, db).args(args).stdin(Stdio::null()).output().expect("run binary")
    }

    /// `seed ARGS --quiet` against this table and `db`, ready to run or spawn (aim it elsewhere,
    /// at a proxy, with `.env("AWS_ENDPOINT_URL", ...)`).
    pub fn seed_cmd(&self, db: &TestDb, args: &[&str]) -> Command {
        let mut c = self.cmd_db("seed", db);
        c.args(args).arg("--quiet").stdin(Stdio::null());
        c
    }

    /// A stream worker of the test's own on this table (quiet, polling every 50 ms, its position
    /// in `state`, its output discarded), killed when dropped.
    pub fn worker(&self, state: &Path) -> Guarded {
        let mut c = self.worker_cmd(Some(state));
        let child = c.arg("--quiet").stderr(Stdio::null()).spawn().expect("spawn stream-worker");
        Guarded::new(child)
    }

    /// The command of a stream worker on this table that polls every 50 ms, its position in
    /// `state` (none: the worker's default file), its stderr into the file `log`.
    pub fn worker_logged(&self, state: Option<&Path>, log: &Path) -> Command {
        let mut c = self.worker_cmd(state);
        c.stderr(std::fs::File::create(log).expect("create the worker's log"));
        c
    }

    fn worker_cmd(&self, state: Option<&Path>) -> Command {
        let mut c = self.cmd("stream-worker");
        c.args(["--idle-ms", "50"]).stdin(Stdio::null()).stdout(Stdio::null());
        if let Some(state) = state {
            c.arg("--state").arg(state);
        }
        c
    }

    /// Runs `seed ARGS --quiet` against this table and `db` to its end.
    pub fn seed(&self, db: &TestDb, args: &[&str]) -> Output {
        self.seed_cmd(db, args).output().expect("run seed")
    }

    /// How many items the table holds (a Select=COUNT scan of every page, not a read of every
    /// item: one page counts only the first megabyte of items).
    pub fn count(&self) -> usize {
        use futures::TryStreamExt;
        let pages = self.client().scan().table_name(&self.name).select(Select::Count).into_paginator().send();
        let n: i32 = block_on(
            futures::stream::poll_fn({
                let mut pages = pages;
                move |cx| pages.poll_next(cx)
            })
            .map_ok(|p| p.count)
            .try_fold(0, |n, c| async move { Ok(n + c) }),
        )
        .expect("count scan");
        usize::try_from(n).expect("a count")
    }

    /// Every item of the table.
    pub fn items(&self) -> Vec<Item> {
        use futures::TryStreamExt;
        block_on(ddb_core::scan::items(&self.ddb, 1).try_collect::<Vec<_>>()).expect("scan")
    }

    /// Every item, in key order (pk, sk): two snapshots compare equal when nothing changed.
    pub fn snapshot(&self) -> Vec<Item> {
        let mut items = self.items();
        items.sort_by_key(|i| (s(i, "pk").to_string(), s(i, "sk").to_string()));
        items
    }

    /// Every group row of the table.
    pub fn group_rows(&self) -> Vec<MessageGroupRow> {
        split(&self.items()).0
    }

    /// The group rows of conversation `group`, through the index (as pattern E reads them).
    pub fn rows_of(&self, group: uuid::Uuid) -> Vec<MessageGroupRow> {
        block_on(ddb_core::conversation::group_rows(&self.ddb, group)).expect("group rows").into_iter().map(|r| r.row).collect()
    }

    /// Every message of the table.
    pub fn messages(&self) -> Vec<MessageRow> {
        split(&self.items()).1
    }

    /// A client for this table's stream (DynamoDB Streams).
    pub fn streams(&self) -> aws_sdk_dynamodbstreams::Client {
        let (config, target) = local_sdk!(self.endpoint);
        ddb_core::stream::worker::streams_client(&config, &target)
    }

    /// Writes `requests` with ddb_core's batch writer (default options, no progress shown);
    /// returns how many it wrote.
    pub fn write(&self, requests: impl Iterator<Item = WriteRequest>) -> u64 {
        block_on(ddb_core::write::write_all(&self.ddb, requests, Default::default(), &())).expect("write_all")
    }

    /// ddb_core's seed run of `plan` on this table, in the library (default options, no progress
    /// shown, phases not reported); `approve_replace` answers whether to replace an earlier seed.
    pub fn run_seed_plan(&self, plan: &SeedPlan, approve_replace: &dyn Fn(u64) -> bool) -> ddb_core::Result<SeedReport> {
        block_on(ddb_core::seed::run(&self.ddb, plan, Default::default(), &(), approve_replace))
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.ddb.client
    }
}

impl Drop for TestTable {
    fn drop(&mut self) {
        let _ = block_on(self.ddb.client.delete_table().table_name(&self.name).send());
    }
}

/// The handles of the course conversation's two users, in the seed users of every [`TestDb`].
pub const COURSE_HANDLES: [&str; 2] = ["yaya2devops", "bayko"];

/// A table on `server` and a database of their own, seeded by `seed ARGS` (which must succeed).
pub fn seeded(server: &DynamoLocal, tag: &str, args: &[&str]) -> (TestTable, TestDb) {
    let db = TestDb::create();
    let t = TestTable::create(server, tag);
    let out = t.seed(&db, args);
    assert!(out.status.success(), "seed: {}", stderr(&out));
    (t, db)
}

/// Items split into the group rows and the messages (other items, such as a lock, are left out).
pub fn split(items: &[Item]) -> (Vec<MessageGroupRow>, Vec<MessageRow>) {
    let of = |prefix: &'static str| items.iter().filter(move |i| s(i, "pk").starts_with(prefix));
    let groups = of("GRP#").map(|i| MessageGroupRow::from_item(i).expect("a group row")).collect();
    let messages = of("MSG#").map(|i| MessageRow::from_item(i).expect("a message row")).collect();
    (groups, messages)
}

/// Clears from `c` every variable that could aim a binary elsewhere than the test says (`AWS_*`,
/// `DDB_MESSAGE_TABLE`, `CONNECTION_URL`) and gives it `home` as HOME, a home without AWS config
/// files: local runs must not need them.
pub fn scrub_env(c: &mut Command, home: &Path) {
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k == "DDB_MESSAGE_TABLE" || k == "CONNECTION_URL" {
            c.env_remove(k);
        }
    }
    c.env("HOME", home);
}

/// A command for a workspace binary with no AWS or Postgres settings inherited from the shell.
pub fn clean_cmd(name: &str) -> Command {
    let mut c = Command::new(bin(name));
    scrub_env(&mut c, &std::env::temp_dir());
    c
}

/// The Postgres server the tests use (the machine's), as a URL of its maintenance database.
pub fn pg_server_url() -> String {
    std::env::var("TEST_PG_URL").unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into())
}

/// A Postgres database of the test's own with the course schema and seed users; dropped at the end.
pub struct TestDb {
    /// Its URL (what CONNECTION_URL is set to).
    pub url: String,
}

impl TestDb {
    /// Creates the database, the `users` table and the seed users.
    pub fn create() -> Self {
        let name = format!("cruddur_test_{}", uuid::Uuid::new_v4().simple());
        let server = pg_server_url();
        let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        block_on(async {
            ddb_core::pg::ensure_database(&url)
                .await
                .unwrap_or_else(|e| panic!("the tests need Postgres at {server} (start the machine's server, or set TEST_PG_URL): {e}"));
            let db = ddb_core::pg::connect(&url).await.expect("connect test db");
            db.setup().await.expect("schema and seed users");
        });
        TestDb { url }
    }

    /// The users of these handles, as ddb_core reads them: {handle: user}.
    pub fn users(&self, handles: &[&str]) -> HashMap<String, User> {
        let handles: Vec<String> = handles.iter().map(|h| h.to_string()).collect();
        block_on(async {
            let db = ddb_core::pg::connect(&self.url).await.expect("connect test db");
            db.users_by_handle(&handles).await.expect("users")
        })
    }

    /// [`create`](Self::create), with one more user of this display name and handle
    /// (cognito_user_id 'MOCK', as the seed users).
    pub fn with_user(display_name: &str, handle: &str) -> Self {
        let db = Self::create();
        db.exec(&format!(
            "INSERT INTO users (display_name, handle, email, cognito_user_id) VALUES ('{display_name}', '{handle}', '{handle}@example.com', 'MOCK')"
        ));
        db
    }

    /// Runs SQL on the database.
    pub fn exec(&self, sql: &str) {
        block_on(async {
            let db = ddb_core::pg::connect(&self.url).await.expect("connect test db");
            db.client().batch_execute(sql).await.expect("sql");
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let url = self.url.clone();
        // Dropping may happen inside the runtime; use a thread of its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().map(|rt| rt.block_on(ddb_core::pg::drop_database(&url)))
        })
        .join();
    }
}

/// Output's stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Output's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A string attribute of an item.
pub fn s<'a>(item: &'a Item, name: &str) -> &'a str {
    item.get(name).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_else(|| panic!("attribute {name} missing in {item:?}"))
}

/// moto's server mode (PyPI `moto[server]`), the tests' Cognito: a server of the test's own on a
/// free port, from the project's virtualenv `.local/moto` (installed on first use; bin/test
/// installs it up front).
pub struct Moto {
    _process: Guarded,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

/// Kills `child` when the test process goes away, whatever way it goes: a watchdog shell that
/// outlives the test process when that is killed, so that an aborted run leaves nothing behind.
pub fn watchdog(child: &Child) {
    let watchdog = format!(
        "while kill -0 {} 2>/dev/null && kill -0 {} 2>/dev/null; do sleep 1; done; kill -9 {} 2>/dev/null",
        std::process::id(),
        child.id(),
        child.id()
    );
    // Not waited for on purpose: it outlives the test process when that is killed.
    #[allow(clippy::zombie_processes)]
    Command::new("sh").args(["-c", &watchdog]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("watchdog");
}

/// Waits up to 180 s until something listens on 127.0.0.1:`port` (a JVM starting on a loaded
/// machine is slow: a minute was seen to be too short); fails the test at once if `server`, the
/// process that is to listen there, exits first.
pub fn wait_for_port(port: u16, what: &str, mut server: Option<&mut Child>) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            panic!("{what} exited ({status}) before it listened on port {port}");
        }
        assert!(Instant::now() < deadline, "{what} did not listen on port {port} within 180 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Moto {
    /// Installs moto where it is missing, starts a server and waits until it answers.
    pub fn start() -> Self {
        let server = root().join(".local/moto/bin/moto_server");
        if !server.exists() {
            install("install-moto");
        }
        let port = free_port();
        let process = serve(Command::new(&server).args(["-H", "127.0.0.1", "-p", &port.to_string()]), port, "moto");
        Moto { _process: process, endpoint: format!("http://127.0.0.1:{port}") }
    }

    /// A Cognito client for this server.
    pub fn cognito(&self) -> aws_sdk_cognitoidentityprovider::Client {
        let (config, target) = local_sdk!(self.endpoint);
        ddb_core::target::client(&config, &target)
    }
}

/// A TCP server that takes every connection and never reads or answers: what a hung server (or
/// the wrong program on the port) looks like to a client. Stops when dropped.
pub struct SilentServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SilentServer {
    /// Listens on a free port and holds every connection open, unanswered.
    pub fn start() -> Self {
        use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a silent server");
        listener.set_nonblocking(true).expect("nonblocking listener");
        let addr = listener.local_addr().expect("local addr").to_string();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (flag, count) = (stop.clone(), accepted.clone());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        held.push(conn);
                        count.fetch_add(1, Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        SilentServer { addr, stop, accepted }
    }

    /// How many connections it has taken so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `http://127.0.0.1:PORT`, as an endpoint URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A message of a new conversation between two new users, written at 2026-01-01T00:00:00Z.
pub fn a_message(text: &str) -> MessageRow {
    MessageRow {
        message_group_uuid: uuid::Uuid::new_v4(),
        created_at: ddb_core::records::parse_ts("2026-01-01T00:00:00Z").expect("a timestamp"),
        message_uuid: uuid::Uuid::new_v4(),
        message: text.into(),
        user_uuid: uuid::Uuid::new_v4(),
        user_display_name: "A".into(),
        user_handle: "a".into(),
    }
}

/// Runs `cmd` to its end and returns its output; a run still going after `limit` is killed and
/// fails the test (a watchdog, not a measurement: the limit is far above any expected time).
pub fn run_watched(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    wait_watched(child, limit, &format!("{cmd:?}"))
}

/// Waits for `child` (`what`) to end and returns its output; one still running after `limit` is
/// killed and fails the test, so that a hang fails instead of stalling the run.
pub fn wait_watched(mut child: Child, limit: Duration, what: &str) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!("{what} still running after {limit:?}; killed. stderr: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("wait")
}
