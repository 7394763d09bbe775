//! ARCHITECTURE.md's invariants, where a test can check them: the crate graph (`cargo tree`) and
//! the sources. A failure names the file and line that broke one.

use e2e::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A Rust source file of the workspace, lexed just enough for these checks: comments and the
/// insides of string and char literals blanked (lines and columns kept), the literals apart.
struct Source {
    path: PathBuf,
    /// The text with comments and literals' contents blanked.
    code: String,
    /// Each string literal's text and its line (1-based).
    literals: Vec<(usize, String)>,
    /// The line (1-based) of `#[cfg(test)]` at column 0, where the unit tests start; past the end
    /// when there are none. Unit tests close a file in this workspace.
    tests_from: usize,
    /// The whole file is tests: crates/e2e (the tests and their harness) and `tests/` folders.
    is_test: bool,
}

impl Source {
    fn load(path: &Path) -> Source {
        let text = std::fs::read_to_string(path).unwrap();
        let (code, literals) = lex(&text);
        let tests_from = text.lines().position(|l| l.starts_with("#[cfg(test)]")).map_or(usize::MAX, |i| i + 1);
        let rel = path.strip_prefix(root()).unwrap();
        let is_test = rel.starts_with("crates/e2e") || rel.components().any(|c| c.as_os_str() == "tests");
        Source { path: rel.to_path_buf(), code, literals, tests_from, is_test }
    }

    /// The lines of code (comments and literals blanked) before the unit tests, numbered from 1.
    fn code_lines(&self) -> impl Iterator<Item = (usize, &str)> {
        self.code.lines().enumerate().map(|(i, l)| (i + 1, l)).take_while(|(n, _)| *n < self.tests_from)
    }

