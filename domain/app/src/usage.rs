//! Usage per tenant and period, for billing: from the summaries of ended
//! runs (`MeetingUsageSummarized`, in the log) and the tenants' daily peaks
//! of concurrent attendees. A run counts in the period it started in (UTC)
//! once it ended, so a period is final once every run started in it ended.

use crate::StoreError;
use crate::ports::Database;
use crate::records::{RecordingUsage, UsageFilter, UsageRunRecord};
use std::collections::BTreeMap;
use switchboard_domain::ids::TenantId;

/// How figures are grouped in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Period {
    /// One row per UTC day (`2026-12-06`).
    #[default]
    Day,
    /// One row per UTC month (`2026-12`).
    Month,
}

impl Period {
    /// The period a UTC day (`YYYY-MM-DD`) falls in.
    fn of_day(self, day: &str) -> String {
        match self {
            Self::Day => day.to_owned(),
            Self::Month => day.get(..7).unwrap_or(day).to_owned(),
        }
    }
}

/// One tenant's usage in one period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageRow {
    /// The tenant.
    pub tenant: String,
    /// The period (`2026-12-06` or `2026-12`).
    pub period: String,
    /// Runs started in it (and ended).
    pub meetings: u64,
    /// Their running time, seconds.
    pub meeting_seconds: u64,
    /// Their attendees integrated over time, attendee-seconds.
    pub attendee_seconds: u64,
    /// Most attendees at once over the tenant's meetings (from the polls).
    pub peak_concurrent_attendees: u64,
    /// Most attendees of one meeting.
    pub peak_meeting_attendees: u64,
    /// Runs created to be recorded (`record=true`).
    pub recordable_meetings: u64,
    /// Recordings of meetings started in it.
    pub recordings: u64,
    /// Their size, bytes (formats imported before sizes were kept count 0).
    pub recording_bytes: u64,
}

impl UsageRow {
    /// Meeting-minutes.
    pub fn meeting_minutes(&self) -> f64 {
        self.meeting_seconds as f64 / 60.0
    }

    /// Attendee-minutes.
    pub fn attendee_minutes(&self) -> f64 {
        self.attendee_seconds as f64 / 60.0
    }
}

/// The usage rows of the runs and peaks `filter` selects, by tenant and
/// period.
pub async fn usage_report(
    store: &dyn Database,
    filter: &UsageFilter,
    period: Period,
) -> Result<Vec<UsageRow>, StoreError> {
    let runs = store.usage_runs(filter).await?;
    let peaks = store.tenant_peaks(filter).await?;
    let recordings = store.recording_usage(filter).await?;
    Ok(report(&runs, &peaks, &recordings, period))
}

