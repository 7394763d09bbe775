//! ARCHITECTURE.md's invariants, where a test can check them: the crate graph (`cargo tree`) and
//! the sources. A failure names the file and line that broke one.

use e2e::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The crates of the scripts installed into bin/: every crate with a `src/main.rs` but the Lambda
/// (the bench tools keep theirs under `src/bin`).
fn script_crates() -> Vec<PathBuf> {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("src/main.rs").exists() && !p.ends_with("messaging-stream"))
        .collect();
    crates.sort();
    assert!(crates.len() >= 13, "{crates:?}");
    crates
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            files.push(p);
        }
    }
    files
}

/// The lines of `file` before its unit tests.
fn code_lines(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines().take_while(|l| !l.starts_with("#[cfg(test)]")).map(str::to_string).collect()
}

/// Packages in the normal (non-dev, non-build) dependency tree of `package`.
fn tree(package: &str) -> Vec<String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["tree", "--locked", "--offline", "-e", "normal", "--prefix", "none", "-f", "{p}", "-p", package])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().map(|l| l.split_whitespace().next().unwrap_or_default().to_string()).collect()
}

#[test]
fn the_library_links_no_command_line_crate_and_the_lambda_no_postgres() {
    for (package, banned) in [("ddb-core", &["clap", "indicatif"][..]), ("messaging-stream", &["clap", "indicatif", "tokio-postgres"][..])] {
        let deps = tree(package);
        for b in banned {
            assert!(!deps.iter().any(|d| d == b), "{package} depends on {b}: {deps:?}");
        }
    }
}

#[test]
fn the_library_never_prints() {
    for file in rust_files(&root().join("crates/ddb-core/src")) {
        for (i, line) in code_lines(&file).iter().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for mac in ["println!", "print!", "eprintln!", "eprint!", "dbg!", "std::io::stdout", "std::io::stderr"] {
                assert!(!code.contains(mac), "{}:{}: {mac} in the library: {line}", file.display(), i + 1);
            }
        }
    }
}

#[test]
fn scripts_are_thin_and_print_only_through_outln() {
    for krate in script_crates() {
        let main = krate.join("src/main.rs");
        let lines = code_lines(&main);
        assert!(lines.len() <= 80, "{}: {} lines before its tests; move logic into ddb-core or ddb-cli", main.display(), lines.len());
        assert!(lines.iter().any(|l| l == "#![deny(clippy::print_stdout)]"), "{} does not deny clippy::print_stdout", main.display());
        for (i, line) in lines.iter().enumerate() {
            for banned in ["AttributeValue", "Client::from_conf", "aws_config::", "tokio_postgres::"] {
                assert!(!line.contains(banned), "{}:{}: {banned} in a script: rows, clients and targets belong to ddb-core", main.display(), i + 1);
            }
            for banned in ["eprintln!", "eprint!", "std::io::stdout", "std::io::stderr"] {
                assert!(!line.contains(banned), "{}:{}: {banned} in a script: print through ddb_cli (outln!, errln!)", main.display(), i + 1);
            }
        }
        let manifest = std::fs::read_to_string(krate.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("\nddb-cli"), "{}: a script uses ddb-cli for its flags and output", krate.display());
    }
}

#[test]
fn names_of_the_table_exist_once() {
    for needle in ["\"cruddur-messages\"", "\"message-group-sk-index\"", "\"DDB_MESSAGE_TABLE\""] {
        let mut found = Vec::new();
        for file in rust_files(&root().join("crates")) {
            if file.components().any(|c| c.as_os_str() == "e2e") {
                continue;
            }
            for (i, line) in code_lines(&file).iter().enumerate() {
                if line.contains(needle) {
                    found.push(format!("{}:{}", file.display(), i + 1));
                }
            }
        }
        assert_eq!(found.len(), 1, "{needle} outside ddb-core::table: {found:?}");
        assert!(found[0].contains("crates/ddb-core/src/table.rs"), "{found:?}");
    }
}
