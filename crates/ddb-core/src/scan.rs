//! Reading the whole table: every page, optionally as a parallel scan, as a stream so that memory
//! stays flat whatever the table's size.

use crate::error::{Error, Result};
use crate::records::Item;
use crate::Ddb;
use futures::{Stream, StreamExt};

/// Every item of the table, read by `segments` parallel scans (1 for a plain scan). Items of
/// different segments interleave; each item comes exactly once.
pub fn items(ddb: &Ddb, segments: u32) -> impl Stream<Item = Result<Item>> + '_ {
    let segments = segments.max(1);
    futures::stream::select_all((0..segments).map(move |seg| segment(ddb, seg, segments).boxed()))
}

/// The items of segment `seg` of a parallel scan of `total` segments (the whole table when
/// `total` is 1), all pages.
pub fn segment(ddb: &Ddb, seg: u32, total: u32) -> impl Stream<Item = Result<Item>> + '_ {
    let mut req = ddb.client.scan().table_name(&ddb.table);
    if total > 1 {
        req = req.segment(seg as i32).total_segments(total as i32);
    }
    let pages = req.into_paginator().items().send();
    crate::stream_of(pages).map(move |r| r.map_err(|e| Error::from_sdk(e, &ddb.ctx("Scan"))))
}
