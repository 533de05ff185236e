//! The polled picture: per-server samples written by the health poller and
//! listings of runs Switchboard created since, overwritten in place (samples
//! are not changes, so they never enter the event log).

use crate::entities::{meeting, meeting_listing, server_sample};
use crate::store::{Store, StoreError};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set, TransactionTrait,
};
use switchboard_domain::ids::ServerId;
use switchboard_domain::server_metrics::{MetricsState, ResourceUsage};

/// The PostgreSQL channel on which appends and sample writes are announced,
/// so other instances refresh their views at once.
pub const CHANGE_CHANNEL: &str = "switchboard_changes";

/// What the last polls saw on one server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSample {
    /// The server.
    pub server_id: ServerId,
    /// When the content (not only the poll time) last changed (ms).
    pub changed_at_ms: i64,
    /// When it was last polled (ms).
    pub polled_at_ms: i64,
    /// Consecutive failed polls.
    pub failures: u32,
    /// Consecutive good polls.
    pub successes: u32,
    /// Meetings it runs.
    pub meetings: u64,
    /// Attendees over its meetings.
    pub attendees: u64,
    /// Participants of its largest meeting.
    pub largest_meeting: u64,
    /// Of its meetings, those Switchboard records there.
    pub known_meetings: u64,
    /// Weighted load of its meetings (before the server's multiplier).
    pub load: f64,
    /// The `<meeting>` elements of its last good getMeetings answer, as sent.
    pub meetings_xml: String,
    /// Windowed CPU utilisation, percent (`None`: not known).
    pub cpu_percent: Option<f64>,
    /// Windowed used memory, percent (`None`: not known).
    pub memory_percent: Option<f64>,
    /// Whether its metrics can be used.
    pub metrics_state: MetricsState,
    /// Why the last metrics read failed (never with credentials).
    pub metrics_error: Option<String>,
    /// When its metrics were last read well (ms).
    pub metrics_read_at_ms: Option<i64>,
}

impl ServerSample {
    /// An empty sample of a server never polled.
    pub fn new(server_id: ServerId) -> Self {
        Self {
            server_id,
            changed_at_ms: 0,
            polled_at_ms: 0,
            failures: 0,
            successes: 0,
            meetings: 0,
            attendees: 0,
            largest_meeting: 0,
            known_meetings: 0,
            load: 0.0,
            meetings_xml: String::new(),
            cpu_percent: None,
            memory_percent: None,
            metrics_state: MetricsState::NotConfigured,
            metrics_error: None,
            metrics_read_at_ms: None,
        }
    }

    /// The windowed CPU and memory placement may use.
    pub fn usage(&self) -> ResourceUsage {
        ResourceUsage {
            cpu_percent: self.cpu_percent,
            memory_percent: self.memory_percent,
        }
    }

    /// Whether anything but the poll and read times differs from `other`
    /// (CPU and memory: by at least [`METRICS_STEP_PERCENT`]).
    pub fn content_differs(&self, other: &ServerSample) -> bool {
        self.failures != other.failures
            || self.successes != other.successes
            || self.meetings != other.meetings
            || self.attendees != other.attendees
            || self.largest_meeting != other.largest_meeting
            || self.known_meetings != other.known_meetings
            || self.load.to_bits() != other.load.to_bits()
            || self.meetings_xml != other.meetings_xml
            || differs_by(self.cpu_percent, other.cpu_percent, METRICS_STEP_PERCENT)
            || differs_by(
                self.memory_percent,
                other.memory_percent,
                METRICS_STEP_PERCENT,
            )
            || self.metrics_state != other.metrics_state
            || self.metrics_error != other.metrics_error
    }
}

/// CPU and memory changes smaller than this (percentage points) are not a
/// change of the sample: they would rewrite it, and wake every instance, on
/// every poll.
pub const METRICS_STEP_PERCENT: f64 = 0.5;

fn differs_by(a: Option<f64>, b: Option<f64>, step: f64) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() >= step,
        (None, None) => false,
        _ => true,
    }
}

/// A `<meeting>` element for a run Switchboard created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingListing {
    /// BBB's internal meeting id of the run.
    pub internal_id: String,
    /// Its server.
    pub server_id: ServerId,
    /// When it was created (ms).
    pub created_at_ms: i64,
    /// The `<meeting>` element.
    pub xml: String,
}

