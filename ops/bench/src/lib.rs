//! Switchboard's recordings benchmark, run by `switchboard recordings bench`:
//! getRecordings latency against a large recordings table and spool import
//! throughput, measured in process on the configured database (use a scratch
//! database and data folder). The figures are printed on stdout
//! (`docs/benchmarks-recordings.md` reports a run).
//!
//! Figures: median and 95th percentile of a plain `SELECT 1` round trip (the
//! baseline the others are compared with), and of getRecordings for one
//! meetingID, for the first page of 100 and for a page of 100 at a random
//! offset (both `limit=100` with `totalElements`), each timed from the query
//! to the finished XML; import throughput in recordings per second from a
//! spool of generated `<recordID>.tar` archives. Before timing, the planner
//! statistics of the recordings tables are refreshed (`VACUUM (ANALYZE)` on
//! PostgreSQL, `ANALYZE` on SQLite), as autovacuum would have done on a
//! table that grew to this size over time.

pub mod imports;
pub mod replay;
mod replay_log;

use futures::StreamExt;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use switchboard_app::ports::prelude::*;
use switchboard_app::recordings::RecordingService;
use switchboard_app::recordings::import::process_spool;
use switchboard_app::records::{RecordingQuery, RecordingRecord};
use switchboard_domain::events::{DomainEvent, EventMetadata};
use switchboard_domain::ids::{MeetingId, TenantId};
use switchboard_domain::recording::{
    RecordingDetails, RecordingEvent, RecordingFormat, recording_stream,
};
use switchboard_recordings::spool::{Spool, SpoolConfig};
use switchboard_store::Store;

/// Prints a line on stdout; a closed pipe (`switchboard recordings bench |
/// head`) ends the process quietly instead of panicking as `println!` would.
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

/// Writes one recording's `<recording>` element of getRecordings (the BBB
/// API's rendering, which the transport owns).
pub type RenderRecording<'a> = &'a (dyn Fn(&mut String, &RecordingRecord) + Sync);

/// Recordings per meetingID in the seeded table.
const PER_MEETING: usize = 5;
const BASE_MS: i64 = 1_700_000_000_000;

fn meeting_of(n: usize) -> String {
    format!("bench-room-{}", n / PER_MEETING)
}

