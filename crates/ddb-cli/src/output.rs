//! Writing to stdout and stderr. A closed stdout comes back as an error that [`crate::main`] ends
//! quietly; JSON escapes every character that [`crate::escape`] would, so that no output of a
//! script carries a raw control character of the data.

use crate::text::needs_escape;
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};
use std::io::{self, Write};

/// `println!` for the binaries: a closed stdout (`| head -1`, `| true`) comes back as an error
/// instead of a panic, and [`crate::main`] ends such a run quietly with exit 0, as `| head`
/// expects. Use it as `outln!("...")?`; every binary denies `clippy::print_stdout`, so this is
/// the one way. Text of the data goes through [`crate::escape`] (or [`crate::Table`]) first.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        ::std::writeln!(::std::io::stdout().lock(), $($arg)*).map_err($crate::OutputError)
    }};
}

/// A write to standard output that failed (a full disk, a closed pipe): said as such, with the
/// system's reason as its source, so that `> /dev/full` is not a bare "No space left on device".
#[derive(Debug)]
pub struct OutputError(pub io::Error);

impl std::fmt::Display for OutputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cannot write to standard output")
    }
}

impl std::error::Error for OutputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// An error of writing JSON to stdout: the output's own ([`OutputError`]) or serde_json's.
fn json_error(e: serde_json::Error) -> anyhow::Error {
    if e.is_io() {
        OutputError(e.into()).into()
    } else {
        e.into()
    }
}

/// `eprintln!` for the binaries: a line on stderr, and no panic when stderr is gone (there is
/// nowhere left to say anything). Text of the data goes through [`crate::escape`] first.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr().lock(), $($arg)*);
    }};
}

/// A warning on stderr for each item that a listing left out because it does not read as a row
/// ([`ddb_core::patterns::Listing::skipped`]), escaped: the rest of the listing is shown.
pub fn warn_skipped(skipped: &[String]) {
    for e in skipped {
        errln!("warning: {}; left out of this listing (./bin/ddb/check lists every such item)", crate::escape(e));
    }
}

/// Pretty JSON on stdout, as the course's `json.dumps(..., indent=2)`.
pub fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    write_json(&mut out, v, PrettyFormatter::new()).map_err(json_error)?;
    out.write_all(b"\n").map_err(OutputError)?;
    Ok(())
}

/// One line of JSON on stdout: the machine-readable output of `--json` (bench/ reads it).
pub fn print_json_line(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    write_json(&mut out, v, CompactFormatter).map_err(json_error)?;
    out.write_all(b"\n").map_err(OutputError)?;
    Ok(())
}

/// Many JSON lines on stdout through one buffer (scan's items): [`print_json_line`] for a stream.
pub struct JsonLines(io::BufWriter<io::StdoutLock<'static>>);

impl JsonLines {
    /// A writer on stdout with a buffer of 64 KiB.
    pub fn new() -> Self {
        JsonLines(io::BufWriter::with_capacity(64 * 1024, io::stdout().lock()))
    }

    /// Writes `v` as one line.
    pub fn write(&mut self, v: &impl serde::Serialize) -> anyhow::Result<()> {
        write_json(&mut self.0, v, CompactFormatter).map_err(json_error)?;
        self.0.write_all(b"\n").map_err(OutputError)?;
        Ok(())
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        Ok(self.0.flush().map_err(OutputError)?)
    }
}

impl Default for JsonLines {
    fn default() -> Self {
        Self::new()
    }
}

fn write_json<W: Write, F: Formatter>(out: &mut W, v: &impl serde::Serialize, formatter: F) -> serde_json::Result<()> {
    v.serialize(&mut serde_json::Serializer::with_formatter(out, Escaping(formatter)))
}

/// A JSON formatter that also writes `\uXXXX` for what serde_json leaves raw and a terminal may
/// act on: DEL, the C1 controls, bidirectional controls, line and paragraph separators.
/// (serde_json already escapes `"`, `\` and U+0000-U+001F.) The layout is `F`'s.
struct Escaping<F>(F);

/// Forwards a layout method of [`Formatter`] to the inner formatter.
macro_rules! layout {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $name<W: ?Sized + Write>(&mut self, w: &mut W $(, $arg: $ty)*) -> io::Result<()> {
            self.0.$name(w $(, $arg)*)
        }
    )*};
}

impl<F: Formatter> Formatter for Escaping<F> {
    layout! {
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        end_object_key();
        begin_object_value();
        end_object_value();
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        let mut rest = fragment;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| needs_escape(c)) {
            w.write_all(&rest.as_bytes()[..at])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        w.write_all(rest.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(v: &serde_json::Value, pretty: bool) -> String {
        let mut out = Vec::new();
        if pretty {
            write_json(&mut out, v, PrettyFormatter::new()).unwrap();
        } else {
            write_json(&mut out, v, CompactFormatter).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_escapes_what_serde_json_leaves_and_keeps_its_layout() {
        let v = serde_json::json!({"k\u{7f}": ["a\u{1b}[2J\u{7f}\u{9b}\u{202e}z", 1], "n": null});
        let compact = json(&v, false);
        assert_eq!(compact, r#"{"k\u007f":["a\u001b[2J\u007f\u009b\u202ez",1],"n":null}"#);
        assert_eq!(serde_json::from_str::<serde_json::Value>(&compact).unwrap(), v, "the same value");
        let plain = serde_json::to_string_pretty(&v).unwrap();
        let escaped = [('\u{7f}', "\\u007f"), ('\u{9b}', "\\u009b"), ('\u{202e}', "\\u202e")].iter().fold(plain, |s, (c, e)| s.replace(*c, e));
        assert_eq!(json(&v, true), escaped, "pretty, as serde_json lays it out");
    }
}
