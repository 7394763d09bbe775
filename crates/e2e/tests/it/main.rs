//! End-to-end tests: the real binaries against DynamoDB Local and Postgres, both real, started
//! or created by the tests themselves.
//!
//! - `architecture`: ARCHITECTURE.md's invariants over every crate's files: the crate graph, a
//!   library that never prints, thin binaries that print through ddb-cli, the table's names and
//!   keys spelled once, short functions and files.
//! - `check`: bin/ddb/check: each kind of violation injected by raw writes, named, repaired when
//!   mechanical; clean on every table the seeds and scripts make; `--repair` racing the writers.
//! - `schedules`: random interleavings of every writer (seeds, Ctrl-C, patterns C and D, workers
//!   started and killed, the handler, drop and schema-load), check as the oracle after each round;
//!   `SCHEDULE_SEED` replays one, `SCHEDULE_ROUNDS` sets how many.
//! - `tables`: schema-load, list-tables, drop, scan; unreachable endpoints and usage errors.
//! - `seed`: the course seed, bad inputs, re-runs, crashes and scale mode.
//! - `import`: bin/ddb/import: scan -> drop -> schema-load -> import -> scan in both formats
//!   (every attribute type, unicode, an item near 400 KB), bad lines named FILE:LINE with nothing
//!   written, a stream table with the worker running, prod's confirmation.
//! - `patterns`: access patterns A-D and their scripts.
//! - `stream`: pattern E, the handler and the stream worker (which rides out a restart of its server).
//! - `shards`: the stream shard reader that the worker and bench-tools' stream-lag share.
//! - `lambda`: the messaging-stream bootstrap under the Lambda Runtime API emulator, on real stream
//!   records; bin/lambda/build's provided.al2023 zip and its glibc.
//! - `deploy`: deploy/messaging-stream.yaml: cfn-lint, and bin/lambda/deploy on moto's
//!   CloudFormation with every setting read back.
//! - `filter`: the event source mapping's filter (moto's matcher) and the handler's predicate
//!   agree on every kind of real stream record.
//! - `cognito`: list-users and update_cognito_user_ids against moto and Postgres.
//! - `edges`: the seed, pattern C and pattern E at their edges: a re-seed never leaves group rows
//!   on a message it deleted, messages near the item limit, poison records, the seed's clock,
//!   Ctrl-C, text rules, a conversation from standard input.
//! - `handler_properties`: pattern E's handler on generated batches of every kind of record.
//! - `edges_config`: the AWS side's edges: a malformed ~/.aws/config, a missing profile, a
//!   password in an endpoint URL.
//! - `integrity`: several writers at once: two seeds, seed vs create-message vs the worker, re-seeds.
//! - `locks`: the seed's lease at its edges (unreadable items, reused pids, a holder's clock
//!   behind ours) and two stream workers on one state file.
//! - `local_stack`: bin/local's pid files that are not ours, pid file paths that are not files or
//!   cannot be written, `DDB_LOCAL_PORT` values that are no port, and a server on the port that is
//!   not DynamoDB.
//! - `reliability`: faults through a proxy, killed servers and processes, the bad inputs of
//!   docs/bad-inputs.json.
//! - `files`: docker-compose.yml, .gitpod.yml and the bin/ shims stay valid; the scripts of the
//!   crates' manifests are what bin/setup, the shims and README's table name; docs/bad-inputs.md
//!   is what its data renders.
//! - `output`: human-readable output escapes control characters of the data; columns by width.
//! - `state_file`: the stream worker's state file: its default name fits any table name; paths
//!   that are no state file and saved positions that the stream cannot start from are refused.
//! - `robust`: silent servers, closed pipes, odd `users` columns, cursors with offsets, prod
//!   without credentials, Postgres over TLS, the local stack's scripts.

mod architecture;
mod check;
mod cognito;
mod deploy;
mod edges;
mod edges_config;
mod files;
mod filter;
mod handler_properties;
mod import;
mod integrity;
mod lambda;
mod local_stack;
mod locks;
mod output;
mod patterns;
mod reliability;
mod robust;
mod schedules;
mod seed;
mod shards;
mod state_file;
mod stream;
mod tables;
