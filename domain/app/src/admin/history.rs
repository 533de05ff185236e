//! The cluster as it was at a moment, replayed from the log. A replay
//! starts from the nearest snapshot before the moment (one is kept every
//! [`SNAPSHOT_EVERY`] events of settled log by [`History::keep_snapshots`],
//! which a worker runs every minute), so it folds a few thousand events,
//! not the whole log. Replays are bounded: one runs at a time, and the state at
//! the latest past moment asked is kept, so asking for it again, or for a
//! later moment, replays only the events since.

use super::Failure;
use super::packed;
use super::views::{ClusterAt, MeetingAt, ServerAt};
use crate::ports::Database;
use crate::records::{EventFilter, LogSnapshot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use switchboard_domain::aggregate::Aggregate;
use switchboard_domain::events::DomainEvent;
use switchboard_domain::meeting::Meeting;
use switchboard_domain::server::Server;

/// How far behind now a moment must be before its state is kept: later
/// appends (other instances' clocks) no longer fall before it.
const SETTLED_SECS: i64 = 5;

/// Events between two snapshots of the pool.
pub const SNAPSHOT_EVERY: i64 = 5_000;

/// The snapshots' kind in the log's snapshot store.
const SNAPSHOT_KIND: &str = "history";

/// Servers and running meetings folded up to a moment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Replayed {
    #[serde(skip)]
    at: Option<chrono::DateTime<chrono::Utc>>,
    position: i64,
    /// Position of the last snapshot this fold knows of.
    #[serde(skip)]
    snapshot: i64,
    servers: BTreeMap<String, Server>,
    /// Running meetings only (an ended one leaves the fold).
    meetings: BTreeMap<String, Meeting>,
}

/// The replay kept between calls (shared by clones).
#[derive(Debug, Default, Clone)]
pub struct History {
    kept: std::sync::Arc<tokio::sync::Mutex<Replayed>>,
}

