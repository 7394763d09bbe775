//! Where an import reads its lines: a file, read twice (the check, then the writes), or standard
//! input spooled first into a temporary file that nothing else can see, of bounded size.

use crate::error::{input, Error, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The longest line read: an item is at most 400 KB, which typed JSON with every character
/// escaped (`\u0001`) may spell in six times as many bytes.
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// How much of standard input is spooled before the import refuses it.
pub const MAX_SPOOL_BYTES: u64 = 16 << 30;

/// The lines to import.
#[derive(Debug)]
pub enum Source {
    /// A file, by its path.
    File(PathBuf),
    /// Standard input, spooled into an unlinked temporary file.
    Spooled(File),
}

impl Source {
    /// The name of the source in messages: the path, or `-` for standard input.
    pub fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Spooled(_) => "-".to_string(),
        }
    }

    /// The source at `path`: a regular file is read in place (twice); a pipe or FIFO
    /// (`<(...)`, `/dev/stdin`), which can be read only once, is spooled as standard input is;
    /// a directory or a device (`/dev/zero`, which never ends) is refused.
    pub fn open(path: &Path, spool_dir: &Path) -> Result<Source> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let kind = meta.file_type();
        if kind.is_file() {
            return Ok(Source::File(path.to_path_buf()));
        }
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() || kind.is_socket() {
            let mut f = File::open(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
            return Source::spool(&mut f, spool_dir);
        }
        let what = if kind.is_dir() { "a directory" } else { "a device" };
        Err(input(format!("{} is {what}, not a file of items: give the file that scan wrote, or - for standard input", path.display())))
    }

    /// Copies `reader` (standard input) into a temporary file of [`MAX_SPOOL_BYTES`] at most, in
    /// `dir` (the system's temporary directory), unlinked at once: nothing is left behind
    /// however the run ends.
    pub fn spool(reader: &mut dyn Read, dir: &Path) -> Result<Source> {
        let path = dir.join(format!("cruddur-import-{}-{:016x}.jsonl", std::process::id(), fastrand::u64(..)));
        let what = || format!("cannot spool standard input into {}", path.display());
        let mut file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).map_err(|e| Error::io(what(), e))?;
        let _ = std::fs::remove_file(&path);
        let copied = std::io::copy(&mut reader.take(MAX_SPOOL_BYTES + 1), &mut file).map_err(|e| Error::io(what(), e))?;
        if copied > MAX_SPOOL_BYTES {
            return Err(input(format!(
                "standard input holds more than {} GiB: save it to a file and import the file (a file is checked in place)",
                MAX_SPOOL_BYTES >> 30
            )));
        }
        file.flush().map_err(|e| Error::io(what(), e))?;
        Ok(Source::Spooled(file))
    }

    /// The lines from the start.
    pub fn lines(&self) -> Result<Lines> {
        let file = match self {
            Source::File(p) => File::open(p).map_err(|e| Error::io(format!("cannot read {}", p.display()), e))?,
            Source::Spooled(f) => {
                let mut f = f.try_clone().map_err(|e| Error::io("cannot read the spooled standard input", e))?;
                f.seek(SeekFrom::Start(0)).map_err(|e| Error::io("cannot read the spooled standard input", e))?;
                f
            }
        };
        Ok(Lines { reader: BufReader::with_capacity(1 << 16, file), number: 0, name: self.name(), buf: Vec::new() })
    }
}

/// A line of the source: its number (from 1) and its bytes without the line ending, or what
/// kept it from being read.
pub type Line = (u64, std::result::Result<Vec<u8>, String>);

/// The lines of a [`Source`], each at most [`MAX_LINE_BYTES`].
pub struct Lines {
    reader: BufReader<File>,
    number: u64,
    name: String,
    buf: Vec<u8>,
}

impl Lines {
    /// The next line; `Err` only when the source itself cannot be read.
    pub fn next_line(&mut self) -> Result<Option<Line>> {
        self.buf.clear();
        let limit = MAX_LINE_BYTES as u64 + 1;
        let read = (&mut self.reader).take(limit).read_until(b'\n', &mut self.buf);
        let n = read.map_err(|e| self.io(e))?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        let ended = self.buf.ends_with(b"\n");
        if self.buf.len() - usize::from(ended) > MAX_LINE_BYTES {
            // Skips the rest of the line, so that the lines after it are still checked.
            let mut ended = ended;
            while !ended {
                self.buf.clear();
                let read = (&mut self.reader).take(limit).read_until(b'\n', &mut self.buf);
                if read.map_err(|e| self.io(e))? == 0 {
                    break;
                }
                ended = self.buf.ends_with(b"\n");
            }
            return Ok(Some((self.number, Err(format!("the line is longer than {} MiB; no item of 400 KB is", MAX_LINE_BYTES >> 20)))));
        }
        while self.buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            self.buf.pop();
        }
        Ok(Some((self.number, Ok(std::mem::take(&mut self.buf)))))
    }

    fn io(&self, e: std::io::Error) -> Error {
        Error::io(format!("cannot read {} after line {}", self.name, self.number), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_input_is_spooled_unlinked_and_read_twice() {
        let dir = std::env::temp_dir();
        let src = Source::spool(&mut &b"one\r\ntwo\n\nthree"[..], &dir).unwrap();
        for _ in 0..2 {
            let mut lines = src.lines().unwrap();
            let mut got = Vec::new();
            while let Some((n, l)) = lines.next_line().unwrap() {
                got.push((n, String::from_utf8(l.unwrap()).unwrap()));
            }
            assert_eq!(got, [(1, "one".into()), (2, "two".into()), (3, String::new()), (4, "three".into())]);
        }
        assert_eq!(src.name(), "-");
    }
}