/// Adds up runs and daily peaks into rows (sorted by tenant, period).
pub fn report(
    runs: &[UsageRunRecord],
    peaks: &[(TenantId, String, u64)],
    recordings: &[RecordingUsage],
    period: Period,
) -> Vec<UsageRow> {
    let mut rows: BTreeMap<(String, String), UsageRow> = BTreeMap::new();
    fn row<'a>(
        rows: &'a mut BTreeMap<(String, String), UsageRow>,
        tenant: &TenantId,
        period: String,
    ) -> &'a mut UsageRow {
        rows.entry((tenant.0.clone(), period.clone()))
            .or_insert_with(|| UsageRow {
                tenant: tenant.0.clone(),
                period,
                ..UsageRow::default()
            })
    }
    for run in runs {
        let day = crate::records::day_of(run.usage.started_ms);
        let row = row(&mut rows, &run.tenant, period.of_day(&day));
        let usage = &run.usage;
        row.meetings += 1;
        row.meeting_seconds += usage.duration_seconds();
        row.attendee_seconds += usage.attendee_seconds;
        row.peak_meeting_attendees = row.peak_meeting_attendees.max(usage.peak_attendees);
        row.recordable_meetings += u64::from(usage.recordable);
    }
    for (tenant, day, peak) in peaks {
        let row = row(&mut rows, tenant, period.of_day(day));
        row.peak_concurrent_attendees = row.peak_concurrent_attendees.max(*peak);
    }
    for recording in recordings {
        let day = crate::records::day_of(recording.started_ms);
        let row = row(&mut rows, &recording.tenant, period.of_day(&day));
        row.recordings += 1;
        row.recording_bytes += recording.bytes;
    }
    rows.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock as _;
    use crate::health::{HealthConfig, HealthPoller, HealthPorts};
    use crate::memory::answers;
    use crate::memory::{NoMetrics, ScriptedBackend};
    use crate::ports::EventStore as _;
    use crate::routing::ObservedLoads;
    use crate::testing::{World, given};
    use std::sync::{Arc, Mutex};
    use switchboard_domain::ids::{MeetingId, ServerId, meeting_stream};
    use switchboard_domain::meeting::{EndReason, Meeting, MeetingCommand};
    use switchboard_domain::recording::{
        RecordingDetails, RecordingEvent, RecordingFormat, recording_stream,
    };

    /// What the server lists: (meetingID, attendees, recording).
    type Listing = Vec<(&'static str, u64, bool)>;

    /// 2026-12-01T09:00:00Z.
    const NINE: i64 = 1_796_115_600_000;
    const MINUTE: i64 = 60_000;

    async fn start(world: &World, tenant: &str, id: &str, server: ServerId) {
        let tenant = TenantId(tenant.into());
        let now = world.clock.now_ms();
        world
            .tenant_meeting(&tenant, id, &format!("{id}-run"), server, now)
            .await;
    }

    async fn end(world: &World, tenant: &str, id: &str) {
        let tenant = TenantId(tenant.into());
        let meeting_id = MeetingId::parse(id).unwrap();
        let command = MeetingCommand::RecordEnded {
            reason: EndReason::EndCalled,
            at_ms: world.clock.now_ms(),
            only_run: None,
        };
        world
            .executor
            .execute::<Meeting>(&meeting_stream(&tenant, &meeting_id), &command, &given())
            .await
            .unwrap();
    }

    /// Moves the clock to `minute` past nine.
    fn at(world: &World, minute: i64) {
        let target = NINE + minute * MINUTE;
        world.clock.advance_ms(target - world.clock.now_ms());
    }

    #[tokio::test]
    async fn a_scripted_day_adds_up_to_the_hand_computed_figures() {
        let world = World::new();
        at(&world, 0);
        let server = world.server("a").await;
        let listed: Arc<Mutex<Listing>> = Arc::default();
        let shown = listed.clone();
        let backend = Arc::new(ScriptedBackend::new(move |_, call, _| {
            assert_eq!(call, "getMeetings");
            let elements: Vec<String> = shown
                .lock()
                .unwrap()
                .iter()
                .map(|(id, attendees, recording)| {
                    answers::meeting_element(id, &format!("{id}-run"), NINE, *attendees).replace(
                        "<running>",
                        &format!("<recording>{recording}</recording><running>"),
                    )
                })
                .collect();
            answers::meetings(&elements)
        }));
        let ports = HealthPorts {
            store: world.store.clone(),
            executor: world.executor.clone(),
            backends: world.backends(&backend),
            scraper: Arc::new(NoMetrics),
            clock: world.shared_clock(),
        };
        let mut poller =
            HealthPoller::new(ports, HealthConfig::default(), ObservedLoads::default());
        start(&world, "school", "lecture", server).await;
        start(&world, "college", "seminar", server).await;
        // Polls every ten minutes, and one a minute before each end (the
        // last count holds at most two minutes after its poll).
        let script: [(i64, Listing); 7] = [
            (1, vec![("lecture", 10, false), ("seminar", 4, false)]),
            (11, vec![("lecture", 20, true), ("seminar", 4, false)]),
            (21, vec![("lecture", 5, true), ("seminar", 6, false)]),
            (29, vec![("lecture", 5, true), ("seminar", 6, false)]),
            (31, vec![("seminar", 6, false)]),
            (39, vec![("seminar", 6, false)]),
            (41, vec![]),
        ];
        for (minute, meetings) in script {
            if minute == 31 {
                at(&world, 30);
                end(&world, "school", "lecture").await;
            }
            if minute == 41 {
                at(&world, 40);
                end(&world, "college", "seminar").await;
            }
            at(&world, minute);
            *listed.lock().unwrap() = meetings;
            poller.poll_once().await.unwrap();
        }
        // The lecture's recording: two formats, sized at import.
        let record_id = "lecture-run-1796115600000";
        let format = |name: &str, bytes: u64| RecordingFormat {
            format: name.into(),
            url: format!("https://bbb/playback/{name}/{record_id}"),
            processing_time_ms: 0,
            length_ms: 30 * 60_000,
            bytes,
            images: vec![],
        };
        let imported = RecordingEvent::RecordingImported {
            record_id: record_id.into(),
            details: RecordingDetails {
                tenant: TenantId("school".into()),
                meeting_id: "lecture".into(),
                internal_meeting_id: "lecture-run".into(),
                name: "Lecture".into(),
                is_breakout: false,
                published: true,
                start_time_ms: NINE,
                end_time_ms: NINE + 30 * MINUTE,
                participants: 20,
                metadata: Default::default(),
                breakout: None,
                breakout_rooms: Vec::new(),
            },
            formats: vec![
                format("presentation", 1_000_000),
                format("video", 250_000_000),
            ],
        };
        world
            .store
            .append(
                &recording_stream(record_id),
                0,
                &[switchboard_domain::events::DomainEvent::Recording(imported)],
                &given(),
            )
            .await
            .unwrap();
        let day = UsageFilter::default();
        let rows = usage_report(world.store.as_ref(), &day, Period::Day)
            .await
            .unwrap();
        let expected = vec![
            UsageRow {
                tenant: "college".into(),
                period: "2026-12-01".into(),
                meetings: 1,
                // 40 minutes; 4 x 10 + 4 x 10 + 6 x 19 attendee-minutes.
                meeting_seconds: 40 * 60,
                attendee_seconds: 194 * 60,
                peak_concurrent_attendees: 6,
                peak_meeting_attendees: 6,
                recordable_meetings: 0,
                recordings: 0,
                recording_bytes: 0,
            },
            UsageRow {
                tenant: "school".into(),
                period: "2026-12-01".into(),
                meetings: 1,
                // 30 minutes; 10 x 10 + 20 x 10 + 5 x 9 attendee-minutes.
                meeting_seconds: 30 * 60,
                attendee_seconds: 345 * 60,
                peak_concurrent_attendees: 20,
                peak_meeting_attendees: 20,
                recordable_meetings: 1,
                recordings: 1,
                recording_bytes: 251_000_000,
            },
        ];
        assert_eq!(rows, expected);
        assert_eq!(rows[1].attendee_minutes(), 345.0);
        let months = usage_report(world.store.as_ref(), &day, Period::Month)
            .await
            .unwrap();
        assert_eq!(months[0].period, "2026-12");
        // A tenant's filter, and a period outside the day, select as told.
        let school = UsageFilter {
            tenant: Some(TenantId("school".into())),
            ..UsageFilter::default()
        };
        let only = usage_report(world.store.as_ref(), &school, Period::Day)
            .await
            .unwrap();
        assert_eq!(only, expected[1..]);
        let next_day = UsageFilter {
            from_ms: Some(NINE + 24 * 60 * MINUTE),
            ..UsageFilter::default()
        };
        assert!(
            usage_report(world.store.as_ref(), &next_day, Period::Day)
                .await
                .unwrap()
                .is_empty()
        );
        // Closed: more cycles change nothing, and each run is summarized once.
        at(&world, 60);
        poller.poll_once().await.unwrap();
        assert_eq!(
            usage_report(world.store.as_ref(), &day, Period::Day)
                .await
                .unwrap(),
            expected
        );
        let summaries = world
            .store
            .events_after_position(0)
            .into_iter()
            .filter(|event| event.type_name() == "MeetingUsageSummarized")
            .count();
        assert_eq!(summaries, 2);
    }
}
