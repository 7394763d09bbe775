//! Running a script: its arguments, its runtime, and the one place that turns how it ended into
//! an exit code and an `error: ...` line.

use crate::errln;
use crate::text::escape;
use std::future::Future;
use std::process::ExitCode;

/// Exit code for a failure (bad input, missing server, refused request).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for bad usage: a flag or word that clap refused, or a value refused after parsing.
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as a shell reports it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// A usage error (exit 2) with the given message: a library error of kind `Usage`, the one kind
/// that [`main`] exits 2 for besides clap's own errors.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    ddb_core::Error::Usage(message.into()).into()
}

/// Runs a binary's body on a runtime and ends the run (see [`run`] for how it ends).
///
/// One-shot scripts run on a current-thread runtime: they wait on the network, and starting
/// worker threads would only add start-up time. `threads > 1` gives a multi-threaded runtime to
/// the scripts that also do CPU work while they wait (seed, scan).
pub fn main<F>(threads: usize, body: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<()>>,
{
    let rt = if threads > 1 {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    };
    finish(match rt {
        Ok(rt) => rt.block_on(body),
        Err(e) => Err(anyhow::Error::new(e).context("cannot start the async runtime")),
    })
}

/// Parses the script's arguments `A` and runs `body(args)` as [`main`] does. The run ends in one
/// place whatever went wrong: `--help` and `--version` print and exit 0; a usage error (clap's,
/// or [`usage`]) exits 2 and any other error 1, after `error: ...` on stderr with its control
/// characters escaped; a closed stdout (`| head`) ends quietly with 0.
pub fn run<A: clap::Parser, F: Future<Output = anyhow::Result<()>>>(threads: usize, body: impl FnOnce(A) -> F) -> ExitCode {
    match parse::<A>() {
        Ok(args) => main(threads, body(args)),
        Err(code) => code,
    }
}

/// The script's arguments `A`, for a script that looks at them before it hands a body to
/// [`main`]; or the exit code of `--help`, `--version` or a usage error, already printed as
/// [`run`] prints them.
pub fn parse<A: clap::Parser>() -> Result<A, ExitCode> {
    A::try_parse().map_err(|e| finish(Err(e.into())))
}

/// How a run ended, as an exit code, after printing what the user needs to see.
fn finish(result: anyhow::Result<()>) -> ExitCode {
    let Err(e) = result else {
        return ExitCode::SUCCESS;
    };
    if let Some(clap) = e.downcast_ref::<clap::Error>() {
        if !clap.use_stderr() {
            // --help or --version: clap prints them (styled on a terminal) to stdout; a reader
            // gone away is as quiet as anywhere else.
            let _ = clap.print();
            return ExitCode::SUCCESS;
        }
        // clap's own text, plain, with the user's words in it escaped as any other error.
        for line in clap.render().to_string().lines() {
            errln!("{}", escape(line));
        }
    } else if is_broken_pipe(&e) {
        return ExitCode::SUCCESS;
    } else {
        errln!("error: {}", escape(&error_text(&e)));
    }
    ExitCode::from(exit_code(&e))
}

/// The exit code of a failed run: [`EXIT_USAGE`] for clap's errors and library errors of kind
/// `Usage` anywhere in the chain, [`EXIT_INTERRUPTED`] for a run stopped by Ctrl-C, [`EXIT_FAILURE`]
/// for everything else.
fn exit_code(e: &anyhow::Error) -> u8 {
    let kind = |k| e.chain().any(|c| c.downcast_ref::<ddb_core::Error>().is_some_and(|l| l.kind() == k));
    let clap_usage = e.chain().any(|c| c.downcast_ref::<clap::Error>().is_some_and(clap::Error::use_stderr));
    if clap_usage || kind(ddb_core::ErrorKind::Usage) {
        EXIT_USAGE
    } else if kind(ddb_core::ErrorKind::Interrupted) {
        EXIT_INTERRUPTED
    } else {
        EXIT_FAILURE
    }
}

/// The error's chain joined by ": ", down to the first library error: its text already names its
/// cause, which would otherwise be printed twice. Not escaped: [`main`] escapes what it prints.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in e.chain() {
        parts.push(cause.to_string());
        if cause.is::<ddb_core::Error>() {
            break;
        }
    }
    parts.join(": ")
}

/// True when the error is stdout's reader gone away (`| head`). Not looked for below a library
/// error: a broken pipe there is a server's connection (Postgres killed mid-statement), a failure.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    e.chain().take_while(|c| !c.is::<ddb_core::Error>()).any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == BrokenPipe)
            || c.downcast_ref::<serde_json::Error>().is_some_and(|j| j.io_error_kind() == Some(BrokenPipe))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn library_errors_are_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = anyhow::Error::from(ddb_core::Error::io("cannot read conversation file x.txt", io)).context("seeding");
        assert_eq!(error_text(&e), "seeding: cannot read conversation file x.txt: No such file or directory");
    }

    #[test]
    fn a_broken_pipe_is_quiet_only_when_it_is_stdout() {
        let pipe = || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "Broken pipe");
        assert!(is_broken_pipe(&anyhow::Error::from(pipe())));
        // A library error whose cause is a broken connection is a failure, not `| head`.
        let lib = ddb_core::Error::io("writing to the server", pipe());
        assert!(!is_broken_pipe(&anyhow::Error::from(lib)));
    }

    #[derive(Parser, Debug)]
    struct Words {
        #[arg(long)]
        limit: u32,
    }

    #[test]
    fn one_function_decides_every_exit_code() {
        let clap_usage = Words::try_parse_from(["x", "--limit", "many"]).unwrap_err();
        assert_eq!(exit_code(&clap_usage.into()), EXIT_USAGE);
        assert_eq!(exit_code(&usage("--groups beyond --messages")), EXIT_USAGE);
        assert_eq!(exit_code(&usage("a bad cursor").context("listing")), EXIT_USAGE, "under context too");
        assert_eq!(exit_code(&ddb_core::Error::Input("a bad file".into()).into()), EXIT_FAILURE);
        assert_eq!(exit_code(&ddb_core::Error::Interrupted.into()), EXIT_INTERRUPTED);
        assert_eq!(exit_code(&anyhow::anyhow!("anything else")), EXIT_FAILURE);
    }
}