fn seeded(n: usize) -> (String, RecordingEvent) {
    let meeting = meeting_of(n);
    let at = BASE_MS + n as i64;
    let record_id = MeetingId::parse(&meeting)
        .map(|id| id.internal_id(at))
        .unwrap_or_default();
    let event = RecordingEvent::RecordingImported {
        record_id: record_id.clone(),
        details: RecordingDetails {
            tenant: TenantId::default_tenant(),
            meeting_id: meeting,
            internal_meeting_id: record_id.clone(),
            name: format!("Bench {n}"),
            is_breakout: false,
            published: true,
            start_time_ms: at,
            end_time_ms: at + 3_600_000,
            participants: 12,
            metadata: BTreeMap::from([("bbb-origin".to_owned(), "bench".to_owned())]),
            breakout: None,
            breakout_rooms: Vec::new(),
        },
        formats: vec![RecordingFormat {
            format: "presentation".into(),
            url: format!("https://bbb1.example.org/playback/presentation/2.3/{record_id}"),
            processing_time_ms: 1000,
            length_ms: 3_600_000,
            bytes: 64 * 1024,
            images: vec![],
        }],
    };
    (record_id, event)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples.get(index).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs the benchmark and prints the figures: `store` is the database
/// `service` works on, `render` writes getRecordings' `<recording>`
/// elements.
pub async fn run(
    service: &RecordingService,
    store: &Store,
    render: RenderRecording<'_>,
    count: usize,
    imports: usize,
    samples: usize,
) -> anyhow::Result<()> {
    let existing = store.recording_count().await? as usize;
    if existing < count {
        let started = Instant::now();
        let meta = EventMetadata::actor("bench");
        let mut appends = futures::stream::iter(existing..count)
            .map(|n| {
                let meta = meta.clone();
                async move {
                    let (id, event) = seeded(n);
                    store
                        .append(
                            &recording_stream(&id),
                            0,
                            &[DomainEvent::Recording(event)],
                            &meta,
                        )
                        .await
                }
            })
            .buffer_unordered(16);
        while let Some(result) = appends.next().await {
            if let Err(err) = result
                && !matches!(err, switchboard_app::StoreError::Conflict { .. })
            {
                return Err(err.into());
            }
        }
        out!(
            "seeded {} recordings in {:.1} s",
            count - existing,
            started.elapsed().as_secs_f64()
        );
    }
    let started = Instant::now();
    store.analyze_recordings().await?;
    out!(
        "refreshed planner statistics ({}) in {:.1} s",
        if store.is_postgres() {
            "VACUUM (ANALYZE)"
        } else {
            "ANALYZE"
        },
        started.elapsed().as_secs_f64()
    );
    let total = store.recording_count().await?;
    let meetings = (total as usize / PER_MEETING).max(1);
    let mut round_trip = Vec::with_capacity(samples);
    let mut by_meeting = Vec::with_capacity(samples);
    let mut first_page = Vec::with_capacity(samples);
    let mut by_page = Vec::with_capacity(samples);
    for i in 0..samples {
        let started = Instant::now();
        store.select_one().await?;
        round_trip.push(started.elapsed());
        let mut query = RecordingQuery::new(TenantId::default_tenant());
        query.meeting_ids = vec![format!("bench-room-{}", (i * 7919) % meetings)];
        by_meeting.push(timed(store, render, &query).await?);
        let mut query = RecordingQuery::new(TenantId::default_tenant());
        query.limit = Some(100);
        first_page.push(timed(store, render, &query).await?);
        query.offset = ((i * 104_729) % (total as usize).max(1)) as u64;
        by_page.push(timed(store, render, &query).await?);
    }
    let base = ms(percentile(&mut round_trip, 0.5)).max(1e-6);
    out!(
        "getRecordings over {total} recordings ({}, {} build), {samples} queries each:",
        if store.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    );
    for (name, figures) in [
        ("SELECT 1 round trip (baseline)", &mut round_trip),
        ("one meetingID", &mut by_meeting),
        (
            "first page of 100 (offset 0, with totalElements)",
            &mut first_page,
        ),
        (
            "page of 100 at a random offset (with totalElements)",
            &mut by_page,
        ),
    ] {
        let median = ms(percentile(figures, 0.5));
        out!(
            "  {name}: median {median:.2} ms ({:.1}x baseline), p95 {:.2} ms",
            median / base,
            ms(percentile(figures, 0.95)),
        );
    }
    if imports > 0 {
        let spool_dir = service.settings.dir.join(format!(
            ".bench-spool-{}",
            hex::encode(rand::random::<[u8; 4]>())
        ));
        std::fs::create_dir_all(&spool_dir)?;
        let stamp = chrono::Utc::now().timestamp_millis();
        for i in 0..imports {
            let meeting = format!("bench-import-{i}");
            let id = MeetingId::parse(&meeting)?.internal_id(stamp + i as i64);
            std::fs::write(spool_dir.join(format!("{id}.tar")), archive(&id, &meeting)?)?;
        }
        let mut spool = Spool::new(SpoolConfig {
            dir: spool_dir.clone(),
            settle: Duration::ZERO,
            keep_done: false,
        });
        let started = Instant::now();
        let imported = process_spool(service, &mut spool).await;
        let elapsed = started.elapsed().as_secs_f64();
        let _ = std::fs::remove_dir_all(&spool_dir);
        out!(
            "spool import: {imported} archives in {elapsed:.2} s = {:.0} recordings/s",
            imported as f64 / elapsed.max(1e-9)
        );
    }
    Ok(())
}

/// Runs one getRecordings query and writes its `<recording>` elements; the
/// time from the query to the finished XML.
async fn timed(
    store: &Store,
    render: RenderRecording<'_>,
    query: &RecordingQuery,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let page = store.find_recordings(query).await?;
    let mut xml = String::new();
    for recording in &page.recordings {
        render(&mut xml, recording);
    }
    std::hint::black_box(&xml);
    Ok(started.elapsed())
}

/// A one-format archive with a metadata.xml and a small asset.
fn archive(id: &str, meeting: &str) -> anyhow::Result<Vec<u8>> {
    let metadata = format!(
        "<recording><id>{id}</id><state>published</state><published>true</published>\
         <start_time>{start}</start_time><end_time>{start}</end_time><participants>3</participants>\
         <meeting id=\"{id}\" externalId=\"{meeting}\" name=\"Bench\" breakout=\"false\"/>\
         <meta><bbb-origin>bench</bbb-origin></meta><playback><format>presentation</format>\
         <link>https://bbb1.example.org/playback/presentation/2.3/{id}</link>\
         <processing_time>1</processing_time><duration>60000</duration></playback></recording>",
        start = &id[41..]
    );
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in [
        ("metadata.xml", metadata.into_bytes()),
        ("slides.bin", vec![7u8; 64 * 1024]),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(
            &mut header,
            format!("presentation/{id}/{name}"),
            content.as_slice(),
        )?;
    }
    Ok(builder.into_inner()?)
}