    /// `(name, first line, lines)` of each function with a body, before the unit tests: from the
    /// line of `fn` to the line of its body's closing brace.
    fn functions(&self) -> Vec<(String, usize, usize)> {
        let code = self.code.as_bytes();
        let line_at = |i: usize| self.code[..i].bytes().filter(|b| *b == b'\n').count() + 1;
        let mut found = Vec::new();
        let mut at = 0;
        while let Some(k) = self.code[at..].find("fn ") {
            let start = at + k;
            at = start + 3;
            let name: String = self.code[at..].trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let before = start.checked_sub(1).map(|i| code[i]);
            if name.is_empty() || before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') || line_at(start) >= self.tests_from {
                continue;
            }
            // The body's opening brace: the first `{` outside the signature's brackets; a `;`
            // first means a declaration without a body.
            let (mut depth, mut open) = (0i32, None);
            for (i, b) in code.iter().enumerate().skip(at) {
                match b {
                    b'(' | b'[' => depth += 1,
                    b')' | b']' => depth -= 1,
                    b';' if depth == 0 => break,
                    b'{' if depth == 0 => {
                        open = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let Some(open) = open else { continue };
            let mut depth = 0;
            let close = (open..code.len())
                .find(|&i| {
                    depth += match code[i] {
                        b'{' => 1,
                        b'}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .unwrap_or_else(|| panic!("{}: unbalanced braces after fn {name}", self.path.display()));
            found.push((name, line_at(start), line_at(close) - line_at(start) + 1));
        }
        found
    }
}

/// `text` with comments and the insides of string and char literals replaced by spaces (newlines
/// kept), and the string literals' texts with their lines. Enough of Rust's lexical rules for
/// this workspace: line and nested block comments, raw and byte strings, char literals apart from
/// lifetimes.
fn lex(text: &str) -> (String, Vec<(usize, String)>) {
    let b: Vec<char> = text.chars().collect();
    let (mut code, mut literals, mut line, mut i) = (String::with_capacity(text.len()), Vec::new(), 1, 0);
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let ident = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
    while i < b.len() {
        let (c, next) = (b[i], b.get(i + 1).copied());
        // A string's prefix: b, r, br and the raw string's hashes, up to its quote.
        let prefix = if ident(i.checked_sub(1).and_then(|p| b.get(p))) {
            None
        } else {
            let mut j = i + usize::from(c == 'b');
            let raw = b.get(j) == Some(&'r');
            j += usize::from(raw);
            let hashes = if raw { b[j..].iter().take_while(|c| **c == '#').count() } else { 0 };
            (b.get(j + hashes) == Some(&'"') && (c == '"' || j > i)).then_some((j + hashes - i, raw, hashes))
        };
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                code.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                let pair: String = b[i..(i + 2).min(b.len())].iter().collect();
                depth += match pair.as_str() {
                    "/*" => 1,
                    "*/" => -1,
                    _ => 0,
                };
                if pair == "/*" || pair == "*/" {
                    code.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(b[i] == '\n');
                    code.push(blank(b[i]));
                    i += 1;
                }
            }
        } else if let Some((len, raw, hashes)) = prefix {
            code.extend(std::iter::repeat_n(' ', len + 1));
            i += len + 1;
            let (start, mut s) = (line, String::new());
            while i < b.len() {
                if !raw && b[i] == '\\' {
                    s.extend(&b[i..(i + 2).min(b.len())]);
                    code.push(' ');
                    code.push(b.get(i + 1).copied().map_or(' ', blank));
                    line += usize::from(b.get(i + 1) == Some(&'\n'));
                    i += 2;
                } else if b[i] == '"' && b[i + 1..].iter().take(hashes).filter(|c| **c == '#').count() == hashes {
                    code.extend(std::iter::repeat_n(' ', hashes + 1));
                    i += hashes + 1;
                    break;
                } else {
                    s.push(b[i]);
                    line += usize::from(b[i] == '\n');
                    code.push(blank(b[i]));
                    i += 1;
                }
            }
            literals.push((start, s));
        } else if c == '\'' && (next == Some('\\') || b.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\'', '\u{..}'); otherwise a lifetime, kept as code.
            let end = if next == Some('\\') { (i + 3..b.len()).find(|&j| b[j] == '\'').unwrap_or(b.len() - 1) } else { i + 2 };
            code.extend(std::iter::repeat_n(' ', end + 1 - i));
            i = end + 1;
        } else {
            line += usize::from(c == '\n');
            code.push(c);
            i += 1;
        }
    }
    (code, literals)
}

/// Every Rust source file of the workspace's crates.
fn sources() -> Vec<Source> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() && !p.ends_with("target") {
                walk(&p, files);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join("crates"), &mut files);
    files.sort();
    assert!(files.len() >= 40, "{files:?}");
    files.iter().map(|f| Source::load(f)).collect()
}

/// The crates that build binaries: each with its binaries' root files.
fn binary_crates() -> Vec<(String, Vec<PathBuf>)> {
    let mut crates = Vec::new();
    for package in crate::files::workspace_metadata()["packages"].as_array().unwrap() {
        let roots: Vec<PathBuf> = package["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
            .map(|t| PathBuf::from(t["src_path"].as_str().unwrap()))
            .collect();
        if !roots.is_empty() {
            crates.push((package["name"].as_str().unwrap().to_string(), roots));
        }
    }
    assert!(crates.len() >= 15, "{crates:?}");
    crates
}

/// The crates of the scripts in bin/: those whose manifest declares them.
fn script_crates() -> Vec<String> {
    let packages = crate::files::workspace_metadata()["packages"].as_array().unwrap().clone();
    let scripts: Vec<String> =
        packages.iter().filter(|p| p["metadata"].get("cruddur").is_some()).map(|p| p["name"].as_str().unwrap().to_string()).collect();
    assert!(scripts.len() >= 13, "{scripts:?}");
    scripts
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
    for src in sources().iter().filter(|s| s.path.starts_with("crates/ddb-core/src")) {
        for (n, line) in src.code_lines() {
            for mac in ["println!", "print!", "eprintln!", "eprint!", "dbg!", "std::io::stdout", "std::io::stderr"] {
                assert!(!line.contains(mac), "{}:{n}: {mac} in the library", src.path.display());
            }
        }
    }
}

/// The source files of a crate that builds binaries (its folder: the one of its binaries' roots).
fn files_of<'a>(sources: &'a [Source], roots: &[PathBuf]) -> impl Iterator<Item = &'a Source> {
    let dir = roots[0].strip_prefix(root()).unwrap().iter().take(2).collect::<PathBuf>();
    sources.iter().filter(move |s| s.path.starts_with(&dir) && !s.is_test)
}

