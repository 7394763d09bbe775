//! The bad inputs of `docs/bad-inputs.json`: the list that the test
//! `reliability::bad_inputs_from_the_docs` runs, and from which the table of `docs/bad-inputs.md`
//! is rendered (the test `files::bad_inputs_md_is_rendered_from_the_data` checks that it is).

use crate::root;
use serde_json::Value;

/// The data file, relative to the workspace root.
pub const DATA: &str = "docs/bad-inputs.json";
/// The document whose table is rendered from [`DATA`], relative to the workspace root.
pub const DOC: &str = "docs/bad-inputs.md";
/// The line of [`DOC`] after which everything is rendered from [`DATA`].
pub const MARKER: &str = "<!-- Rendered from bad-inputs.json; edit that file, then regenerate (see its test). -->";

/// Where a bad input's message must appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// Nothing is required (a quiet success).
    Nothing,
    /// In the first line of stderr; with a non-zero exit that line starts with `error: `.
    Stderr(String),
    /// On stdout (the course's own words, printed as its `echo` did).
    Stdout(String),
}

/// One bad input.
#[derive(Debug, Clone)]
pub struct BadInput {
    /// What is wrong with it, in words.
    pub input: String,
    /// The bash command line that tries it.
    pub command: String,
    /// The exit code it must end with (2: a usage error, 1: any other).
    pub exit: i32,
    /// The message it must give, and where.
    pub said: Said,
}

/// The list, in the order of the file.
pub fn load() -> Vec<BadInput> {
    let path = root().join(DATA);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rows: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DATA}: {e}"));
    rows.iter().enumerate().map(|(i, row)| parse(row).unwrap_or_else(|e| panic!("{DATA}, entry {}: {e}: {row}", i + 1))).collect()
}

fn parse(row: &Value) -> Result<BadInput, String> {
    let obj = row.as_object().ok_or("not an object")?;
    if let Some(k) = obj.keys().find(|k| !["input", "command", "exit", "stderr", "stdout"].contains(&k.as_str())) {
        return Err(format!("unknown key {k:?}"));
    }
    let text = |k: &str| obj.get(k).map(|v| v.as_str().map(str::to_string).ok_or(format!("{k} is not a string"))).transpose();
    let said = match (text("stderr")?, text("stdout")?) {
        (Some(_), Some(_)) => return Err("both stderr and stdout".into()),
        (Some(m), None) => Said::Stderr(m),
        (None, Some(m)) => Said::Stdout(m),
        (None, None) => Said::Nothing,
    };
    let exit = obj.get("exit").and_then(Value::as_i64).ok_or("exit is not a number")?;
    Ok(BadInput {
        input: text("input")?.ok_or("no input")?,
        command: text("command")?.ok_or("no command")?,
        exit: i32::try_from(exit).map_err(|e| e.to_string())?,
        said,
    })
}

/// The markdown table of `rows`, numbered from 1, as it stands in [`DOC`] after [`MARKER`].
pub fn render(rows: &[BadInput]) -> String {
    // Inside a table cell a pipe must be escaped, also within backticks.
    let code = |s: &str| format!("`{}`", s.replace('|', "\\|"));
    let mut out = String::from("| # | input | command | exit | message (first line of stderr, or stdout) |\n|---|---|---|---|---|\n");
    for (i, r) in rows.iter().enumerate() {
        let said = match &r.said {
            Said::Nothing => String::new(),
            Said::Stderr(m) => code(m),
            Said::Stdout(m) => format!("stdout: {}", code(m)),
        };
        out += &format!("| {} | {} | {} | {} | {said} |\n", i + 1, r.input, code(&r.command), r.exit);
    }
    out
}
