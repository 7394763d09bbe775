//! The seed's lease and the stream worker's state file, at their edges: lock items that are not a
//! lock's, that name the seed's own pid or a reused one, that store the pid as a number, a live
//! holder whose clock is behind ours; two stream workers on one state file.

use ddb_core::lock::Lease;
use ddb_core::records::{format_ts, now, Item};
use ddb_core::seed::SEED_LOCK;
use e2e::fault::FaultProxy;
use e2e::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

type Value = aws_sdk_dynamodb::types::AttributeValue;
/// A lock item's attributes besides its key.
pub(crate) type Attrs = Vec<(&'static str, Value)>;

pub(crate) fn sv(v: &str) -> Value {
    Value::S(v.to_string())
}

/// Puts `LOCK#seed` with these attributes besides its key, as another run or a person left it.
pub(crate) fn put_lock_item(t: &TestTable, attrs: Attrs) {
    let key = "LOCK#seed";
    let mut item: Item = [("pk", sv(key)), ("sk", sv(key))].into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    item.extend(attrs.into_iter().map(|(k, v)| (k.to_string(), v)));
    block_on(t.client().put_item().table_name(&t.name).set_item(Some(item)).send()).unwrap();
}

/// A well-formed lock item of a run on `host` with `pid`, its expiry `expires_in` away by our
/// clock, its lease `lease_ms`, and `extra` attributes.
pub(crate) fn lock_attrs(host: &str, pid: Value, expires_in: time::Duration, lease_ms: Option<u64>) -> Attrs {
    let at = now();
    let mut attrs = vec![
        ("lock_owner", sv(&Uuid::new_v4().to_string())),
        ("host", sv(host)),
        ("pid", pid),
        ("since", sv(&format_ts(at))),
        ("expires_at", sv(&format_ts(at + expires_in))),
        ("version", sv(&Uuid::new_v4().to_string())),
    ];
    if let Some(ms) = lease_ms {
        attrs.push(("lease_ms", Value::N(ms.to_string())));
    }
    attrs
}

pub(crate) fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

/// A holder that is alive: renews the item's version every 300 ms (keeping its `expires_at`
/// where its own clock puts it) until dropped.
pub(crate) struct Renewing {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Renewing {
    pub(crate) fn start(t: &TestTable, expires_in: time::Duration) -> Renewing {
        let stop = Arc::new(AtomicBool::new(false));
        let (client, table, flag) = (t.client().clone(), t.name.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(SeqCst) {
                std::thread::sleep(Duration::from_millis(300));
                let key: Item = [("pk".to_string(), sv("LOCK#seed")), ("sk".to_string(), sv("LOCK#seed"))].into();
                let renewal = client
                    .update_item()
                    .table_name(&table)
                    .set_key(Some(key))
                    .update_expression("SET version = :v, expires_at = :e")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":v", sv(&Uuid::new_v4().to_string()))
                    .expression_attribute_values(":e", sv(&format_ts(now() + expires_in)))
                    .send();
                let _ = block_on(renewal);
            }
        });
        Renewing { stop, thread: Some(thread) }
    }
}

impl Drop for Renewing {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        let _ = self.thread.take().map(|t| t.join());
    }
}

/// The seed's stderr has exactly one line, which is the error.
pub(crate) fn one_error_line(out: &std::process::Output) -> String {
    let err = stderr(out);
    let errors: Vec<&str> = err.lines().filter(|l| !l.starts_with("note: ")).collect();
    assert_eq!(errors.len(), 1, "one error line (notes aside): {err}");
    assert!(errors[0].starts_with("error: "), "{err}");
    errors[0].to_string()
}

