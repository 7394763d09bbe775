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
    let per_segment = (0..segments).map(move |seg| {
        let mut req = ddb.client.scan().table_name(&ddb.table);
        if segments > 1 {
            req = req.segment(seg as i32).total_segments(segments as i32);
        }
        let pages = req.into_paginator().items().send();
        crate::stream_of(pages).map(move |r| r.map_err(|e| Error::from_sdk(e, &ddb.ctx("Scan")))).boxed()
    });
    futures::stream::select_all(per_segment)
}
