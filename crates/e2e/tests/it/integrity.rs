//! Several writers at once (SPEC.md, 'Several writers at once'): two seeds, a seed racing
//! create-message with the stream worker running, a re-seed after runs with other members, and
//! the handler converging a member's duplicate group rows. Races are forced where they can be
//! (the fault proxy holds chosen requests back while another writer goes first) and repeated
//! where they cannot; every test asserts on the rows.

use crate::locks::Renewing;
use ddb_core::lock::{Holder, Lease};
use ddb_core::pg::User;
use ddb_core::records::{Item, MessageGroupRow};
use ddb_core::seed::{COURSE_GROUP, SEED_LOCK};
use ddb_core::stream::{handle, EventKind, Record};
use e2e::fault::FaultProxy;
use e2e::*;
use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};
use uuid::Uuid;

fn spawn_seed(t: &TestTable, db: &TestDb, endpoint: &str) -> Child {
    t.seed_cmd(db, &[]).env("AWS_ENDPOINT_URL", endpoint).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// A table on `server` seeded with the course conversation, its database, and the two users.
fn seeded_course(server: &DynamoLocal, tag: &str) -> (TestTable, TestDb, HashMap<String, User>) {
    let (t, db) = seeded(server, tag, &[]);
    let u = db.users(&COURSE_HANDLES);
    (t, db, u)
}

/// The table holds exactly the course seed: 24 messages, one group row per member, nothing else
/// (no lock left behind).
fn assert_exactly_one_course_seed(t: &TestTable, u: &HashMap<String, User>, context: &str) {
    let items = t.items();
    let others: Vec<&Item> = items.iter().filter(|i| !s(i, "pk").starts_with("GRP#") && !s(i, "pk").starts_with("MSG#")).collect();
    assert!(others.is_empty(), "{context}: rows that are neither messages nor group rows: {others:?}");
    assert_eq!(t.messages().len(), 24, "{context}: messages");
    let rows = t.group_rows();
    let mut owners: Vec<Uuid> = rows.iter().map(|g| g.owner_uuid).collect();
    owners.sort();
    let mut want = vec![u["yaya2devops"].uuid, u["bayko"].uuid];
    want.sort();
    assert_eq!(owners, want, "{context}: one group row per member: {rows:?}");
}

#[test]
fn a_second_seed_refuses_while_the_first_holds_the_lock() {
    let db = TestDb::create();
    let u = db.users(&COURSE_HANDLES);
    let t = TestTable::create(DynamoLocal::shared(), "lock");
    // The first seed's message writes are throttled until the second seed has its answer: the
    // first keeps retrying them (for up to a minute without progress) and holds the lock meanwhile.
    let proxy = FaultProxy::start(&t.endpoint);
    proxy.faults.only(&["BatchWriteItem"]);
    proxy.faults.throttle_pct.store(100, Relaxed);
    let first = spawn_seed(&t, &db, &proxy.endpoint);
    let first_pid = first.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    let holder = loop {
        if let Some(h) = block_on(SEED_LOCK.holder(&t.ddb)).unwrap() {
            break h;
        }
        assert!(Instant::now() < deadline, "the first seed never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(holder.pid, first_pid, "{holder:?}");

    let asked = Instant::now();
    let second = run_watched(&mut t.seed_cmd(&db, &[]), Duration::from_secs(60));
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    // Not asserted (no timing is); printed for the record: about a renewal (3 s) and a poll (1 s).
    eprintln!("a_second_seed_refuses: refused after {:.1} s", asked.elapsed().as_secs_f64());
    let err = crate::locks::one_error_line(&second);
    assert!(err.contains("another seed is running") && err.contains(&format!("pid {first_pid}")) && err.contains("seed lock"), "{err}");

    proxy.faults.clear();
    let first = wait_watched(first, Duration::from_secs(60), "the first seed");
    assert!(first.status.success(), "{}", stderr(&first));
    assert_exactly_one_course_seed(&t, &u, "after the first seed");
    assert!(block_on(SEED_LOCK.holder(&t.ddb)).unwrap().is_none(), "the lock was given back");
}

/// A seed stopped (SIGSTOP) past its lease, while a second seed takes the lock over and writes the
/// course conversation, writes nothing once it is woken up: its writes pass the lease's fence,
/// which renews first and finds the lease taken. Before the fence, the woken seed wrote on for a
/// renewal period (about 3 s: thousands of messages here) beside the seed that took over. The
/// first seed's writes are slowed by a proxy, so that it is still writing when it is stopped.
#[test]
fn a_seed_stopped_past_its_lease_writes_nothing_when_it_wakes_up() {
    let db = TestDb::create();
    let u = db.users(&COURSE_HANDLES);
    let t = TestTable::create(DynamoLocal::shared(), "stopped");
    let proxy = FaultProxy::start(&t.endpoint);
    proxy.faults.only(&["BatchWriteItem"]);
    proxy.faults.delay_ms.store(300, Relaxed);
    let first = t
        .seed_cmd(&db, &["--messages", "500000", "--groups", "20"])
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while proxy.faults.seen("BatchWriteItem") < 20 {
        assert!(Instant::now() < deadline, "the first seed never wrote: {}", proxy.faults.summary());
        std::thread::sleep(Duration::from_millis(50));
    }
    let signal = |sig: &str| assert!(std::process::Command::new("kill").args([sig, &first.id().to_string()]).status().unwrap().success());
    signal("-STOP");
    // The second seed sees the lock unrenewed for a whole lease (30 s), takes it over, clears
    // the first seed's conversations and writes the course's.
    let second = run_watched(&mut t.seed_cmd(&db, &[]), Duration::from_secs(600));
    assert!(second.status.success(), "the second seed: {}", stderr(&second));
    assert_exactly_one_course_seed(&t, &u, "after the takeover");
    signal("-CONT");
    let first = wait_watched(first, Duration::from_secs(300), "the woken seed");
    assert!(!first.status.success(), "the woken seed must fail: {}", stdout(&first));
    assert!(stderr(&first).contains("lost the seed lock"), "{}", stderr(&first));
    assert_exactly_one_course_seed(&t, &u, "after the first seed woke up");
    assert!(block_on(SEED_LOCK.holder(&t.ddb)).unwrap().is_none(), "no lock left");
}

#[test]
fn seeds_started_together_leave_exactly_one_copy() {
    let db = TestDb::create();
    let u = db.users(&COURSE_HANDLES);
    let t = TestTable::create(DynamoLocal::shared(), "twoseeds");
    let mut refused = 0;
    for round in 0..6 {
        let a = spawn_seed(&t, &db, &t.endpoint);
        let b = spawn_seed(&t, &db, &t.endpoint);
        for out in [wait_watched(a, Duration::from_secs(60), "seed a"), wait_watched(b, Duration::from_secs(60), "seed b")] {
            if !out.status.success() {
                refused += 1;
                assert!(stderr(&out).contains("seed lock"), "round {round}: a failed seed must say why: {}", stderr(&out));
            }
        }
        assert_exactly_one_course_seed(&t, &u, &format!("round {round}"));
    }
    // Not asserted, since the two may happen not to overlap; printed for the record.
    eprintln!("seeds_started_together: {refused} of 12 runs refused by the lock");
}

/// Puts a lock item as another run would have left it; `lease_ms` is its lease (the seed's own
/// when none).
fn put_lock(t: &TestTable, host: &str, pid: u32, expires_in: time::Duration, lease_ms: Option<u64>) {
    crate::locks::put_lock_item(t, crate::locks::lock_attrs(host, crate::locks::sv(&pid.to_string()), expires_in, lease_ms));
}

#[test]
fn locks_of_dead_or_expired_runs_are_taken_over_and_live_ones_are_not() {
    let db = TestDb::create();
    let u = db.users(&COURSE_HANDLES);
    let t = TestTable::create(DynamoLocal::shared(), "stalelock");
    let this_host = crate::locks::this_host();

    // A live run elsewhere (it renews its lease): refused, naming the host.
    put_lock(&t, "build-box-7", 4242, time::Duration::seconds(30), None);
    let alive = Renewing::start(&t, time::Duration::seconds(30));
    let out = run_watched(&mut t.seed_cmd(&db, &[]), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("pid 4242 on host build-box-7"), "{}", stderr(&out));
    assert!(t.messages().is_empty(), "nothing written while refused");
    drop(alive);

    // Killed elsewhere: no longer renewed, so taken over after one lease (the item's 1 s).
    put_lock(&t, "build-box-7", 4242, time::Duration::seconds(-1), Some(1_000));
    let out = t.seed(&db, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_exactly_one_course_seed(&t, &u, "after an expired lock");

    // Killed on this host, lease still running: its pid is gone, so taken over at once.
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    put_lock(&t, &this_host, dead_pid, time::Duration::seconds(30), None);
    let out = t.seed(&db, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("not being renewed"), "at once, without a watch: {}", stderr(&out));
    assert_exactly_one_course_seed(&t, &u, "after a dead holder on this host");

    // Alive on this host (this test process) and renewing: refused.
    put_lock(&t, &this_host, std::process::id(), time::Duration::seconds(30), None);
    let alive = Renewing::start(&t, time::Duration::seconds(30));
    let out = run_watched(&mut t.seed_cmd(&db, &[]), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    drop(alive);
    let h: Holder = block_on(SEED_LOCK.holder(&t.ddb)).unwrap().unwrap();
    assert_eq!(h.pid, std::process::id(), "the live holder's lock is untouched");
}

/// The lease is renewed by a task of its own: work that blocks its thread (the seed's prod prompt
/// waiting for the user to type yes) keeps the lock, and a second run meanwhile is refused
/// instead of taking it over. Asserted on the lock item's versions, not on wall time: the work
/// blocks until three renewals have been seen, and the lease (20 s, renewed every 2 s) leaves
/// a loaded machine far more than it needs.
#[test]
fn a_lease_stays_renewed_while_its_work_blocks_the_thread() {
    let t = TestTable::create(DynamoLocal::shared(), "lease");
    let lease = Lease { name: "blocking", ttl: Duration::from_secs(20) };
    let let_go = AtomicBool::new(false);
    std::thread::scope(|s| {
        let holder = s.spawn(|| {
            block_on(lease.hold(&t.ddb, &(), |_| async {
                // Blocks its thread, without an await, until the test lets go.
                while !let_go.load(Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(())
            }))
        });
        let mut versions = std::collections::HashSet::new();
        let deadline = Instant::now() + Duration::from_secs(300);
        while versions.len() < 4 {
            if let Some(h) = block_on(lease.holder(&t.ddb)).unwrap() {
                versions.insert(h.version);
            }
            assert!(!holder.is_finished() && Instant::now() < deadline, "no renewals while the work blocks: {versions:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let second = block_on(lease.hold(&t.ddb, &(), |_| async { Ok(()) }));
        assert!(matches!(&second, Err(ddb_core::Error::Conflict(m)) if m.contains("blocking lock")), "{second:?}");
        let_go.store(true, Relaxed);
        holder.join().unwrap().expect("the first run kept its lock");
    });
    assert!(block_on(lease.holder(&t.ddb)).unwrap().is_none(), "given back at the end");
}

#[test]
fn a_reseed_removes_the_rows_of_earlier_runs_whoever_the_members_were() {
    let db = TestDb::with_user("Londo Mollari", "londo");
    let u = db.users(&["yaya2devops", "bayko", "londo"]);
    let t = TestTable::create(DynamoLocal::shared(), "reseed");

    // An earlier run in which Fan123 was londo.
    let out = t.seed(&db, &["--speaker", "Fan123=londo", "--speaker", "Fan=londo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(t.group_rows().iter().any(|g| g.owner_uuid == u["londo"].uuid));
    let out = t.seed(&db, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_exactly_one_course_seed(&t, &u, "after re-seeding without londo");
    let londo = block_on(ddb_core::patterns::list_message_groups(&t.ddb, u["londo"].uuid, &Default::default())).unwrap();
    assert!(londo.items.is_empty(), "londo no longer lists the course conversation: {:?}", londo.items);

    // An earlier run from another users database: the same handles, other uuids; also scale mode.
    let other_db = TestDb::create();
    let out = t.seed(&other_db, &["--messages", "60", "--groups", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = t.seed(&db, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_exactly_one_course_seed(&t, &u, "after re-seeding from the first database");
}

/// The worker, with its log in a file.
struct Worker {
    child: Child,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl Worker {
    fn start(t: &TestTable) -> Worker {
        let dir = TempDir::new("integrity-worker");
        let (log, state) = (dir.join("worker.log"), dir.join("state.json"));
        let child = t.worker_logged(Some(&state), &log).spawn().unwrap();
        Worker { child, log, _dir: dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One group row per member of the course conversation, each on or after its newest message.
fn course_rows_settled(t: &TestTable, u: &HashMap<String, User>) -> Result<(), String> {
    let rows: Vec<MessageGroupRow> = t.group_rows().into_iter().filter(|g| g.message_group_uuid == COURSE_GROUP).collect();
    let mut owners: Vec<Uuid> = rows.iter().map(|g| g.owner_uuid).collect();
    owners.sort();
    let mut want = vec![u["yaya2devops"].uuid, u["bayko"].uuid];
    want.sort();
    if owners != want {
        return Err(format!("not one row per member: {rows:?}"));
    }
    let newest = t.messages().into_iter().filter(|m| m.message_group_uuid == COURSE_GROUP).map(|m| m.created_at).max();
    match newest {
        Some(n) if rows.iter().any(|g| g.last_message_at < n) => Err(format!("a row is behind the newest message {n}: {rows:?}")),
        _ => Ok(()),
    }
}

fn wait_settled(t: &TestTable, u: &HashMap<String, User>, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        match course_rows_settled(t, u) {
            Ok(()) => return Ok(()),
            Err(e) if start.elapsed() > limit => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Messages from `sender` into the course conversation until `stop`, directly (pattern C).
/// A member sending messages into the course conversation, one after another, until `stop` (at
/// least one); returns how many.
fn chatter<'a>(t: &'a TestTable, sender: &'a User, stop: &'a AtomicBool) -> impl FnOnce() -> u32 + Send + 'a {
    move || {
        let mut n = 0;
        while n == 0 || !stop.load(Relaxed) {
            block_on(ddb_core::patterns::create_message(&t.ddb, COURSE_GROUP, sender, &format!("{} says {n}", sender.handle))).unwrap();
            n += 1;
            std::thread::sleep(Duration::from_millis(40));
        }
        n
    }
}

#[test]
fn seed_racing_create_message_and_the_worker_keeps_one_row_per_member() {
    let server = DynamoLocal::start();
    let (t, db, u) = seeded_course(&server, "race");
    let worker = Worker::start(&t);
    let proxy = FaultProxy::start(&t.endpoint);
    proxy.faults.only(&["TransactWriteItems"]);

    for round in 0..8 {
        // Even rounds force the bad interleaving: the seed has read the group rows, its first
        // replacing transaction is held back until the worker has moved those very rows onto a
        // message sent meanwhile. Odd rounds let the three run freely.
        let forced = round % 2 == 0;
        let keys = |t: &TestTable| -> Vec<String> {
            let mut k: Vec<String> = t.rows_of(COURSE_GROUP).iter().map(|r| ddb_core::records::format_ts(r.last_message_at)).collect();
            k.sort();
            k
        };
        if forced {
            proxy.faults.hold(1);
        }
        let held_before = proxy.faults.held.load(Relaxed);
        let stop = AtomicBool::new(false);
        let transactions_before = proxy.faults.seen("TransactWriteItems");
        let sent = std::thread::scope(|s| {
            let talk = s.spawn(chatter(&t, &u["bayko"], &stop));
            if forced {
                // Only the first attempt is held: the gate opens once the rows have moved.
                s.spawn(|| {
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while proxy.faults.held.load(Relaxed) == held_before && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    // The seed has read the rows and sent its transaction: wait for a move after it.
                    let held_at = keys(&t);
                    while keys(&t) == held_at && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    proxy.faults.open_gate();
                });
            }
            let out = t.seed_cmd(&db, &[]).env("AWS_ENDPOINT_URL", &proxy.endpoint).output().unwrap();
            stop.store(true, Relaxed);
            assert!(out.status.success(), "round {round}: {}", stderr(&out));
            talk.join().unwrap()
        });
        assert!(sent > 0, "round {round}: no message was sent during the seed");
        let transactions = proxy.faults.seen("TransactWriteItems") - transactions_before;
        if forced {
            // The held-back replacement met rows the worker had moved, failed its conditions,
            // and the seed re-read and replaced again: the interleaving did happen.
            assert!(transactions >= 2, "round {round}: the seed's first replacement was not cancelled ({transactions} transaction(s))");
        }
        if let Err(e) = wait_settled(&t, &u, Duration::from_secs(30)) {
            panic!("round {round} (forced: {forced}, {sent} messages during the seed): {e}\nworker log:\n{}", worker.log());
        }
    }
    assert!(!worker.log().contains("kept changing"), "the worker never gave up on a conversation:\n{}", worker.log());
}

/// Pattern C checks membership on the sender's own group row while pattern E moves that row
/// (delete and put in one transaction): both members writing at once are never refused, and the
/// rows settle on the newest message.
#[test]
fn members_writing_while_the_worker_moves_their_rows_are_never_refused() {
    let server = DynamoLocal::start();
    let (t, _db, u) = seeded_course(&server, "chat");
    let worker = Worker::start(&t);
    // Until 30 messages are in, not for a time: on a loaded machine the same interleavings only
    // take longer.
    let stop = AtomicBool::new(false);
    let sent = std::thread::scope(|s| {
        let talkers = [s.spawn(chatter(&t, &u["bayko"], &stop)), s.spawn(chatter(&t, &u["yaya2devops"], &stop))];
        let deadline = Instant::now() + Duration::from_secs(300);
        while t.messages().len() < 24 + 30 && talkers.iter().all(|h| !h.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Relaxed);
        talkers.map(|h| h.join().expect("a member was refused")).iter().sum::<u32>()
    });
    assert!(sent >= 30, "only {sent} messages were sent");
    if let Err(e) = wait_settled(&t, &u, Duration::from_secs(30)) {
        panic!("{e}\nworker log:\n{}", worker.log());
    }
    let messages = t.messages().into_iter().filter(|m| m.message_group_uuid == COURSE_GROUP).count();
    assert_eq!(messages, 24 + sent as usize);
}

#[test]
fn the_handler_converges_a_members_duplicate_rows_and_says_so() {
    let server = DynamoLocal::start();
    let (t, db, u) = seeded_course(&server, "converge");
    // A second row of yaya's for the course conversation, as an unconditioned writer left it.
    let mut dup = t.group_rows().into_iter().find(|g| g.owner_uuid == u["yaya2devops"].uuid).unwrap();
    dup.last_message_at -= time::Duration::seconds(5);
    block_on(t.client().put_item().table_name(&t.name).set_item(Some(dup.to_item())).send()).unwrap();
    assert_eq!(t.group_rows().len(), 3);

    let worker = Worker::start(&t);
    let out = t.run_db("create-message", &db, &[&COURSE_GROUP.to_string(), "bayko", "one row each"]);
    assert!(out.status.success(), "{}", stderr(&out));
    wait_settled(&t, &u, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{e}\nworker log:\n{}", worker.log()));
    let rows = t.group_rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|g| g.message == "one row each"), "{rows:?}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !worker.log().contains("removed 1 duplicate") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(worker.log().contains("removed 1 duplicate"), "the log says what it converged:\n{}", worker.log());

    // The same through the handler itself, as the Lambda calls it: duplicates without a newer
    // message are removed too, and the outcome counts them.
    block_on(t.client().put_item().table_name(&t.name).set_item(Some(dup.to_item())).send()).unwrap();
    drop(worker);
    let newest = t.messages().into_iter().max_by_key(|m| m.created_at).unwrap();
    let rec = Record { sequence_number: "1".into(), kind: EventKind::Insert, new_image: Some(newest.to_item()) };
    let outcome = block_on(handle(&t.ddb, &[rec]));
    assert_eq!((outcome.moved, outcome.removed, outcome.failed.len()), (0, 1, 0), "{outcome:?}");
    assert_eq!(outcome.notes.len(), 1, "{outcome:?}");
    assert_eq!(t.group_rows().len(), 2);
}
