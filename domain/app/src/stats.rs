//! A tenant's own stats: what it runs now against its limits, for its
//! operators and dashboards, read with a per-tenant stats token (only the
//! token's hash is kept, on the tenant) instead of the admin API.

use crate::StoreError;
use crate::ports::Database;
use crate::routing::RoutingView;
use std::collections::HashMap;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use switchboard_domain::ids::TenantId;
use switchboard_domain::token::hash_token;

/// One running meeting as its tenant sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantMeetingStats {
    /// The front-end's meetingID.
    pub meeting_id: String,
    /// Its name.
    pub name: String,
    /// Attendees the last poll saw.
    pub attendees: u64,
    /// When the run started (ms since the epoch).
    pub started_at_ms: i64,
}

/// What a tenant runs now, against its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantStats {
    /// The tenant.
    pub tenant: String,
    /// Its running meetings, oldest first.
    pub meetings: Vec<TenantMeetingStats>,
    /// Attendees over them (polled, plus joins sent since the polls).
    pub attendees: u64,
    /// Its cap on running meetings, if any.
    pub max_meetings: Option<u64>,
    /// Its cap on attendees, if any.
    pub max_attendees: Option<u64>,
    /// Its usage this month (UTC) so far: runs started this month that
    /// ended.
    pub month: crate::usage::UsageRow,
}

/// Why stats are not shown.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// No such tenant, no token issued, or another token: one answer for
    /// all, so nobody learns which tenants exist.
    #[error("a valid stats token of this tenant is needed")]
    Unauthorized,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Tenants' stats over the routing view (its tenants and polled picture).
#[derive(Debug)]
pub struct StatsService {
    store: Arc<dyn Database>,
    routing: Arc<RoutingView>,
    clock: crate::clock::SharedClock,
}

impl StatsService {
    /// Stats over these ports.
    pub fn new(
        store: Arc<dyn Database>,
        routing: Arc<RoutingView>,
        clock: crate::clock::SharedClock,
    ) -> Self {
        Self {
            store,
            routing,
            clock,
        }
    }

    /// The tenant's usage in the current UTC month.
    async fn month_usage(&self, tenant: &TenantId) -> Result<crate::usage::UsageRow, StoreError> {
        use chrono::Datelike as _;
        let now = chrono::DateTime::from_timestamp_millis(self.clock.now_ms()).unwrap_or_default();
        let first = now
            .date_naive()
            .with_day(1)
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .map(|start| start.and_utc().timestamp_millis());
        let filter = crate::records::UsageFilter {
            tenant: Some(tenant.clone()),
            from_ms: first,
            to_ms: None,
        };
        let rows =
            crate::usage::usage_report(self.store.as_ref(), &filter, crate::usage::Period::Month)
                .await?;
        Ok(rows
            .into_iter()
            .next()
            .unwrap_or_else(|| crate::usage::UsageRow {
                tenant: tenant.0.clone(),
                period: now.format("%Y-%m").to_string(),
                ..Default::default()
            }))
    }

    /// The stats of `tenant`, when `token` is its stats token (compared by
    /// hash, in constant time).
    pub async fn stats(&self, tenant: &str, token: &str) -> Result<TenantStats, StatsError> {
        // The same work whether the tenant exists or has a token: the
        // answer's timing tells nothing either.
        let given = hash_token(token);
        let config = self.routing.tenant(tenant);
        let expected = config
            .as_ref()
            .and_then(|config| config.stats_token_hash.clone())
            .unwrap_or_else(|| hash_token(""));
        let matches = bool::from(given.as_bytes().ct_eq(expected.as_bytes()));
        let config = match config {
            Some(config) if matches && config.stats_token_hash.is_some() && !token.is_empty() => {
                config
            }
            _ => return Err(StatsError::Unauthorized),
        };
        let id = TenantId(config.name.clone());
        let mut runs: Vec<_> = self
            .store
            .running_meetings()
            .await?
            .into_iter()
            .filter(|meeting| meeting.tenant == id)
            .collect();
        runs.sort_by_key(|meeting| meeting.run.create_time_ms);
        let picture = self.routing.picture();
        let polled: HashMap<&str, u64> = picture
            .values()
            .flat_map(|server| server.participants.iter())
            .map(|(internal_id, count)| (internal_id.as_str(), *count))
            .collect();
        let meetings: Vec<TenantMeetingStats> = runs
            .iter()
            .map(|meeting| TenantMeetingStats {
                meeting_id: meeting.meeting_id.to_string(),
                name: meeting.name.clone(),
                attendees: polled
                    .get(meeting.run.internal_id.as_str())
                    .copied()
                    .unwrap_or(0),
                started_at_ms: meeting.run.create_time_ms,
            })
            .collect();
        let internal_ids = runs
            .iter()
            .map(|meeting| meeting.run.internal_id.clone())
            .collect();
        Ok(TenantStats {
            tenant: config.name.clone(),
            month: self.month_usage(&id).await?,
            attendees: self.routing.attendees_of_tenant(&id, &internal_ids),
            meetings,
            max_meetings: config.limits.max_meetings,
            max_attendees: config.limits.max_attendees,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{AdminService, Principal};
    use crate::memory::ScriptedBackend;
    use crate::routing::ObservedLoads;
    use crate::testing::{NOW_MS, World};
    use switchboard_domain::load::LoadWeights;

    #[tokio::test]
    async fn a_tenant_sees_only_its_own_meetings_and_only_with_its_token() {
        let world = World::new();
        let server = world.server("one").await;
        let backend = Arc::new(ScriptedBackend::new(|_, call, _| {
            panic!("unexpected {call}")
        }));
        let admin = AdminService::new(
            world.store.clone(),
            world.executor.clone(),
            world.backends(&backend),
            world.shared_clock(),
            LoadWeights::default(),
            None,
        );
        let operator = Principal::admin("test".into());
        for name in ["school", "college"] {
            admin
                .scalelite_add_tenant(name, &[format!("{name}-secret-0123")], &operator)
                .await
                .unwrap();
            let tenant = TenantId(name.into());
            let room = format!("{name}-room");
            world
                .tenant_meeting(&tenant, &room, &format!("{name}-run"), server, NOW_MS)
                .await;
        }
        let token = admin.issue_stats_token("school", &operator).await.unwrap();
        let routing = RoutingView::load(
            world.store.clone(),
            world.shared_clock(),
            LoadWeights::default(),
            ObservedLoads::default(),
        )
        .await
        .unwrap();
        let stats = StatsService::new(world.store.clone(), routing.clone(), world.shared_clock());
        let seen = stats.stats("school", &token).await.unwrap();
        assert_eq!(seen.tenant, "school");
        assert_eq!(seen.meetings.len(), 1);
        assert_eq!(seen.meetings[0].meeting_id, "school-room");
        for (tenant, token) in [
            ("school", "sbt_wrong"),
            ("college", token.as_str()),
            ("nowhere", token.as_str()),
        ] {
            assert!(
                matches!(
                    stats.stats(tenant, token).await,
                    Err(StatsError::Unauthorized)
                ),
                "{tenant}"
            );
        }
        // A new token replaces the old one: only it opens the stats.
        let newer = admin.issue_stats_token("school", &operator).await.unwrap();
        routing.refresh().await.unwrap();
        assert!(stats.stats("school", &newer).await.is_ok());
        assert!(matches!(
            stats.stats("school", &token).await,
            Err(StatsError::Unauthorized)
        ));
        assert!(matches!(
            stats.stats("college", "").await,
            Err(StatsError::Unauthorized)
        ));
    }
}
