//! End-to-end tests: the real binaries against DynamoDB Local and Postgres, both real, started
//! or created by the tests themselves.
//!
//! - `tables`: schema-load, list-tables, drop, scan; unreachable endpoints and usage errors.
//! - `seed`: the course seed, bad inputs, re-runs, crashes and scale mode.
//! - `patterns`: access patterns A-D and their scripts.
//! - `stream`: pattern E, the handler and the stream worker.
//! - `cognito`: list-users and update_cognito_user_ids against moto and Postgres.
//! - `files`: docker-compose.yml, .gitpod.yml and the bin/ shims stay valid.

mod files;
mod seed;
mod tables;
mod patterns;
mod stream;
mod cognito;
