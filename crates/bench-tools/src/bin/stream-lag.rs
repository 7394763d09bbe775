//! `stream-lag`: pattern E's lag, for bench/stream. Writes messages into G seeded conversations
//! (one writer per conversation, one message at a time) and measures, for each, the time from
//! the end of its PutItem to both group rows carrying it; prints p50, p99 and max.

use clap::Parser;
use ddb_core::cli::{self, DdbArgs, PgArgs};
use ddb_core::records::format_ts;
use ddb_core::{patterns, seed};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Measure the lag of pattern E (a stream worker or Lambda must be running against the table).
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    ddb: DdbArgs,
    #[command(flatten)]
    pg: PgArgs,
    /// Messages in all
    #[arg(long, default_value_t = 1000)]
    messages: u64,
    /// Seeded conversations to spread them over (seed --groups G first)
    #[arg(long, default_value_t = 10)]
    groups: u64,
    /// Give up on a message after this many seconds
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::main(4, async move {
        let ddb = args.ddb.connect(false).await?;
        let users = args.pg.users(&["yaya2devops", "bayko"]).await?;
        let per_group = args.messages / args.groups;
        let lags = futures::future::try_join_all((0..args.groups).map(|k| {
            let (ddb, users) = (&ddb, &users);
            async move {
                let group = if args.groups == 1 { seed::COURSE_GROUP } else { seed::group_uuid(k) };
                let mut lags = Vec::new();
                for i in 0..per_group {
                    let m = patterns::create_message(ddb, group, &users[(i % 2) as usize], &format!("lag probe {k}/{i}")).await?;
                    let sk = format_ts(m.created_at);
                    let start = Instant::now();
                    loop {
                        let rows = patterns::group_rows(ddb, group).await?;
                        if !rows.is_empty() && rows.iter().all(|r| format_ts(r.last_message_at) >= sk) {
                            break;
                        }
                        anyhow::ensure!(
                            start.elapsed() < Duration::from_secs(args.timeout),
                            "group rows of {group} did not follow within {} s: is the stream worker running?",
                            args.timeout
                        );
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    lags.push(start.elapsed());
                }
                anyhow::Ok(lags)
            }
        }))
        .await?;
        let mut all: Vec<Duration> = lags.into_iter().flatten().collect();
        all.sort();
        let pct = |p: f64| all[((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1].as_secs_f64() * 1000.0;
        println!(
            "{} messages over {} conversations: lag p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            all.len(),
            args.groups,
            pct(0.5),
            pct(0.99),
            pct(1.0)
        );
        Ok(())
    })
}
