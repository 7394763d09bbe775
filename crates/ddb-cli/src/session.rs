//! What a script asks of its session: a confirmation, the signals that stop it, and the files it
//! keeps between runs.

use anyhow::Context;
use sha2::{Digest, Sha256};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Asks the user to type `expected` to go on. False without a terminal (nothing is asked).
pub fn confirm(prompt: &str, expected: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{}", crate::text::escape(prompt));
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).context("reading the confirmation")?;
    Ok(answer.trim() == expected)
}

/// Where an import reads: `file`, or standard input for `-` or none (spooled into a temporary
/// file first, so that it is checked whole before anything is written). Standard input that is
/// a terminal is a usage error: nothing would come.
pub fn import_source(file: Option<&str>) -> anyhow::Result<ddb_core::import::Source> {
    match file {
        Some(f) if f != "-" => Ok(ddb_core::import::Source::open(&PathBuf::from(f), &std::env::temp_dir())?),
        _ if std::io::stdin().is_terminal() => Err(crate::run::usage(
            "no FILE, and standard input is a terminal: give a FILE, or pipe items in (./bin/ddb/scan --output dynamodb-json | ./bin/ddb/import -)",
        )),
        _ => Ok(ddb_core::import::Source::spool(&mut std::io::stdin().lock(), &std::env::temp_dir())?),
    }
}

/// Resolves on Ctrl-C or SIGTERM: for scripts that run until stopped (the stream worker) and
/// runs that stop cleanly (the seed). The handlers are installed when it is called, not when the
/// future is first polled: a Ctrl-C that comes before the run first looks at it (right after the
/// seed took its lock) still stops the run cleanly, instead of killing the process and leaving
/// the lock behind. Call it inside the runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let (int, term) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
    async move {
        let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = wait(int) => {}
            _ = wait(term) => {}
        }
    }
}

/// The longest file name [`state_file`] gives, in bytes: far below the 255 of Linux and macOS
/// file systems, so that a temporary file beside it (`NAME.PID.tmp`) fits as well.
pub const MAX_STATE_NAME: usize = 120;

/// Where a script keeps state between runs: `$XDG_STATE_HOME/cruddur-ddb/NAME` (else
/// `~/.local/state/...`), `NAME` with every character but letters, digits, `-` and `.` made `_`.
/// A name longer than [`MAX_STATE_NAME`] bytes (a table name may have 255 characters, an
/// endpoint more) keeps its beginning and its extension around 16 hex digits of the whole name's
/// SHA-256: `stream-http___localhost_8000-very-long-tab-1f2e3d4c5b6a7988.json`. The same name
/// always gives the same file, and two names give two files.
pub fn state_file(name: &str) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("cruddur-ddb").join(file_name(name))
}

/// The file name of [`state_file`]: ASCII, at most [`MAX_STATE_NAME`] bytes.
fn file_name(name: &str) -> String {
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
    if clean.len() <= MAX_STATE_NAME {
        return clean;
    }
    // A short extension (`.json`) stays last; the cut is on a byte of ASCII, a character's end.
    let ext = clean.rfind('.').map(|i| &clean[i..]).filter(|e| e.len() <= 8).unwrap_or("");
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    let keep = MAX_STATE_NAME - ext.len() - hash.len() - 1;
    format!("{}-{hash}{ext}", &clean[..keep])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept_and_long_ones_bounded_and_distinct() {
        assert_eq!(file_name("stream-http://localhost:8000-cruddur-messages.json"), "stream-http___localhost_8000-cruddur-messages.json");
        let table = |last: char| format!("{}{last}", "t".repeat(254));
        let endpoints = ["http://localhost:8000", "AWS", &format!("https://{}.example.com:4566", "x".repeat(300))];
        let mut seen = std::collections::HashSet::new();
        for endpoint in endpoints {
            for last in ['a', 'b'] {
                let name = file_name(&format!("stream-{endpoint}-{}.json", table(last)));
                assert!(name.len() <= MAX_STATE_NAME, "{} bytes: {name}", name.len());
                assert!(name.starts_with("stream-") && name.ends_with(".json"), "{name}");
                assert!(seen.insert(name), "two names, one file");
            }
        }
        let long = format!("stream-AWS-{}.json", table('a'));
        assert_eq!(file_name(&long), file_name(&long), "the same file on every run");
    }
}