/// Fault 8: an item that is not a lock's (only its key, an `expires_at` that is not a string, a
/// `lock_owner` that is not a token) no longer blocks every seed for good: it is taken over with
/// a note naming it.
#[test]
fn an_unreadable_lock_item_is_taken_over_with_a_note() {
    let db = TestDb::create();
    let u = db.users(&COURSE_HANDLES);
    let t = TestTable::create(DynamoLocal::shared(), "badlock");
    let cases: Vec<(&str, Attrs, &str)> = vec![
        ("only its key", vec![], "it has no lock_owner"),
        (
            "expires_at a number",
            vec![("lock_owner", sv(&Uuid::new_v4().to_string())), ("host", sv("elsewhere")), ("pid", sv("7")), ("expires_at", Value::N("1".into()))],
            "its expires_at is not a timestamp string",
        ),
        ("lock_owner not a token", vec![("lock_owner", sv("me")), ("expires_at", sv("2999-01-01T00:00:00.000000+00:00"))], "its lock_owner is not"),
        ("lock_owner a map", vec![("lock_owner", Value::M([("a".to_string(), sv("b"))].into()))], "its lock_owner is not"),
    ];
    for (what, attrs, why) in cases {
        put_lock_item(&t, attrs);
        let out = t.seed(&db, &[]);
        let err = stderr(&out);
        assert!(out.status.success(), "{what}: {err}");
        assert!(
            err.contains(&format!("note: the seed lock's item (pk = sk = LOCK#seed) in table {} is unreadable ({why}", t.name))
                && err.contains("taking it over as expired"),
            "{what}: {err}"
        );
        assert_eq!(t.messages().len(), 24, "{what}");
        assert!(block_on(t.client().get_item().table_name(&t.name).set_key(Some(lock_key())).consistent_read(true).send()).unwrap().item.is_none());
    }
    let rows = t.group_rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|g| [u["yaya2devops"].uuid, u["bayko"].uuid].contains(&g.owner_uuid)));
}

fn lock_key() -> Item {
    [("pk".to_string(), sv("LOCK#seed")), ("sk".to_string(), sv("LOCK#seed"))].into()
}

/// Two runs that find the same unreadable item at once: the takeover is conditioned on the item
/// as read, so one wins and the other, seeing the winner renew, is refused. The proxy holds
/// every PutItem back, so that both read the item before either writes.
#[test]
fn of_two_runs_taking_over_an_unreadable_item_one_wins() {
    let t = TestTable::create(DynamoLocal::shared(), "badlockrace");
    let proxy = FaultProxy::start(&t.endpoint);
    proxy.faults.only(&["PutItem"]);
    proxy.faults.delay_ms.store(300, SeqCst);
    let ddb = ddb_at(&proxy.endpoint, &t.name);
    let lease = Lease { name: "seed", ttl: Duration::from_secs(20) };
    for round in 0..3 {
        put_lock_item(&t, vec![("expires_at", Value::N("0".into()))]);
        let losers = AtomicUsize::new(0);
        let results: Vec<ddb_core::Result<()>> = std::thread::scope(|s| {
            let run = || {
                let r = block_on(lease.hold(&ddb, &(), |_| async {
                    // The winner holds on until the other run has its answer.
                    while losers.load(SeqCst) == 0 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Ok(())
                }));
                if r.is_err() {
                    losers.fetch_add(1, SeqCst);
                }
                r
            };
            let a = s.spawn(run);
            let b = s.spawn(run);
            vec![a.join().unwrap(), b.join().unwrap()]
        });
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "round {round}: exactly one run takes it over: {results:?}");
        let lost = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert!(matches!(lost, ddb_core::Error::Conflict(m) if m.contains("another seed is running")), "round {round}: {lost}");
        assert!(block_on(lease.holder(&t.ddb)).unwrap().is_none(), "round {round}: given back");
    }
}

