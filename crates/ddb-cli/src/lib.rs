//! The command-line layer that every script of the toolkit shares: the runtime, error printing
//! and exit codes, the flags (`prod`, the target, the table, Postgres, paging), output that ends
//! quietly when its reader goes away and never carries a control character of the data, progress
//! bars and confirmation. `ddb-core` decides and writes; this crate parses and prints. Each
//! script stays a tiny binary: parse, call, print.
//!
//! # Layout
//!
//! - `run`: [`run`] parses a script's arguments and runs its body on a runtime; [`parse`] and
//!   [`main`] do the same in two steps, for a script that looks at its arguments first. All end
//!   in one place that prints `error: ...` and picks the exit code: 2 for any usage error
//!   (clap's, or [`usage`], a library error of kind `Usage`), 1 for any other failure, 0 when
//!   stdout's reader went away.
//! - `output`: [`outln!`] and [`errln!`], [`print_json`], [`print_json_line`], [`JsonLines`];
//!   JSON escapes the control characters that serde_json leaves (DEL, C1, bidi controls).
//! - `text`: [`escape`], the one escaping function of human-readable output (see its doc for the
//!   escapes), with [`width`], [`pad`], [`cut`] and [`Table`]: columns by display width.
//! - `flags`: [`DdbArgs`] (`prod`, the target, the table), [`DdbFlags`] with [`word_and_prod`]
//!   for scripts whose positional words are all optional, [`TargetArgs`], [`PgArgs`],
//!   [`PageArgs`], [`WriteArgs`] (the batch writer's flags of the seed and the import),
//!   [`parse_uuid`].
//! - `cognito` (feature `cognito`): `CognitoArgs`, whose target flags document Cognito's
//!   defaults, and the client it connects.
//! - `progress`: [`Bar`], the library's `Progress` drawn on stderr.
//! - `session`: [`confirm`], [`shutdown_signal`], [`state_file`] (a bounded file name),
//!   [`import_source`] (a file, or standard input spooled).
#![deny(missing_docs)]

#[cfg(feature = "cognito")]
mod cognito;
mod flags;
mod output;
mod progress;
mod run;
mod session;
mod text;

#[cfg(feature = "cognito")]
pub use cognito::{CognitoArgs, CognitoTargetArgs};
pub use flags::{parse_uuid, word_and_prod, DdbArgs, DdbFlags, PageArgs, PgArgs, Prod, TargetArgs, WriteArgs};
pub use output::{print_json, print_json_line, warn_skipped, JsonLines, OutputError};
pub use progress::Bar;
pub use run::{error_text, main, parse, run, usage, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE};
pub use session::{confirm, import_source, shutdown_signal, state_file, MAX_STATE_NAME};
pub use text::{cut, escape, pad, width, Table};
