//! Importing items, one JSON object a line, as `bin/ddb/scan` writes them: a backup restored, a
//! table copied from one endpoint to another.
//!
//! Two formats, told from the first item line's `pk` (or given): DynamoDB's typed JSON
//! (`--output dynamodb-json`, lossless: S, N, B, BOOL, NULL, SS, NS, BS, M, L, nested) and plain
//! JSON (`--output json`), which is lossy as scan writes it: a set comes back as a list, a binary
//! as its base64 text, a number that JSON cannot hold exactly (`1.50`, 39 digits) as a string.
//!
//! All or nothing, as a restore should be: [`check`] reads the whole source first and reports
//! every line that is not an item (up to [`MAX_REPORTED`], each as `FILE:LINE: what`); [`run`]
//! writes only a source that checked clean. Standard input is spooled first
//! ([`Source::spool`]), so that the same rule holds for a pipe. Writes are puts (idempotent): a
//! run that fails part of the way is finished by running it again.
//!
//! What is written how:
//! - message rows and every other item: BatchWriteItem through [`crate::write`], 25 a call
//!   (deduplicated by key within a call: the later line wins, as it would one put after the other);
//! - group rows (`GRP#`): through their one home, [`crate::conversation::restore`] (a member
//!   that has a row of the conversation keeps it); then every conversation the source touched
//!   is settled ([`crate::conversation::settle`]): its rows onto its newest message, duplicates
//!   gone, whatever order the stream worker or the Lambda saw the messages in;
//! - lock items (`LOCK#`): skipped and counted (a restored lease would hold off the seed).
//!
//! Memory holds the batches in flight and the set of conversations touched, never the items.

mod parse;
mod run;
mod source;

pub use run::{run, ImportReport};
pub use source::{Lines, Source, MAX_LINE_BYTES, MAX_SPOOL_BYTES};

use crate::error::{input, Error, Result};
use crate::item_json::ItemFormat;
use crate::lock::LOCK_PREFIX;
use crate::progress::Progress;
use crate::records::{Item, MessageGroupRow, MessageRow};
use crate::table::{GRP_PREFIX, MSG_PREFIX, PK};
use std::collections::BTreeSet;
use uuid::Uuid;

/// How many bad lines a check reports (it counts them all).
pub const MAX_REPORTED: usize = 20;

/// What one item line is to the import.
#[derive(Debug)]
pub(crate) enum Row {
    /// Written by BatchWriteItem; a message row names its conversation.
    Item(Item, Option<Uuid>),
    /// A group row, restored through the conversations' home.
    Group(MessageGroupRow),
    /// The seed's lease: skipped.
    Lock,
}

/// Sorts an item by its partition key: rows of the data model must read as such.
pub(crate) fn classify(item: Item) -> std::result::Result<Row, String> {
    let pk = item.get(PK).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("");
    if pk.starts_with(LOCK_PREFIX) {
        Ok(Row::Lock)
    } else if pk.starts_with(MSG_PREFIX) {
        let row = MessageRow::from_item(&item).map_err(|e| format!("a message row that pattern A could not read: {e}"))?;
        Ok(Row::Item(item, Some(row.message_group_uuid)))
    } else if pk.starts_with(GRP_PREFIX) {
        let row = MessageGroupRow::from_item(&item).map_err(|e| format!("a group row that pattern B could not read: {e}"))?;
        if row.to_item() != item {
            return Err(format!(
                "a group row with attributes other than the data model's, or its time spelled otherwise ({}); group rows are restored as rows of the data model",
                row.key()
            ));
        }
        Ok(Row::Group(row))
    } else {
        Ok(Row::Item(item, None))
    }
}

/// True for a line that holds nothing (skipped).
pub(crate) fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// The line's row in `format`, or what is wrong with it (saying so when it is in the other format).
pub(crate) fn read_line(line: &[u8], format: ItemFormat) -> std::result::Result<Row, String> {
    match parse::item(line, format) {
        Ok(item) => classify(item),
        Err(e) => match parse::detect(line) {
            Ok(other) if other != format => Err(format!(
                "the line is {}, and the import reads {} (as --format or the file's first item says): {e}",
                format_name(other),
                format_name(format)
            )),
            _ => Err(e),
        },
    }
}

fn format_name(f: ItemFormat) -> &'static str {
    match f {
        ItemFormat::Json => "plain JSON (--format json)",
        ItemFormat::DynamodbJson => "DynamoDB JSON (--format dynamodb-json)",
    }
}

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct Checked {
    /// The source's name in messages (`-` for standard input).
    pub name: String,
    /// The lines' format.
    pub format: ItemFormat,
    /// Items for BatchWriteItem (messages and any other item).
    pub items: u64,
    /// Of them, message rows.
    pub messages: u64,
    /// Group rows.
    pub group_rows: u64,
    /// Lock items, skipped.
    pub locks: u64,
    /// The conversations of the messages and group rows.
    pub conversations: BTreeSet<Uuid>,
    /// The first [`MAX_REPORTED`] bad lines, each `FILE:LINE: what`.
    pub bad: Vec<String>,
    /// How many lines are bad.
    pub bad_lines: u64,
}