impl History {
    /// The cluster at `at` (`now`: the time now).
    pub async fn at(
        &self,
        store: &dyn Database,
        at: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<ClusterAt, Failure> {
        let mut kept = self.kept.lock().await;
        let reusable = kept.at.is_some_and(|kept_at| kept_at <= at);
        let mut replayed = if reusable {
            kept.clone()
        } else {
            Replayed::default()
        };
        replayed.start_from_snapshot(store, Some(at)).await?;
        replayed.advance(store, at).await?;
        let answer = replayed.view(at);
        let settled = at <= now - chrono::Duration::seconds(SETTLED_SECS);
        if settled && kept.at.is_none_or(|kept_at| kept_at <= at) {
            *kept = replayed;
        }
        Ok(answer)
    }

    /// Folds the settled log since the newest snapshot in position order,
    /// keeping a snapshot every [`SNAPSHOT_EVERY`] events (run now and
    /// then by a worker, so `events at` never has far to go). The fold
    /// stops at the first event recorded in the last few seconds: what
    /// comes before it has committed. Only this fold writes snapshots
    /// (a fold up to a moment skips later-recorded events, so it never
    /// claims a position).
    pub async fn keep_snapshots(
        &self,
        store: &dyn Database,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Failure> {
        let settled = now - chrono::Duration::seconds(SETTLED_SECS);
        let mut replayed = Replayed::default();
        replayed.start_from_snapshot(store, None).await?;
        loop {
            let page = store.events_after(replayed.position, 1000).await?;
            if page.is_empty() {
                return Ok(());
            }
            for stored in page {
                if stored.recorded_at > settled {
                    return Ok(());
                }
                replayed.position = stored.position;
                replayed.fold(&stored.stream.to_string(), &stored.event);
                if replayed.position >= replayed.snapshot + SNAPSHOT_EVERY {
                    replayed.keep(store, stored.recorded_at).await?;
                }
            }
        }
    }
}

impl History {
    /// Keeps a snapshot of the pool exactly at `position` (recorded at
    /// `recorded_at`), before the events up to it are archived: moments
    /// after it are then replayed from there.
    pub async fn keep_snapshot_at(
        &self,
        store: &dyn Database,
        position: i64,
        recorded_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Failure> {
        let mut replayed = Replayed::default();
        replayed
            .start_from_snapshot(store, Some(recorded_at))
            .await?;
        if replayed.position > position {
            replayed = Replayed::default();
        }
        loop {
            let page = store.events_after(replayed.position, 1000).await?;
            let Some(last) = page.last().map(|stored| stored.position) else {
                break;
            };
            for stored in page.iter().filter(|stored| stored.position <= position) {
                replayed.position = stored.position;
                replayed.fold(&stored.stream.to_string(), &stored.event);
            }
            if last >= position {
                break;
            }
        }
        replayed.position = position;
        replayed.keep(store, recorded_at).await
    }
}

impl Replayed {
    /// Continues from the newest snapshot at or before `at`, when it is
    /// ahead of this fold.
    async fn start_from_snapshot(
        &mut self,
        store: &dyn Database,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<(), Failure> {
        let Some(snapshot) = store.snapshot_before(SNAPSHOT_KIND, at).await? else {
            return Ok(());
        };
        if snapshot.position <= self.position {
            self.snapshot = self.snapshot.max(snapshot.position);
            return Ok(());
        }
        // A snapshot that cannot be read is skipped: the log is the truth.
        match packed::unpack::<Replayed>(&snapshot.state) {
            Some(mut restored) => {
                restored.position = snapshot.position;
                restored.snapshot = snapshot.position;
                *self = restored;
            }
            None => tracing::warn!(
                position = snapshot.position,
                "a snapshot of the pool's history cannot be read; folding from the log instead"
            ),
        }
        Ok(())
    }

    /// Folds the events after `self.position` recorded up to `at`.
    async fn advance(
        &mut self,
        store: &dyn Database,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Failure> {
        let mut filter = EventFilter {
            to: Some(at),
            after: self.position,
            limit: 1000,
            ..EventFilter::default()
        };
        loop {
            let page = store.query_events(&filter).await?;
            let Some(last) = page.last() else { break };
            filter.after = last.position;
            for stored in page {
                self.position = stored.position;
                self.fold(&stored.stream.to_string(), &stored.event);
            }
        }
        self.at = Some(at);
        Ok(())
    }

    fn fold(&mut self, stream: &str, event: &DomainEvent) {
        match event {
            DomainEvent::Server(event) => self
                .servers
                .entry(stream.to_owned())
                .or_default()
                .evolve(event),
            DomainEvent::Meeting(event) => {
                let meeting = self.meetings.entry(stream.to_owned()).or_default();
                meeting.evolve(event);
                if meeting.current.is_none() {
                    self.meetings.remove(stream);
                }
            }
            DomainEvent::Token(_)
            | DomainEvent::Tenant(_)
            | DomainEvent::Recording(_)
            | DomainEvent::Hook(_) => {}
        }
    }

    /// Stores this fold as a snapshot.
    async fn keep(
        &mut self,
        store: &dyn Database,
        recorded_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Failure> {
        let Ok(state) = packed::pack(&*self) else {
            return Ok(());
        };
        store
            .put_snapshot(&LogSnapshot {
                kind: SNAPSHOT_KIND.to_owned(),
                position: self.position,
                recorded_at,
                state,
            })
            .await?;
        self.snapshot = self.position;
        Ok(())
    }

    fn view(&self, at: chrono::DateTime<chrono::Utc>) -> ClusterAt {
        let servers = self
            .servers
            .values()
            .filter_map(|server| {
                Some(ServerAt {
                    id: server.id?.to_string(),
                    url: switchboard_domain::server_metrics::redact_credentials(
                        &server.settings.as_ref()?.url,
                    ),
                    state: server.state.as_str().to_owned(),
                    online: server.online,
                    removed: server.removed,
                })
            })
            .collect();
        let meetings = self
            .meetings
            .values()
            .filter_map(|meeting| {
                let (tenant, meeting_id) = meeting.identity.clone()?;
                Some(MeetingAt {
                    tenant: tenant.to_string(),
                    meeting_id: meeting_id.to_string(),
                    server_id: meeting
                        .current
                        .as_ref()
                        .map(|run| run.server_id.to_string()),
                    running: meeting.current.is_some(),
                })
            })
            .collect();
        ClusterAt {
            at,
            position: self.position,
            servers,
            meetings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::EventStore as _;
    use crate::testing::{NOW_MS, World};
    use switchboard_domain::server::ServerCommand;

    fn moment(ms: i64) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(ms).unwrap()
    }

    /// Continuing from a kept replay answers as a fresh replay does, for a
    /// later moment and for an earlier one.
    #[tokio::test]
    async fn a_kept_replay_answers_as_a_fresh_one() {
        let world = World::new();
        let a = world.server("a").await;
        world.clock.advance_ms(10_000);
        world.meeting("room", "room-1", a, NOW_MS + 10_000).await;
        world.clock.advance_ms(10_000);
        world.on_server(a, ServerCommand::Cordon).await;
        let late = moment(NOW_MS + 30_000);
        let now = moment(NOW_MS + 3_600_000);
        let kept = History::default();
        let store = world.store.as_ref();
        for at in [
            NOW_MS + 5_000,
            NOW_MS + 15_000,
            NOW_MS + 25_000,
            NOW_MS + 5_000,
        ] {
            let at = moment(at);
            let fresh = History::default().at(store, at, now).await.unwrap();
            assert_eq!(kept.at(store, at, now).await.unwrap(), fresh, "{at}");
        }
        let last = kept.at(store, late, now).await.unwrap();
        assert_eq!(last.servers[0].state, "cordoned");
        assert_eq!(last.meetings.len(), 1);
        assert_eq!(
            kept.kept.lock().await.at,
            Some(late),
            "the latest settled moment is kept"
        );
    }

    /// A moment far in the log is answered from the nearest snapshot and
    /// agrees with a fold of the whole log; ended meetings are not listed.
    #[tokio::test]
    async fn a_moment_starts_from_the_nearest_snapshot_and_agrees_with_the_whole_log() {
        let world = World::new();
        let a = world.server("a").await;
        world.meeting("early", "run-early", a, NOW_MS).await;
        world.meeting("gone", "run-gone", a, NOW_MS).await;
        let gone = switchboard_domain::ids::MeetingId::parse("gone").unwrap();
        world
            .executor
            .execute::<Meeting>(
                &switchboard_domain::ids::meeting_stream(
                    &switchboard_domain::ids::TenantId::default_tenant(),
                    &gone,
                ),
                &switchboard_domain::meeting::MeetingCommand::RecordEnded {
                    reason: switchboard_domain::meeting::EndReason::EndCalled,
                    at_ms: NOW_MS + 1,
                    only_run: None,
                },
                &crate::testing::given(),
            )
            .await
            .unwrap();
        for n in 0..(SNAPSHOT_EVERY + 100) {
            let command = if n % 2 == 0 {
                ServerCommand::Cordon
            } else {
                ServerCommand::Enable
            };
            world.on_server(a, command).await;
        }
        let store = world.store.as_ref();
        let now = moment(NOW_MS + 3_600_000);
        History::default().keep_snapshots(store, now).await.unwrap();
        let snapshot = store
            .snapshot_before(SNAPSHOT_KIND, None)
            .await
            .unwrap()
            .expect("a snapshot was kept");
        assert_eq!(snapshot.position, SNAPSHOT_EVERY);
        let at = moment(NOW_MS + 60_000);
        let answer = History::default().at(store, at, now).await.unwrap();
        // The whole log folded without snapshots.
        let mut whole = Replayed::default();
        whole.advance(store, at).await.unwrap();
        assert_eq!(answer, whole.view(at));
        let meetings: Vec<&str> = answer
            .meetings
            .iter()
            .map(|m| m.meeting_id.as_str())
            .collect();
        assert_eq!(meetings, ["early"]);
        assert_eq!(answer.servers[0].state, "enabled");
    }
}
