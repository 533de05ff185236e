//! `switchboard replay --bench EVENTS`: a generated log of EVENTS events
//! written to an empty database, then timed beside plain scans of the same
//! table: the full replay, `replay --check`, the pool at a moment (cold,
//! as the first `events at` after a start) and filtered event queries.

use crate::replay_log;
use sea_orm::{ConnectionTrait, Statement};
use std::time::{Duration, Instant};
use switchboard_app::admin::History;
use switchboard_app::ports::prelude::*;
use switchboard_app::records::EventFilter;
use switchboard_store::{RebuildMode, Store};

/// Prints a line on stdout (a closed pipe ends the process quietly).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(err) = writeln!(std::io::stdout(), $($arg)*) {
            if err.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

fn secs(elapsed: Duration) -> String {
    format!("{:.2} s", elapsed.as_secs_f64())
}

fn millis(elapsed: Duration) -> String {
    format!("{:.1} ms", elapsed.as_secs_f64() * 1000.0)
}

async fn timed<T, F: std::future::Future<Output = anyhow::Result<T>>>(
    work: F,
) -> anyhow::Result<(T, Duration)> {
    let started = Instant::now();
    let value = work.await?;
    Ok((value, started.elapsed()))
}

/// Times one SQL statement (a baseline).
async fn scan(store: &Store, sql: &str) -> anyhow::Result<Duration> {
    let connection = store.connection();
    let backend = connection.get_database_backend();
    let ((), elapsed) = timed(async {
        connection
            .query_one_raw(Statement::from_string(backend, sql.to_owned()))
            .await?;
        Ok(())
    })
    .await?;
    Ok(elapsed)
}

/// Runs the benchmark on `store`, whose log must be empty.
pub async fn run(store: &Store, events: usize) -> anyhow::Result<()> {
    let db: &dyn switchboard_app::ports::Database = store;
    anyhow::ensure!(
        store.event_count().await? == 0
            && db.servers().await?.is_empty()
            && !store.has_archives().await?,
        "replay --bench writes a generated log: point it at an empty scratch database \
         (SWITCHBOARD_DATABASE_URL), never at a pool's"
    );
    let database = if store.is_postgres() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let (log, generated) = timed(async { Ok(replay_log::generate(events, 1)) }).await?;
    let busy_stream = log
        .iter()
        .rev()
        .find(|stored| stored.event.type_name() == "MeetingCreated")
        .map(|stored| stored.stream.to_string())
        .unwrap_or_default();
    let ((), written) = timed(async { Ok(store.write_log(&log).await?) }).await?;
    drop(log);
    if store.is_postgres() {
        store
            .connection()
            .execute_unprepared("VACUUM (ANALYZE) events")
            .await?;
    } else {
        store.connection().execute_unprepared("ANALYZE").await?;
    }
    out!("# {database}, {events} events");
    out!("");
    out!(
        "generated in {}, written in {} (not part of the figures)",
        secs(generated),
        secs(written)
    );
    out!("");
    out!("| what | time | vs `SELECT count(*)` | vs full scan |");
    out!("|---|---|---|---|");
    let count = scan(store, "SELECT COUNT(*) FROM events").await?;
    let full = scan(
        store,
        "SELECT SUM(LENGTH(payload) + LENGTH(metadata)) FROM events",
    )
    .await?;
    let row = |what: &str, elapsed: Duration, shown: String| {
        out!(
            "| {what} | {shown} | {:.1}x | {:.1}x |",
            elapsed.as_secs_f64() / count.as_secs_f64(),
            elapsed.as_secs_f64() / full.as_secs_f64()
        );
    };
    row(
        "`SELECT count(*) FROM events` (baseline)",
        count,
        millis(count),
    );
    row(
        "`SELECT sum(length(payload)+length(metadata))` (full scan, baseline)",
        full,
        millis(full),
    );
    // Where the old replay's time went: one event at a time through the
    // append path, in one transaction, or committing every chunk.
    let sample = i64::try_from(events.min(150_000)).unwrap_or(0);
    let chunk = (sample / 5).max(1);
    for (label, one_transaction) in [
        ("one transaction", true),
        ("a transaction per chunk", false),
    ] {
        let times = store
            .bench_apply_one_by_one(sample, chunk, one_transaction)
            .await?;
        let total: Duration = times.iter().sum();
        let chunks = times
            .iter()
            .map(|time| format!("{:.2}", time.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" / ");
        row(
            &format!(
                "the old replay's way (each event through the append path), first {sample} events, {label}; seconds per {chunk} events: {chunks}"
            ),
            total,
            secs(total),
        );
    }
    let (first, replayed) =
        timed(async { Ok(store.rebuild(RebuildMode::Swap, &mut |_| {}).await?) }).await?;
    row(
        &format!(
            "`switchboard replay` (first; {} rows written; read {}, write {}, swap {})",
            first.rows,
            secs(first.reading),
            secs(first.writing),
            secs(first.swapping)
        ),
        replayed,
        secs(replayed),
    );
    let (second, again) =
        timed(async { Ok(store.rebuild(RebuildMode::Swap, &mut |_| {}).await?) }).await?;
    row(
        &format!(
            "`switchboard replay` (again, over full tables; swap {})",
            secs(second.swapping)
        ),
        again,
        secs(again),
    );
    let (check, checked) =
        timed(async { Ok(store.rebuild(RebuildMode::Check, &mut |_| {}).await?) }).await?;
    anyhow::ensure!(
        check.differences.is_empty(),
        "replay --check found differences right after a replay: {:?}",
        check.differences
    );
    row("`switchboard replay --check`", checked, secs(checked));
    let end_ms = replay_log::START_MS + events as i64 * replay_log::STEP_MS;
    let now = chrono::Utc::now();
    let admin_history = History::default();
    let ((), snapshotted) =
        timed(async { Ok(admin_history.keep_snapshots(db, now).await?) }).await?;
    row(
        "pool snapshots for `events at` kept over the whole log (once, after an upgrade)",
        snapshotted,
        secs(snapshotted),
    );
    for (label, fraction) in [("middle", 2), ("end", 1)] {
        let at = chrono::DateTime::from_timestamp_millis(
            replay_log::START_MS + (end_ms - replay_log::START_MS) / fraction,
        )
        .unwrap_or_default();
        let history = History::default();
        let (cluster, elapsed) = timed(async { Ok(history.at(db, at, now).await?) }).await?;
        row(
            &format!(
                "`events at` the log's {label}, first call ({} meetings running)",
                cluster.meetings.iter().filter(|m| m.running).count()
            ),
            elapsed,
            millis(elapsed),
        );
    }
    let late = chrono::DateTime::from_timestamp_millis(end_ms - 3_600_000).unwrap_or_default();
    for (label, filter) in [
        (
            "`events list --type ServerWentOffline --from <last hour>`",
            EventFilter {
                event_type: Some("ServerWentOffline".into()),
                from: Some(late),
                limit: 100,
                ..EventFilter::default()
            },
        ),
        (
            "`events list --actor operator-0 --from <last hour>`",
            EventFilter {
                actor: Some("operator-0".into()),
                from: Some(late),
                limit: 100,
                ..EventFilter::default()
            },
        ),
        (
            "`events list --stream <a room's meeting>`",
            EventFilter {
                stream: Some(busy_stream.clone()),
                limit: 100,
                ..EventFilter::default()
            },
        ),
    ] {
        let (page, elapsed) = timed(async { Ok(store.query_events(&filter).await?) }).await?;
        row(
            &format!("{label} ({} events)", page.len()),
            elapsed,
            millis(elapsed),
        );
    }
    Ok(())
}
