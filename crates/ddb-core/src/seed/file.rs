//! Reading the conversation: a file of `Speaker: message` lines, and the map of speakers to the
//! handles of Postgres `users`.

use crate::error::{code_point, input, quoted, Error, Result};
use crate::records::is_forbidden_char;

/// Who speaks: speaker name as written in the conversation, and the handle in `users`.
#[derive(Debug, Clone, Default)]
pub struct SpeakerMap(Vec<(String, String)>);

impl SpeakerMap {
    /// Parses `NAME=handle` lines (blank lines and `#` comments are skipped).
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let mut map = SpeakerMap::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            map.add(line).map_err(|e| input(format!("{source}:{}: {e}", i + 1)))?;
        }
        Ok(map)
    }

    /// Adds or replaces one `NAME=handle` entry.
    pub fn add(&mut self, entry: &str) -> Result<()> {
        let (name, handle) = entry
            .split_once('=')
            .map(|(n, h)| (n.trim(), h.trim()))
            .filter(|(n, h)| !n.is_empty() && !h.is_empty())
            .ok_or_else(|| Error::Usage(format!("speaker mapping {} is not of the form NAME=handle", quoted(entry))))?;
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_string(), handle.to_string()));
        Ok(())
    }

    /// The handle of speaker `name`.
    pub fn handle(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, h)| h.as_str())
    }

    fn names(&self) -> String {
        self.0.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// One line of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number in the file.
    pub lineno: usize,
    /// The speaker's handle.
    pub handle: String,
    /// The message.
    pub text: String,
}

/// A parsed conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// Where it came from, for messages.
    pub source: String,
    /// Its messages, in order.
    pub lines: Vec<Line>,
}

impl Conversation {
    /// Parses `Speaker: message` lines. Blank lines are skipped; anything else that is not such a
    /// line, an unknown speaker, an empty message or text that is not UTF-8 is an error naming the
    /// file and line.
    pub fn parse(bytes: &[u8], source: &str, speakers: &SpeakerMap) -> Result<Self> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let at = e.valid_up_to();
            let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
            input(format!("{source}:{line}: not UTF-8 text (invalid byte at offset {at}); save the conversation as UTF-8"))
        })?;
        // Windows editors start UTF-8 files with a byte-order mark; it is not part of the text.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = Vec::new();
        for (i, raw) in text.split('\n').enumerate() {
            let lineno = i + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.trim().is_empty() {
                continue;
            }
            let at = |msg: String| input(format!("{source}:{lineno}: {msg}"));
            if let Some(c) = raw.chars().find(|c| is_forbidden_char(*c)) {
                return Err(at(format!("control character {} in the text; is this a binary file?", code_point(c))));
            }
            let (speaker, message) = raw
                .split_once(": ")
                .filter(|(s, _)| !s.trim().is_empty())
                .ok_or_else(|| at(format!("expected `Speaker: message`, got {}", quoted(&preview(raw)))))?;
            let handle = speakers.handle(speaker).ok_or_else(|| {
                at(format!("unknown speaker {}; map it with --speaker '{speaker}=HANDLE' (mapped: {})", quoted(speaker), speakers.names()))
            })?;
            if message.trim().is_empty() {
                return Err(at(format!("empty message from {speaker}")));
            }
            lines.push(Line { lineno, handle: handle.to_string(), text: message.to_string() });
        }
        if lines.is_empty() {
            return Err(input(format!("{source}: the conversation has no lines; expected `Speaker: message` lines")));
        }
        Ok(Conversation { source: source.to_string(), lines })
    }

    /// The two handles that speak, in order of first appearance (the first is "me").
    pub fn participants(&self) -> Result<[String; 2]> {
        let mut seen: Vec<&str> = Vec::new();
        for l in &self.lines {
            if !seen.contains(&l.handle.as_str()) {
                seen.push(&l.handle);
            }
        }
        match seen.as_slice() {
            [a, b] => Ok([a.to_string(), b.to_string()]),
            _ => Err(input(format!("{}: a conversation is between two users; this one has {} ({})", self.source, seen.len(), seen.join(", ")))),
        }
    }
}

fn preview(s: &str) -> String {
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(60).collect::<String>())
    } else {
        s.to_string()
    }
}