impl Checked {
    /// Why nothing may be written: `None` when every line is an item.
    pub fn refusal(&self) -> Option<Error> {
        (self.bad_lines > 0).then(|| {
            let shown = if self.bad_lines as usize > self.bad.len() { format!(" (the first {} shown)", self.bad.len()) } else { String::new() };
            input(format!("{} bad line(s) in {}{shown}; nothing was written: mend them and import again", self.bad_lines, self.name))
        })
    }

    fn bad_line(&mut self, number: u64, what: String) {
        self.bad_lines += 1;
        if self.bad.len() < MAX_REPORTED {
            self.bad.push(format!("{}:{number}: {what}", self.name));
        }
    }

    fn count(&mut self, row: Row) {
        match row {
            Row::Item(_, Some(g)) => {
                self.items += 1;
                self.messages += 1;
                self.conversations.insert(g);
            }
            Row::Item(_, None) => self.items += 1,
            Row::Group(r) => {
                self.group_rows += 1;
                self.conversations.insert(r.message_group_uuid);
            }
            Row::Lock => self.locks += 1,
        }
    }
}

/// Reads every line of `source` and sorts it (see [`Checked`]); `format` is told from the first
/// item line when not given. Sends nothing. An empty source is an error.
pub fn check(source: &Source, format: Option<ItemFormat>, progress: &dyn Progress) -> Result<Checked> {
    let mut checked = Checked { name: source.name(), ..Checked::default() };
    let mut format = format;
    let mut lines = source.lines()?;
    progress.phase(&format!("checking {}", checked.name), 0);
    let mut any = false;
    while let Some((n, line)) = lines.next_line()? {
        progress.inc(1);
        let row = line.and_then(|line| {
            if is_blank(&line) {
                return Ok(None);
            }
            let f = match format {
                Some(f) => f,
                None => *format.insert(parse::detect(&line)?),
            };
            read_line(&line, f).map(Some)
        });
        match row {
            Ok(Some(row)) => {
                any = true;
                checked.count(row);
            }
            Ok(None) => {}
            Err(what) => checked.bad_line(n, what),
        }
    }
    if !any && checked.bad_lines == 0 {
        return Err(input(format!("{} holds no item; nothing to import", checked.name)));
    }
    checked.format = format.unwrap_or_default();
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(text: &str) -> Result<Checked> {
        let src = Source::spool(&mut text.as_bytes(), &std::env::temp_dir())?;
        check(&src, None, &())
    }

    #[test]
    fn a_check_sorts_lines_and_names_every_bad_one() {
        let g = Uuid::new_v4();
        let text = format!(
            "{}\n\n{{\"pk\":\"LOCK#seed\",\"sk\":\"LOCK#seed\"}}\n{{\"pk\":\"other\",\"sk\":\"x\",\"n\":1}}\n",
            serde_json::json!({"pk": format!("MSG#{g}"), "sk": "2026-01-01T00:00:00.000000+00:00", "message_uuid": g.to_string(),
                "message": "hi", "user_uuid": g.to_string(), "user_display_name": "A", "user_handle": "a"})
        );
        let c = checked(&text).unwrap();
        assert_eq!((c.items, c.messages, c.locks, c.group_rows, c.bad_lines), (2, 1, 1, 0, 0));
        assert_eq!(c.conversations.into_iter().collect::<Vec<_>>(), [g]);
        let c =
            checked("{\"pk\":\"a\",\"sk\":\"b\"}\nnot json\n{\"pk\":{\"S\":\"a\"},\"sk\":{\"S\":\"b\"}}\n{\"pk\":\"MSG#x\",\"sk\":\"b\"}\n").unwrap();
        assert_eq!(c.bad_lines, 3);
        assert!(c.bad[0].starts_with("-:2: not JSON"), "{:?}", c.bad);
        assert!(c.bad[1].starts_with("-:3: the line is DynamoDB JSON (--format dynamodb-json), and the import reads plain JSON"), "{:?}", c.bad);
        assert!(c.bad[2].contains("-:4: a message row that pattern A could not read"), "{:?}", c.bad);
        assert!(c.refusal().unwrap().to_string().contains("3 bad line(s) in -; nothing was written"));
        assert!(checked("\n\n").unwrap_err().to_string().contains("holds no item"));
    }
}