/// A lock that names the seed's own pid (a dead run's, the pid since reused by this seed) is not
/// "another seed": taken over at once. The seed starts as a shell that waits, so that its pid is
/// known before it runs; the shell then execs the seed in the same process.
#[test]
fn a_lock_naming_the_seeds_own_pid_is_a_dead_runs() {
    let db = TestDb::create();
    let t = TestTable::create(DynamoLocal::shared(), "ownpid");
    let seed = t.seed_cmd(&db, &[]);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "read go && exec \"$0\" \"$@\""]).arg(seed.get_program()).args(seed.get_args());
    for (k, v) in seed.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    put_lock_item(&t, lock_attrs(&this_host(), sv(&child.id().to_string()), time::Duration::seconds(30), None));
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = wait_watched(child, Duration::from_secs(60), "the seed");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("not being renewed"), "taken over at once, without a watch: {}", stderr(&out));
    assert_eq!(t.messages().len(), 24);
}

/// This host's pid space as the lock stores it (boot id and pid namespace).
fn pid_space() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    format!("{}/{}", boot.trim(), ns.display()).replace(' ', "_")
}

fn start_time(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit_once(')').unwrap().1.split_whitespace().nth(19).unwrap().to_string()
}

/// A holder on this host whose pid now belongs to another process (its start time differs) is
/// taken over at once; the same pid with the same start time is a live process, watched for a
/// lease (here 1 s) and then taken over because it does not renew.
#[test]
fn a_reused_pid_is_told_from_its_holder_by_the_process_start_time() {
    let db = TestDb::create();
    let t = TestTable::create(DynamoLocal::shared(), "reusedpid");
    let other = Guarded::new(Command::new("sleep").arg("600").spawn().unwrap());
    let pid = other.0.id();
    let item = |start: &str| {
        let mut attrs = lock_attrs(&this_host(), sv(&pid.to_string()), time::Duration::seconds(30), Some(1_000));
        attrs.push(("process", sv(&format!("{} {start}", pid_space()))));
        attrs
    };

    put_lock_item(&t, item("1"));
    let out = t.seed(&db, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("not being renewed"), "taken over at once: {}", stderr(&out));

    put_lock_item(&t, item(&start_time(pid)));
    let out = t.seed(&db, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("note: the seed lock of table {} (taken at", t.name)), "watched first: {}", stderr(&out));
    assert!(stderr(&out).contains(&format!("by pid {pid} on host {}) is not being renewed", this_host())), "{}", stderr(&out));
    assert_eq!(t.messages().len(), 24);
}

/// A live holder's lock with a lease of ten minutes: the seed says within seconds what it waits
/// for and how long it may wait (it was silent for two minutes, a fifth of the lease).
#[test]
fn a_wait_behind_a_long_lease_is_said_within_seconds() {
    let db = TestDb::create();
    let t = TestTable::create(DynamoLocal::shared(), "longlease");
    let other = Guarded::new(Command::new("sleep").arg("600").spawn().unwrap());
    let pid = other.0.id();
    let mut attrs = lock_attrs(&this_host(), sv(&pid.to_string()), time::Duration::minutes(10), Some(600_000));
    attrs.push(("process", sv(&format!("{} {}", pid_space(), start_time(pid)))));
    put_lock_item(&t, attrs);
    let mut seed = Guarded::new(t.seed_cmd(&db, &[]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap());
    let err = std::io::BufReader::new(seed.0.stderr.take().unwrap());
    // Read on a thread of its own: the test's bound holds even if the seed says nothing.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(err).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let note = loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line.contains("is not being renewed") => break line,
            Ok(_) => continue,
            Err(e) => panic!("no note of the wait: {e}"),
        }
    };
    assert!(note.contains(&format!("by pid {pid} on host {}", this_host())) && note.contains("on a lease of 600 s"), "{note}");
    assert!(note.contains("within 59"), "it says how long it may wait: {note}");
    seed.kill();
    assert_eq!(t.messages().len(), 0, "nothing written while the lock is held");
}

