//! The cluster as it was at a moment, replayed from the log. Replays are
//! bounded: one runs at a time, and the state at the latest past moment
//! asked is kept, so asking for it again, or for a later moment, replays
//! only the events since (a read token cannot make every call replay the
//! whole log).

use super::Failure;
use super::views::{ClusterAt, MeetingAt, ServerAt};
use crate::ports::Database;
use crate::records::EventFilter;
use std::collections::BTreeMap;
use switchboard_domain::aggregate::Aggregate;
use switchboard_domain::events::DomainEvent;
use switchboard_domain::meeting::Meeting;
use switchboard_domain::server::Server;

/// How far behind now a moment must be before its state is kept: later
/// appends (other instances' clocks) no longer fall before it.
const SETTLED_SECS: i64 = 5;

/// Servers and meetings folded up to a moment.
#[derive(Debug, Clone, Default)]
struct Replayed {
    at: Option<chrono::DateTime<chrono::Utc>>,
    position: i64,
    servers: BTreeMap<String, Server>,
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
        replayed.advance(store, at).await?;
        let answer = replayed.view(at);
        let settled = at <= now - chrono::Duration::seconds(SETTLED_SECS);
        if settled && kept.at.is_none_or(|kept_at| kept_at <= at) {
            *kept = replayed;
        }
        Ok(answer)
    }
}

impl Replayed {
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
                match &stored.event {
                    DomainEvent::Server(event) => self
                        .servers
                        .entry(stored.stream.to_string())
                        .or_default()
                        .evolve(event),
                    DomainEvent::Meeting(event) => self
                        .meetings
                        .entry(stored.stream.to_string())
                        .or_default()
                        .evolve(event),
                    DomainEvent::Token(_)
                    | DomainEvent::Tenant(_)
                    | DomainEvent::Recording(_)
                    | DomainEvent::Hook(_) => {}
                }
            }
        }
        self.at = Some(at);
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
}
