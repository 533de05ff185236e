//! The polled picture: per-server samples written by the health poller and
//! listings of runs Switchboard created since, overwritten in place (samples
//! are not changes, so they never enter the event log).

use crate::store::{SqlError, Store};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set, TransactionTrait,
};
use switchboard_app::records::{
    MeetingListing, ServerSample, digest_written_ahead, listing_digest,
};
use switchboard_domain::ids::ServerId;
use switchboard_domain::server_metrics::MetricsState;
use switchboard_migrations::entities::{agent_heartbeat, meeting, meeting_listing, server_sample};

fn to_sample(row: server_sample::Model) -> Option<ServerSample> {
    Some(ServerSample {
        server_id: row.server_id.parse().ok()?,
        changed_at_ms: row.changed_at_ms,
        polled_at_ms: row.polled_at_ms,
        failures: row.failures.max(0) as u32,
        successes: row.successes.max(0) as u32,
        meetings: row.meetings.max(0) as u64,
        attendees: row.attendees.max(0) as u64,
        video: row.video.max(0) as u64,
        largest_meeting: row.largest_meeting.max(0) as u64,
        known_meetings: row.known_meetings.max(0) as u64,
        load: row.load,
        meetings_xml: row.meetings_xml.into(),
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
        video: Set(clamp(sample.video)),
        largest_meeting: Set(clamp(sample.largest_meeting)),
        known_meetings: Set(clamp(sample.known_meetings)),
        load: Set(sample.load),
        meetings_xml: Set(sample.meetings_xml.to_string()),
        listing_digest: Set(sample.listing_digest() as i64),
        cpu_percent: Set(sample.cpu_percent),
        memory_percent: Set(sample.memory_percent),
        metrics_state: Set(sample.metrics_state.as_str().to_owned()),
        metrics_error: Set(sample.metrics_error.clone()),
        metrics_read_at_ms: Set(sample.metrics_read_at_ms),
    }
}

impl Store {
    /// Every server's sample.
    pub(crate) async fn server_samples_sql(&self) -> Result<Vec<ServerSample>, SqlError> {
        self.samples_where(sea_orm::Condition::all()).await
    }

    /// The samples matching `condition`, each made as its row arrives: a
    /// sample carries its server's whole listing (about 1 MB with 1,000
    /// meetings), and reading every row before making any held each
    /// listing three times at once (raw row, model, sample).
    async fn samples_where(
        &self,
        condition: sea_orm::Condition,
    ) -> Result<Vec<ServerSample>, SqlError> {
        let rows = server_sample::Entity::find()
            .filter(condition)
            .stream(&self.db)
            .await?;
        Ok(crate::rows::fold_rows(rows, Vec::new(), |samples, row| {
            samples.extend(to_sample(row))
        })
        .await?)
    }

    /// Every server's sample without its listing, with the listing's
    /// digest as stored beside it: no listing is read (see
    /// [`PolledPicture::server_sample_figures`]).
    ///
    /// [`PolledPicture::server_sample_figures`]: switchboard_app::ports::PolledPicture::server_sample_figures
    pub(crate) async fn server_sample_figures_sql(
        &self,
    ) -> Result<Vec<(ServerSample, u64)>, SqlError> {
        use sea_orm::Iterable as _;
        let rows = server_sample::Entity::find()
            .select_only()
            .columns(
                server_sample::Column::iter()
                    .filter(|column| !matches!(column, server_sample::Column::MeetingsXml)),
            )
            .column_as(Expr::val(""), "meetings_xml")
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let digest = row.listing_digest as u64;
                to_sample(row).map(|sample| (sample, digest))
            })
            .collect())
    }

    /// Which samples changed after `since_ms`, with their change times (cheap:
    /// no XML is read).
    pub(crate) async fn samples_changed_after_sql(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(ServerId, i64)>, SqlError> {
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
    pub(crate) async fn server_samples_of_sql(
        &self,
        servers: &[ServerId],
    ) -> Result<Vec<ServerSample>, SqlError> {
        if servers.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = servers.iter().map(ToString::to_string).collect();
        self.samples_where(
            sea_orm::Condition::all()
                .add(server_sample::Column::ServerId.is_in(crate::shapes::padded(&ids).cloned())),
        )
        .await
    }

    /// Writes samples (insert or overwrite), in one transaction, and tells
    /// other instances when anything was written.
    pub(crate) async fn put_server_samples_sql(
        &self,
        samples: &[ServerSample],
    ) -> Result<(), SqlError> {
        self.put_agent_heartbeats_sql(samples, &[]).await
    }

    /// Writes samples and agents' heartbeat times in one transaction (either
    /// may be empty), announcing changed samples to other instances.
    pub(crate) async fn put_agent_heartbeats_sql(
        &self,
        samples: &[ServerSample],
        heard: &[(ServerId, i64)],
    ) -> Result<(), SqlError> {
        self.put_samples_sql(samples, &[], &[], heard).await
    }

    /// Writes one server's listing ahead of its figures, its digest marked
    /// as written ahead (see [`PolledPicture::put_sample_listing`]).
    ///
    /// [`PolledPicture::put_sample_listing`]: switchboard_app::ports::PolledPicture::put_sample_listing
    pub(crate) async fn put_sample_listing_sql(
        &self,
        server: ServerId,
        meetings_xml: &str,
        digest: u64,
    ) -> Result<(), SqlError> {
        let mut row = to_row(&ServerSample::new(server));
        row.meetings_xml = Set(meetings_xml.to_owned());
        row.listing_digest = Set(digest_written_ahead(digest) as i64);
        server_sample::Entity::insert(row)
            .on_conflict(
                OnConflict::column(server_sample::Column::ServerId)
                    .update_columns([
                        server_sample::Column::MeetingsXml,
                        server_sample::Column::ListingDigest,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Writes a poll's samples in one transaction: `with_listings` whole,
    /// `keeping_listings` all but their listing, `listed_ahead` all but
    /// their listing, with its digest.
    pub(crate) async fn put_polled_samples_sql(
        &self,
        with_listings: &[ServerSample],
        keeping_listings: &[ServerSample],
        listed_ahead: &[(ServerSample, u64)],
    ) -> Result<(), SqlError> {
        self.put_samples_sql(with_listings, keeping_listings, listed_ahead, &[])
            .await
    }

    async fn put_samples_sql(
        &self,
        with_listings: &[ServerSample],
        keeping_listings: &[ServerSample],
        listed_ahead: &[(ServerSample, u64)],
        heard: &[(ServerId, i64)],
    ) -> Result<(), SqlError> {
        let samples_written =
            !with_listings.is_empty() || !keeping_listings.is_empty() || !listed_ahead.is_empty();
        if !samples_written && heard.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin().await?;
        // One sample per statement: a sample carries its server's whole
        // listing (about 1 MB with 1,000 meetings), and one statement for
        // every server's sample held all of them twice more, as values and
        // as the encoded statement, at the poll's peak; three shapes (with
        // the listing, without it, without it but with its digest) keep
        // three prepared statements per connection.
        let figures = [
            server_sample::Column::ChangedAtMs,
            server_sample::Column::PolledAtMs,
            server_sample::Column::Failures,
            server_sample::Column::Successes,
            server_sample::Column::Meetings,
            server_sample::Column::Attendees,
            server_sample::Column::Video,
            server_sample::Column::LargestMeeting,
            server_sample::Column::KnownMeetings,
            server_sample::Column::Load,
            server_sample::Column::CpuPercent,
            server_sample::Column::MemoryPercent,
            server_sample::Column::MetricsState,
            server_sample::Column::MetricsError,
            server_sample::Column::MetricsReadAtMs,
        ];
        let with_listing: Vec<_> = figures
            .iter()
            .copied()
            .chain([
                server_sample::Column::MeetingsXml,
                server_sample::Column::ListingDigest,
            ])
            .collect();
        // Each sample's listing is written whole or kept as stored.
        let writes = with_listings
            .iter()
            .map(|sample| (sample, false))
            .chain(keeping_listings.iter().map(|sample| (sample, true)));
        for (sample, keep_listing) in writes {
            let mut row = to_row(sample);
            let columns = if keep_listing {
                // Inserted only for a server never sampled: no listing yet.
                row.meetings_xml = Set(String::new());
                row.listing_digest = Set(listing_digest("") as i64);
                &figures[..]
            } else {
                &with_listing[..]
            };
            server_sample::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(server_sample::Column::ServerId)
                        .update_columns(columns.iter().copied())
                        .to_owned(),
                )
                .exec(&txn)
                .await?;
        }
        // The listing written ahead is kept; its digest is stored while it
        // is still the one stored (0 otherwise: the next poll writes its
        // listing again).
        for (sample, digest) in listed_ahead {
            let mut row = to_row(sample);
            // Inserted only if the row went since: no listing.
            row.meetings_xml = Set(String::new());
            row.listing_digest = Set(listing_digest("") as i64);
            let stored_digest =
                Expr::col((server_sample::Entity, server_sample::Column::ListingDigest));
            let digest_kept = Expr::case(
                sea_orm::sea_query::ExprTrait::eq(
                    stored_digest,
                    digest_written_ahead(*digest) as i64,
                ),
                *digest as i64,
            )
            .finally(0i64);
            server_sample::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(server_sample::Column::ServerId)
                        .update_columns(figures.iter().copied())
                        .value(server_sample::Column::ListingDigest, digest_kept)
                        .to_owned(),
                )
                .exec(&txn)
                .await?;
        }
        for chunk in heard.chunks(500) {
            let rows = chunk
                .iter()
                .map(|(server, at_ms)| agent_heartbeat::ActiveModel {
                    server_id: Set(server.to_string()),
                    heard_at_ms: Set(*at_ms),
                });
            // Never backwards: a retried or slower write keeps the newer time.
            let newer = if self.is_postgres() {
                "GREATEST(agent_heartbeats.heard_at_ms, excluded.heard_at_ms)"
            } else {
                "MAX(agent_heartbeats.heard_at_ms, excluded.heard_at_ms)"
            };
            agent_heartbeat::Entity::insert_many(rows)
                .on_conflict(
                    OnConflict::column(agent_heartbeat::Column::ServerId)
                        .value(agent_heartbeat::Column::HeardAtMs, Expr::cust(newer))
                        .to_owned(),
                )
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        if samples_written {
            self.announce(crate::announce::Change::Samples).await;
        }
        Ok(())
    }

    /// When these servers' agents were last heard.
    pub(crate) async fn heartbeats_of_sql(
        &self,
        servers: &[ServerId],
    ) -> Result<Vec<(ServerId, i64)>, SqlError> {
        let mut heard = Vec::new();
        for chunk in servers.chunks(crate::shapes::IN_LIST_CHUNK) {
            let ids: Vec<String> = chunk.iter().map(ToString::to_string).collect();
            let rows = agent_heartbeat::Entity::find()
                .filter(
                    agent_heartbeat::Column::ServerId.is_in(crate::shapes::padded(&ids).cloned()),
                )
                .all(&self.db)
                .await?;
            heard.extend(
                rows.into_iter()
                    .filter_map(|row| Some((row.server_id.parse().ok()?, row.heard_at_ms))),
            );
        }
        Ok(heard)
    }

    /// When each server's agent was last heard (only those heard before
    /// `before_ms`, if given).
    pub(crate) async fn heartbeats_sql(
        &self,
        before_ms: Option<i64>,
    ) -> Result<Vec<(ServerId, i64)>, SqlError> {
        let mut query = agent_heartbeat::Entity::find();
        if let Some(before_ms) = before_ms {
            query = query.filter(agent_heartbeat::Column::HeardAtMs.lt(before_ms));
        }
        let rows = query.all(&self.db).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| Some((row.server_id.parse().ok()?, row.heard_at_ms)))
            .collect())
    }

    /// Records the listing of a run (a create appends its run with the
    /// listing in one transaction instead: [`AppendExtras`]).
    ///
    /// [`AppendExtras`]: switchboard_app::records::AppendExtras
    pub(crate) async fn put_meeting_listing_sql(
        &self,
        listing: &MeetingListing,
    ) -> Result<(), SqlError> {
        Ok(crate::listing_rows::put_meeting_listing_on(&self.db, listing).await?)
    }

    /// The listings of these runs. Only the runs asked for are read: the
    /// table holds the listings of every run created in the last minutes,
    /// and getMeetings needs those its servers' polls do not list yet
    /// (reading all 10,000 on every answer was its largest allocation).
    pub(crate) async fn meeting_listings_of_sql(
        &self,
        internal_ids: &[&str],
    ) -> Result<Vec<MeetingListing>, SqlError> {
        let mut listings = Vec::new();
        for chunk in internal_ids.chunks(crate::shapes::IN_LIST_CHUNK) {
            let rows = meeting_listing::Entity::find()
                .filter(
                    meeting_listing::Column::InternalId
                        .is_in(crate::shapes::padded(chunk).copied()),
                )
                .all(&self.db)
                .await?;
            listings.extend(rows.into_iter().filter_map(|row| {
                Some(MeetingListing {
                    server_id: row.server_id.parse().ok()?,
                    internal_id: row.internal_id,
                    created_at_ms: row.created_at_ms,
                    xml: row.xml,
                })
            }));
        }
        Ok(listings)
    }

    /// When each running run's listing was created, by internal id (its
    /// element is not read: the health poll needs the times only).
    pub(crate) async fn running_listing_times_sql(
        &self,
    ) -> Result<std::collections::HashMap<String, i64>, SqlError> {
        let rows = meeting_listing::Entity::find()
            .select_only()
            .column(meeting_listing::Column::InternalId)
            .column(meeting_listing::Column::CreatedAtMs)
            .filter(running_listing())
            .into_tuple::<(String, i64)>()
            .stream(&self.db)
            .await?;
        Ok(crate::rows::fold_rows(
            rows,
            std::collections::HashMap::new(),
            |times, (internal, at_ms)| {
                times.insert(internal, at_ms);
            },
        )
        .await?)
    }

    /// Drops listings created before `before_ms` (by then polls list the runs).
    pub(crate) async fn prune_meeting_listings_sql(&self, before_ms: i64) -> Result<u64, SqlError> {
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
    pub async fn prune_finished_jobs(&self, kept: std::time::Duration) -> Result<u64, SqlError> {
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

/// A listing of a run Switchboard records as running (the table holds the
/// listings of ended runs until they are pruned).
fn running_listing() -> sea_orm::sea_query::SimpleExpr {
    let running = sea_orm::sea_query::Query::select()
        .column(meeting::Column::InternalId)
        .from(meeting::Entity)
        .and_where(meeting::Column::Running.eq(true))
        .to_owned();
    meeting_listing::Column::InternalId.in_subquery(running)
}