/// A pid stored as a number is still named in the refusal (it read "pid 0").
#[test]
fn a_pid_stored_as_a_number_is_named() {
    let db = TestDb::create();
    let t = TestTable::create(DynamoLocal::shared(), "numpid");
    put_lock_item(&t, lock_attrs("build-box-7", Value::N("4242".into()), time::Duration::seconds(30), None));
    let _alive = Renewing::start(&t, time::Duration::seconds(30));
    let out = run_watched(&mut t.seed_cmd(&db, &[]), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = one_error_line(&out);
    assert!(err.contains("another seed is running") && err.contains("by pid 4242 on host build-box-7"), "{err}");
    assert!(t.messages().is_empty());
}

/// The seed never takes over on clocks: a live holder on a host whose clock is a minute behind
/// ours (its `expires_at` already past by our clock) keeps renewing, and a seed is refused, naming
/// it. Before, `expires_at < now` let it take over a live lock.
#[test]
fn a_live_holder_whose_clock_is_behind_keeps_its_lock() {
    let db = TestDb::create();
    let t = TestTable::create(DynamoLocal::shared(), "skew");
    put_lock_item(&t, lock_attrs("slow-clock-box", sv("4242"), time::Duration::seconds(-60), Some(30_000)));
    let _alive = Renewing::start(&t, time::Duration::seconds(-60));
    let out = run_watched(&mut t.seed_cmd(&db, &[]), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = one_error_line(&out);
    assert!(err.contains("another seed is running") && err.contains("by pid 4242 on host slow-clock-box"), "{err}");
    assert!(t.messages().is_empty(), "nothing written beside a live holder");
    let h = block_on(SEED_LOCK.holder(&t.ddb)).unwrap().unwrap();
    assert_eq!((h.pid, h.host.as_str()), (4242, "slow-clock-box"), "the live holder's lock is untouched");
}

/// Fault 5: two stream workers on one state file. The second refuses at start, naming the
/// first (its pid, from the lock file); the first goes on moving group rows. Before, both ran
/// and one of them later died on the shared temporary file.
#[test]
fn a_second_stream_worker_on_the_same_state_file_refuses_at_start() {
    let (t, db) = seeded(DynamoLocal::shared(), "twoworkers", &[]);
    let dir = std::env::temp_dir().join(format!("two-workers-{}", Uuid::new_v4().simple()));
    let state = dir.join("state.json");
    let worker = || {
        let mut c = t.cmd("stream-worker");
        c.arg("--state").arg(&state).arg("--idle-ms").arg("20");
        c
    };
    let mut first = Guarded::new(worker().stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap());
    let first_pid = first.0.id();
    // The first is at work once it has saved its position after the seed's records.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !state.exists() {
        assert!(std::time::Instant::now() < deadline, "the first worker never saved {}", state.display());
        assert!(first.0.try_wait().unwrap().is_none(), "the first worker exited");
        std::thread::sleep(Duration::from_millis(20));
    }

    let second = run_watched(&mut worker(), Duration::from_secs(60));
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    let err = stderr(&second);
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(
        line.contains(&format!("another stream worker (pid {first_pid}) is using the state file {}", state.display()))
            && line.contains("--state FILE"),
        "{line}"
    );
    assert!(first.0.try_wait().unwrap().is_none(), "the first worker still runs");
    assert_eq!(std::fs::read_to_string(dir.join("state.lock")).unwrap().trim(), first_pid.to_string(), "the lock file names the first");

    // The first still does its work: a new message moves both group rows.
    let out = t.run_db("create-message", &db, &[&ddb_core::seed::COURSE_GROUP.to_string(), "bayko", "still here"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !t.group_rows().iter().all(|g| g.message == "still here") {
        assert!(std::time::Instant::now() < deadline, "the first worker did not move the group rows: {:?}", t.group_rows());
        assert!(first.0.try_wait().unwrap().is_none(), "the first worker exited");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(t.group_rows().len(), 2, "{:?}", t.group_rows());
    first.kill();
    let _ = std::fs::remove_dir_all(&dir);
}