fn to_sample(row: server_sample::Model) -> Option<ServerSample> {
    Some(ServerSample {
        server_id: row.server_id.parse().ok()?,
        changed_at_ms: row.changed_at_ms,
        polled_at_ms: row.polled_at_ms,
        failures: row.failures.max(0) as u32,
        successes: row.successes.max(0) as u32,
        meetings: row.meetings.max(0) as u64,
        attendees: row.attendees.max(0) as u64,
        largest_meeting: row.largest_meeting.max(0) as u64,
        known_meetings: row.known_meetings.max(0) as u64,
        load: row.load,
        meetings_xml: row.meetings_xml,
        cpu_percent: row.cpu_percent,
        memory_percent: row.memory_percent,
        metrics_state: MetricsState::parse(&row.metrics_state).unwrap_or_default(),
        metrics_error: row.metrics_error,
        metrics_read_at_ms: row.metrics_read_at_ms,
    })
}

fn to_row(sample: &ServerSample) -> server_sample::ActiveModel {
    let clamp = |n: u64| n.min(i64::MAX as u64) as i64;
    server_sample::ActiveModel {
        server_id: Set(sample.server_id.to_string()),
        changed_at_ms: Set(sample.changed_at_ms),
        polled_at_ms: Set(sample.polled_at_ms),
        failures: Set(sample.failures.min(i32::MAX as u32) as i32),
        successes: Set(sample.successes.min(i32::MAX as u32) as i32),
        meetings: Set(clamp(sample.meetings)),
        attendees: Set(clamp(sample.attendees)),
        largest_meeting: Set(clamp(sample.largest_meeting)),
        known_meetings: Set(clamp(sample.known_meetings)),
        load: Set(sample.load),
        meetings_xml: Set(sample.meetings_xml.clone()),
        cpu_percent: Set(sample.cpu_percent),
        memory_percent: Set(sample.memory_percent),
        metrics_state: Set(sample.metrics_state.as_str().to_owned()),
        metrics_error: Set(sample.metrics_error.clone()),
        metrics_read_at_ms: Set(sample.metrics_read_at_ms),
    }
}

impl Store {
    /// Every server's sample.
    pub async fn server_samples(&self) -> Result<Vec<ServerSample>, StoreError> {
        let rows = server_sample::Entity::find().all(&self.db).await?;
        Ok(rows.into_iter().filter_map(to_sample).collect())
    }