/// Every binary, the bench tools' and the Lambda's included: rows are ddb-core's typed records,
/// clients and targets come from ddb-core.
#[test]
fn binaries_touch_no_attribute_values_clients_or_targets() {
    let sources = sources();
    for (package, roots) in binary_crates() {
        for src in files_of(&sources, &roots) {
            for (n, line) in src.code_lines() {
                for banned in ["AttributeValue", "Client::from_conf", "aws_config::", "tokio_postgres::"] {
                    assert!(
                        !line.contains(banned),
                        "{}:{n}: {banned} in {package}: rows, clients and targets belong to ddb-core",
                        src.path.display()
                    );
                }
            }
        }
    }
}

/// Every binary but the Lambda (whose stdout is its log) denies `clippy::print_stdout` and
/// prints through ddb-cli (`outln!`, `print_json*`), so that a closed pipe ends it quietly.
#[test]
fn binaries_print_only_through_ddb_cli() {
    let sources = sources();
    for (package, roots) in binary_crates().into_iter().filter(|(p, _)| p != "messaging-stream") {
        for main in &roots {
            let text = std::fs::read_to_string(main).unwrap();
            assert!(text.lines().any(|l| l == "#![deny(clippy::print_stdout)]"), "{} does not deny clippy::print_stdout", main.display());
        }
        for src in files_of(&sources, &roots) {
            for (n, line) in src.code_lines() {
                for mac in ["println!", "print!"] {
                    // The macro itself, not eprintln!/eprint! (stderr).
                    let used = line.match_indices(mac).any(|(i, _)| !line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'));
                    assert!(!used, "{}:{n}: {mac} in {package}: print with ddb_cli::outln! or print_json", src.path.display());
                }
            }
        }
        let manifest = std::fs::read_to_string(roots[0].ancestors().find(|d| d.join("Cargo.toml").exists()).unwrap().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("\nddb-cli"), "{package}: a binary uses ddb-cli for its flags and output");
    }
    // The scripts print on stderr through ddb-cli too (errln!), which escapes what data they show.
    for package in script_crates() {
        let main = Source::load(&root().join("crates").join(&package).join("src/main.rs"));
        for (n, line) in main.code_lines() {
            for banned in ["eprintln!", "eprint!", "std::io::stdout", "std::io::stderr"] {
                assert!(!line.contains(banned), "{}:{n}: {banned} in a script: print through ddb_cli (outln!, errln!)", main.path.display());
            }
        }
    }
}

/// Group rows have one home: every conditioned transaction of the toolkit is
/// `ddb_core::conversation::apply`'s, so no other code can write group rows around its conditions
/// (BatchWriteItem cannot condition a put, and no other caller of TransactWriteItems exists).
#[test]
fn only_the_conversation_module_runs_transactions() {
    let found: Vec<String> = sources()
        .iter()
        .filter(|s| !s.is_test && !s.path.starts_with("crates/ddb-core/src/conversation/mod.rs"))
        .flat_map(|s| {
            s.code_lines()
                .filter(|(_, l)| l.contains("transact_write_items"))
                .map(move |(n, _)| format!("{}:{n}", s.path.display()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(found.is_empty(), "TransactWriteItems outside ddb_core::conversation: {found:?}");
}

#[test]
fn scripts_are_thin() {
    for package in script_crates() {
        let main = root().join("crates").join(&package).join("src/main.rs");
        let src = Source::load(&main);
        let lines = src.code_lines().count();
        assert!(lines <= 80, "{}: {lines} lines before its tests; move logic into ddb-core or ddb-cli", main.display());
    }
}

/// The table's name, its index, its variable, its keys and their prefixes are spelled once, in
/// ddb-core::table: any other code names its constants (expressions use `#pk`-style placeholders
/// bound to them). Tests may spell them, to check what was written.
#[test]
fn names_of_the_table_exist_once() {
    let sources = sources();
    let code =
        || sources.iter().filter(|s| !s.is_test).flat_map(|s| s.literals.iter().filter(|(n, _)| *n < s.tests_from).map(move |(n, l)| (s, *n, l)));
    // The names as literals of their own (help texts may mention them); the prefixes anywhere.
    for (needle, whole) in
        [("cruddur-messages", true), ("message-group-sk-index", true), ("DDB_MESSAGE_TABLE", true), ("MSG#", false), ("GRP#", false)]
    {
        let found: Vec<String> = code()
            .filter(|(_, _, l)| if whole { l.as_str() == needle } else { l.contains(needle) })
            .map(|(s, n, _)| format!("{}:{n}", s.path.display()))
            .collect();
        assert!(
            !found.is_empty() && found.iter().all(|f| f.starts_with("crates/ddb-core/src/table.rs:")),
            "{needle} outside ddb-core::table: {found:?}"
        );
    }
    // The key attributes as words: not after `:` or `#` (placeholders), not inside a longer name.
    let names_a_key = |l: &str| {
        let b = l.as_bytes();
        ["pk", "sk"].iter().any(|k| {
            l.match_indices(k).any(|(i, _)| {
                let before = i.checked_sub(1).map(|j| b[j]);
                let after = b.get(i + 2).copied();
                let word = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_');
                !word(before) && !word(after) && before != Some(b':') && before != Some(b'#')
            })
        })
    };
    let found: Vec<String> = code()
        .filter(|(s, _, l)| !s.path.ends_with("crates/ddb-core/src/table.rs") && names_a_key(l))
        .map(|(s, n, l)| format!("{}:{n}: {l:?}", s.path.display()))
        .collect();
    assert!(found.is_empty(), "the key attributes spelled outside ddb-core::table (name table::PK and table::SK):\n{}", found.join("\n"));
}

/// Functions stay short (60 lines from `fn` to its closing brace), tests and their harness apart.
#[test]
fn no_function_outside_tests_is_over_60_lines() {
    let long: Vec<String> = sources()
        .iter()
        .filter(|s| !s.is_test)
        .flat_map(|s| {
            s.functions()
                .into_iter()
                .filter(|(_, _, lines)| *lines > 60)
                .map(move |(name, at, lines)| format!("{}:{at}: fn {name}, {lines} lines", s.path.display()))
        })
        .collect();
    assert!(long.is_empty(), "functions over 60 lines:\n{}", long.join("\n"));
}

/// The library's and the command line's files stay at most 500 lines, unit tests included.
#[test]
fn no_file_of_the_library_or_the_command_line_is_over_500_lines() {
    let large: Vec<String> = sources()
        .iter()
        .filter(|s| s.path.starts_with("crates/ddb-core") || s.path.starts_with("crates/ddb-cli"))
        .map(|s| (s, s.code.lines().count()))
        .filter(|(_, n)| *n > 500)
        .map(|(s, n)| format!("{}: {n} lines", s.path.display()))
        .collect();
    assert!(large.is_empty(), "files over 500 lines:\n{}", large.join("\n"));
}

/// The checks above see what they are meant to: a sample of Rust through the lexer.
#[test]
fn the_source_scan_reads_comments_literals_and_functions() {
    let text = "/// \"pk\" in a doc\nfn a() {\n    let s = r#\"x\"y{\"#; // }\n    let c = '{'; let d = '\\''; let e: &'static str = \"pk = :pk\";\n    /* { /* } */ */\n}\nfn b(x: [u8; 2]) -> u8 { x[0] }\nfn c();\n";
    let (code, literals) = lex(text);
    assert_eq!(code.len(), text.len());
    assert!(!code.contains("pk") && !code.contains("//") && code.contains("'static"), "{code}");
    assert_eq!(literals, vec![(3, "x\"y{".to_string()), (4, "pk = :pk".to_string())]);
    let src = Source { path: PathBuf::from("sample.rs"), code, literals, tests_from: usize::MAX, is_test: false };
    assert_eq!(src.functions(), vec![("a".to_string(), 2, 5), ("b".to_string(), 7, 1)]);
}

/// No test uses a mock of the SDK (nor a mocking crate): no package of the workspace, dev and
/// build dependencies included, has "mock" in its name.
#[test]
fn no_test_mocks_the_sdk() {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["tree", "--locked", "--offline", "--workspace", "-e", "all", "--prefix", "none", "-f", "{p}"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mocks: Vec<String> = stdout(&out).lines().filter(|l| l.contains("mock")).map(str::to_string).collect();
    assert!(mocks.is_empty(), "{mocks:?}");
}
