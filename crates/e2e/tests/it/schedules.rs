//! Random schedules: rounds of random interleavings of every writer of the table (the seed in
//! course and scale mode, its re-runs and a Ctrl-C on it, create-message, create-conversation,
//! stream workers started, stopped and killed with SIGKILL, pattern E's handler as the Lambda
//! runs it, drop and schema-load), with `bin/ddb/check` as the oracle: after each round, once
//! the writers are done and a worker has caught up, check must report nothing.
//!
//! Each run prints its seed; `SCHEDULE_SEED=N` replays the same schedule, `SCHEDULE_ROUNDS=N`
//! sets the rounds (50 by default; bench/schedules runs 1,000 and more), `SCHEDULE_KEEP_GOING=1`
//! repairs and goes on after a failed round, counting, instead of stopping at the first.

use crate::check::{check, wait_clean};
use ddb_core::stream::{EventKind, Record};
use e2e::{block_on, wait_watched, DynamoLocal, Guarded, TempDir, TestDb, TestTable};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Rounds on one server before a fresh one (DynamoDB Local slows down as its streams grow).
const ROUNDS_PER_SERVER: u64 = 50;
const HANDLES: [&str; 2] = ["yaya2devops", "bayko"];

/// One schedule's state: the table, its writers in flight, what happened.
struct Schedule {
    t: TestTable,
    db: TestDb,
    rng: fastrand::Rng,
    dir: TempDir,
    workers: Vec<Guarded>,
    running: Vec<(String, Child)>,
    log: Vec<String>,
    ops: u64,
    /// A seed of this round did not finish: its contract is a re-run.
    reseed: bool,
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

impl Schedule {
    fn new(server: &DynamoLocal, db: TestDb, rng: fastrand::Rng) -> Self {
        let t = TestTable::create(server, "sched");
        Schedule { t, db, rng, dir: TempDir::new("sched"), workers: Vec::new(), running: Vec::new(), log: Vec::new(), ops: 0, reseed: false }
    }

    fn spawn(&mut self, what: String, mut cmd: Command) {
        let child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn");
        self.log.push(what.clone());
        self.running.push((what, child));
    }

    fn seed_args(&mut self) -> Vec<String> {
        if self.rng.bool() {
            return Vec::new();
        }
        let groups = self.rng.u64(1..=4);
        vec!["--messages".into(), self.rng.u64(groups..=30).to_string(), "--groups".into(), groups.to_string()]
    }

    fn step(&mut self) {
        self.ops += 1;
        match self.rng.u32(0..100) {
            0..=11 => {
                let args = self.seed_args();
                let cmd = self.t.seed_cmd(&self.db, &args.iter().map(String::as_str).collect::<Vec<_>>());
                self.spawn(format!("seed {}", args.join(" ")), cmd);
            }
            12..=14 => self.seed_interrupted(),
            15..=17 => self.reseed_racing_members(),
            18..=49 => {
                let group = ddb_core::seed::group_uuid(self.rng.u64(0..4)).to_string();
                let handle = HANDLES[self.rng.usize(0..2)];
                let mut cmd = self.t.cmd_db("create-message", &self.db);
                cmd.args([group.as_str(), handle, &format!("message {}", self.ops)]);
                self.spawn(format!("create-message {group} {handle}"), cmd);
            }
            50..=59 => {
                let mut cmd = self.t.cmd_db("create-conversation", &self.db);
                let (a, b) = if self.rng.bool() { (0, 1) } else { (1, 0) };
                cmd.args([HANDLES[a], HANDLES[b], "a new conversation"]);
                self.spawn(format!("create-conversation {} {}", HANDLES[a], HANDLES[b]), cmd);
            }
            60..=71 => self.start_worker(),
            72..=79 => self.stop_worker(true),
            80..=84 => self.stop_worker(false),
            85..=95 => self.lambda(),
            _ => self.drop_and_load(),
        }
    }

    /// A seed stopped by Ctrl-C (SIGINT) a random moment after it started.
    fn seed_interrupted(&mut self) {
        let args = self.seed_args();
        let child = self
            .t
            .seed_cmd(&self.db, &args.iter().map(String::as_str).collect::<Vec<_>>())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let after = self.rng.u64(0..400);
        std::thread::sleep(Duration::from_millis(after));
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        self.log.push(format!("seed {} + Ctrl-C after {after} ms", args.join(" ")));
        let out = wait_watched(child, Duration::from_secs(120), "seed");
        self.reseed |= !out.status.success();
    }

    /// A re-seed with fewer conversations (it removes the others) while members keep writing
    /// into the conversations it removes, a few milliseconds apart.
    fn reseed_racing_members(&mut self) {
        let groups = self.rng.u64(1..=2).to_string();
        let cmd = self.t.seed_cmd(&self.db, &["--messages", "4", "--groups", &groups]);
        self.spawn(format!("seed --messages 4 --groups {groups}"), cmd);
        for k in 1..=4 {
            std::thread::sleep(Duration::from_millis(self.rng.u64(0..60)));
            let group = ddb_core::seed::group_uuid(k).to_string();
            let mut cmd = self.t.cmd_db("create-message", &self.db);
            cmd.args([group.as_str(), HANDLES[self.rng.usize(0..2)], "racing the re-seed"]);
            self.spawn(format!("create-message {group} (racing)"), cmd);
        }
    }

    fn start_worker(&mut self) {
        if self.workers.len() >= 2 {
            return;
        }
        let state = self.dir.join(&format!("worker-{}.json", self.ops));
        self.workers.push(self.t.worker(&state));
        self.log.push(format!("worker start ({} running)", self.workers.len()));
    }