    /// Which samples changed after `since_ms`, with their change times (cheap:
    /// no XML is read).
    pub async fn samples_changed_after(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(ServerId, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = server_sample::Entity::find()
            .select_only()
            .column(server_sample::Column::ServerId)
            .column(server_sample::Column::ChangedAtMs)
            .filter(server_sample::Column::ChangedAtMs.gt(since_ms))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, at)| Some((id.parse().ok()?, at)))
            .collect())
    }

    /// The samples of some servers.
    pub async fn server_samples_of(
        &self,
        servers: &[ServerId],
    ) -> Result<Vec<ServerSample>, StoreError> {
        if servers.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = servers.iter().map(ToString::to_string).collect();
        let rows = server_sample::Entity::find()
            .filter(server_sample::Column::ServerId.is_in(ids))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().filter_map(to_sample).collect())
    }

    /// Writes samples (insert or overwrite), in one transaction, and tells
    /// other instances when anything was written.
    pub async fn put_server_samples(&self, samples: &[ServerSample]) -> Result<(), StoreError> {
        if samples.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin().await?;
        for chunk in samples.chunks(200) {
            server_sample::Entity::insert_many(chunk.iter().map(to_row))
                .on_conflict(
                    OnConflict::column(server_sample::Column::ServerId)
                        .update_columns([
                            server_sample::Column::ChangedAtMs,
                            server_sample::Column::PolledAtMs,
                            server_sample::Column::Failures,
                            server_sample::Column::Successes,
                            server_sample::Column::Meetings,
                            server_sample::Column::Attendees,
                            server_sample::Column::LargestMeeting,
                            server_sample::Column::KnownMeetings,
                            server_sample::Column::Load,
                            server_sample::Column::MeetingsXml,
                            server_sample::Column::CpuPercent,
                            server_sample::Column::MemoryPercent,
                            server_sample::Column::MetricsState,
                            server_sample::Column::MetricsError,
                            server_sample::Column::MetricsReadAtMs,
                        ])
                        .to_owned(),
                )
                .exec(&txn)
                .await?;
        }
        announce_change(&txn, self.is_postgres(), "samples").await?;
        txn.commit().await?;
        Ok(())
    }

    /// Records the listing of a run this instance is creating. Written before
    /// the run is appended, so any instance that sees the run sees its listing.
    pub async fn put_meeting_listing(&self, listing: &MeetingListing) -> Result<(), StoreError> {
        let row = meeting_listing::ActiveModel {
            internal_id: Set(listing.internal_id.clone()),
            server_id: Set(listing.server_id.to_string()),
            created_at_ms: Set(listing.created_at_ms),
            xml: Set(listing.xml.clone()),
        };
        meeting_listing::Entity::insert(row)
            .on_conflict(
                OnConflict::column(meeting_listing::Column::InternalId)
                    .update_columns([
                        meeting_listing::Column::ServerId,
                        meeting_listing::Column::CreatedAtMs,
                        meeting_listing::Column::Xml,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Listings of runs Switchboard records as running.
    pub async fn running_meeting_listings(&self) -> Result<Vec<MeetingListing>, StoreError> {
        let running: Vec<String> = meeting::Entity::find()
            .select_only()
            .column(meeting::Column::InternalId)
            .filter(meeting::Column::Running.eq(true))
            .into_tuple()
            .all(&self.db)
            .await?;
        let running: std::collections::HashSet<String> = running.into_iter().collect();
        let rows = meeting_listing::Entity::find().all(&self.db).await?;
        Ok(rows
            .into_iter()
            .filter(|row| running.contains(&row.internal_id))
            .filter_map(|row| {
                Some(MeetingListing {
                    server_id: row.server_id.parse().ok()?,
                    internal_id: row.internal_id,
                    created_at_ms: row.created_at_ms,
                    xml: row.xml,
                })
            })
            .collect())
    }

    /// Drops listings created before `before_ms` (by then polls list the runs).
    pub async fn prune_meeting_listings(&self, before_ms: i64) -> Result<u64, StoreError> {
        let result = meeting_listing::Entity::delete_many()
            .filter(meeting_listing::Column::CreatedAtMs.lt(before_ms))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }
}

impl Store {
    /// Deletes jobs finished more than `kept` ago from apalis' SQL job tables
    /// (apalis keeps them for ever: a poll tick every 10 s would add 8,640
    /// rows a day); returns how many went. Only for job storage in this
    /// database (not Redis).
    pub async fn prune_finished_jobs(&self, kept: std::time::Duration) -> Result<u64, StoreError> {
        let kept = kept.as_secs();
        let sql = if self.is_postgres() {
            format!(
                "DELETE FROM apalis.jobs WHERE status IN ('Done', 'Failed', 'Killed') \
                 AND done_at < now() - interval '{kept} seconds'"
            )
        } else {
            format!(
                "DELETE FROM Jobs WHERE status IN ('Done', 'Failed', 'Killed') \
                 AND done_at IS NOT NULL AND done_at < strftime('%s', 'now') - {kept}"
            )
        };
        Ok(self.db.execute_unprepared(&sql).await?.rows_affected())
    }
}

/// Tells other instances (PostgreSQL LISTEN) that something changed; the
/// notification is delivered when the transaction commits.
pub(crate) async fn announce_change<C: ConnectionTrait>(
    db: &C,
    postgres: bool,
    what: &str,
) -> Result<(), StoreError> {
    if postgres {
        db.execute_unprepared(&format!("NOTIFY {CHANGE_CHANNEL}, '{what}'"))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_metric_moves_and_read_times_are_no_change() {
        let before = ServerSample {
            cpu_percent: Some(40.0),
            memory_percent: Some(60.0),
            metrics_read_at_ms: Some(1),
            ..ServerSample::new(ServerId::new())
        };
        let mut after = before.clone();
        after.cpu_percent = Some(40.3);
        after.metrics_read_at_ms = Some(2);
        after.polled_at_ms = 5;
        assert!(!after.content_differs(&before));
        after.cpu_percent = Some(41.0);
        assert!(after.content_differs(&before));
        after.cpu_percent = None;
        assert!(after.content_differs(&before));
    }
}
