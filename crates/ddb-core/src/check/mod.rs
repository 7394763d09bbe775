//! `check`: the table's own rules, checked over the whole table, and the mechanical ones
//! repaired.
//!
//! The rules (each a [`Kind`] of violation):
//!
//! - per conversation: one group row per member ([`Kind::DuplicateGroupRow`]), two members
//!   ([`Kind::MissingMember`], [`Kind::ExtraMember`]); each row on the newest message that exists,
//!   its time and text, or ahead of every message with the seed's filler text
//!   ([`Kind::GroupRowBehind`], the rule of [`crate::records::MessageGroupRow::follows`]); the two
//!   rows naming each other, with the handle and display name of the newest message's sender
//!   ([`Kind::MemberMismatch`]), and Postgres `users` when given ([`Kind::UserMismatch`]);
//! - no messages without group rows ([`Kind::OrphanMessage`]), no group rows without messages
//!   ([`Kind::GroupWithoutMessages`]);
//! - every item: `MSG#`/`GRP#` and a uuid, `sk` in the one timestamp format ([`Kind::BadKey`]),
//!   its attributes present as strings ([`Kind::BadAttribute`]), within the item size limit
//!   ([`Kind::ItemTooLarge`]); lock items held by a live holder ([`Kind::LockExpired`],
//!   [`Kind::LockUnreadable`], [`Kind::LockHolderGone`]); nothing else ([`Kind::UnknownItem`]).
//!
//! # Layout
//!
//! - `kind`: [`Kind`] and [`Violation`];
//! - `rules`: pure functions, an item's shape and a conversation's violations;
//! - `run`: the parallel scan folded into per-conversation summaries ([`run()`]);
//! - `summary`: the figures ([`Summary`]);
//! - `repair`: the mechanical repairs ([`repair()`]).

mod kind;
mod repair;
mod rules;
mod run;
mod summary;

pub use kind::{Kind, Violation};
pub use repair::repair;
pub use rules::{classify, conversation_violations, Classified, Conversation, Row};
pub use run::{run, Checked};
pub use summary::{Repaired, Summary};