    /// Stops a worker: SIGKILL (`kill`) or SIGTERM.
    fn stop_worker(&mut self, kill: bool) {
        if self.workers.is_empty() {
            return;
        }
        let mut w = self.workers.remove(self.rng.usize(0..self.workers.len()));
        if kill {
            w.kill();
        } else {
            let _ = Command::new("kill").args(["-TERM", &w.0.id().to_string()]).status();
            let _ = w.0.wait();
        }
        self.log.push(format!("worker {}", if kill { "SIGKILL" } else { "SIGTERM" }));
    }

    /// Pattern E's handler, as the Lambda runs it, on INSERT records of messages in the table
    /// (the images the stream carries), a random few, in a random order.
    fn lambda(&mut self) {
        let mut items: Vec<_> = self.t.items().into_iter().filter(|i| e2e::s(i, "pk").starts_with("MSG#")).collect();
        if items.is_empty() {
            return;
        }
        self.rng.shuffle(&mut items);
        items.truncate(self.rng.usize(1..=10));
        let records: Vec<Record> = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| Record { sequence_number: i.to_string(), kind: EventKind::Insert, new_image: Some(item) })
            .collect();
        let out = block_on(ddb_core::stream::handle(&self.t.ddb, &records));
        assert!(out.failed.is_empty() && out.errors.is_empty(), "the handler failed: {out:?}");
        self.log.push(format!("lambda handler on {} records", records.len()));
    }

    /// Drop and schema-load, with every writer finished and the workers stopped first.
    fn drop_and_load(&mut self) {
        self.finish_writers();
        while !self.workers.is_empty() {
            self.stop_worker(true);
        }
        for (script, args) in [("drop", vec![self.t.name.as_str()]), ("schema-load", vec![])] {
            let out = self.t.run(script, &args);
            assert!(out.status.success(), "{script}: {}", e2e::stderr(&out));
        }
        self.reseed = false;
        self.log.push("drop + schema-load".into());
    }

    /// Waits for every writer in flight. A seed that failed (another held the lock, or it was
    /// stopped) is re-run at the round's end; a refused create-message (its conversation gone)
    /// is an answer, not a failure; a panic is.
    fn finish_writers(&mut self) {
        for (what, child) in std::mem::take(&mut self.running) {
            let out = wait_watched(child, Duration::from_secs(180), &what);
            let err = e2e::stderr(&out);
            assert!(!err.contains("panicked") && out.status.code().is_some(), "{what}: {err}");
            if what.starts_with("seed") && !out.status.success() {
                self.reseed = true;
            }
        }
    }

    /// Ends the round: writers done, a failed seed re-run, a worker running; then check must
    /// come clean within a generous bound.
    fn end_round(&mut self) -> Result<(), Vec<serde_json::Value>> {
        self.finish_writers();
        if std::mem::take(&mut self.reseed) {
            // A stopped seed leaves its conversations for the re-run, never its lock: looked at
            // before the re-run, which would take over a dead holder's lock.
            let locks: Vec<_> =
                check(&self.t, None, &[]).violations.into_iter().filter(|v| v["kind"].as_str().is_some_and(|k| k.starts_with("lock_"))).collect();
            if !locks.is_empty() {
                return Err(locks);
            }
            let out = self.t.seed(&self.db, &[]);
            assert!(out.status.success(), "the re-run of a stopped seed: {}", e2e::stderr(&out));
            self.log.push("seed (the re-run of one that did not finish)".into());
        }
        if self.workers.is_empty() {
            self.start_worker();
        }
        wait_clean(&self.t, Duration::from_secs(120))
    }
}

#[test]
fn random_schedules_of_every_writer_leave_a_table_that_check_finds_clean() {
    let seed = env_u64("SCHEDULE_SEED").unwrap_or_else(|| fastrand::u64(..));
    let rounds = env_u64("SCHEDULE_ROUNDS").unwrap_or(50);
    let keep_going = std::env::var("SCHEDULE_KEEP_GOING").is_ok_and(|v| v == "1");
    eprintln!("schedules: SCHEDULE_SEED={seed} SCHEDULE_ROUNDS={rounds}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut failed, mut ops, mut found) = (Vec::new(), 0u64, 0usize);
    let mut round = 0;
    while round < rounds {
        let server = DynamoLocal::start();
        let mut s = Schedule::new(&server, TestDb::create(), rng.fork());
        for _ in 0..ROUNDS_PER_SERVER.min(rounds - round) {
            s.log.clear();
            for _ in 0..s.rng.usize(2..=6) {
                s.step();
            }
            if let Err(violations) = s.end_round() {
                let what = format!("round {round} of SCHEDULE_SEED={seed}: check found {violations:?} after {:?}", s.log);
                assert!(keep_going, "{what}");
                eprintln!("{what}");
                found += violations.len();
                let fixed = check(&s.t, None, &["--repair"]);
                eprintln!("repaired: exit {} {}", fixed.code, fixed.stderr);
                // What repair cannot mend (a half-written seed) the seed's re-run does.
                assert!(s.t.seed(&s.db, &[]).status.success(), "the seed after a failed round");
                failed.push(round);
            }
            round += 1;
        }
        ops += s.ops;
    }
    eprintln!("schedules: SCHEDULE_SEED={seed}: {rounds} rounds, {ops} operations, {found} violations found in rounds {failed:?}");
    assert!(failed.is_empty(), "rounds {failed:?} of SCHEDULE_SEED={seed} left violations");
}
