//! Retention: recordings older than their tenant's rule (or the global
//! default) after they end are expired, as a deletion: a
//! `RecordingExpired` event naming the rule, then their files and text
//! tracks go. Protected recordings and those held by `keep` metadata
//! (`meta_keep=true`) never expire. The aggregate decides again at the
//! append, so a recording protected or held meanwhile is left alone.

use super::RecordingService;
use super::calls::RecordingCallError;
use crate::StoreError;
use crate::executor::CommandError;
use crate::records::{RecordingQuery, RecordingRecord};
use std::collections::HashMap;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::TenantId;
use switchboard_domain::recording::{
    KEEP_KEY, Recording, RecordingCommand, RecordingError, RetentionRule, recording_stream,
};

/// The actor of expiries.
pub const RETENTION_ACTOR: &str = "worker:retention";

/// Expired recordings (counter, by tenant).
pub const METRIC_EXPIRED: &str = "switchboard_recordings_expired_total";
/// Bytes of expired recordings' formats (counter, by tenant).
pub const METRIC_EXPIRED_BYTES: &str = "switchboard_recordings_expired_bytes_total";

const DAY_MS: i64 = 86_400_000;

/// A recording a rule expires (or, in a dry run, would).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// Its record id.
    pub record_id: String,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its meeting id.
    pub meeting_id: String,
    /// When it ended (ms).
    pub end_time_ms: i64,
    /// Bytes of its formats as imported.
    pub bytes: u64,
    /// The rule that expires it.
    pub rule: RetentionRule,
}

/// The rule in force for a tenant: its own days, else the global default.
pub fn rule_for(tenant_days: Option<u32>, global_days: Option<u32>) -> Option<RetentionRule> {
    match (tenant_days, global_days) {
        (Some(days), _) => Some(RetentionRule {
            source: "tenant".into(),
            days,
        }),
        (None, Some(days)) => Some(RetentionRule {
            source: "global".into(),
            days,
        }),
        (None, None) => None,
    }
}

/// Whether its metadata or protection keeps a recording from expiring.
fn kept(recording: &RecordingRecord) -> bool {
    recording.protected
        || recording
            .metadata
            .get(KEEP_KEY)
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

/// Which of a tenant's recordings `rule` expires at `now_ms`: ended more
/// than its days ago, not deleted, not protected or held.
pub fn due(recordings: &[RecordingRecord], rule: &RetentionRule, now_ms: i64) -> Vec<Expiry> {
    let ended_before_ms = now_ms - i64::from(rule.days) * DAY_MS;
    recordings
        .iter()
        .filter(|r| r.state != "deleted" && !kept(r) && r.end_time_ms < ended_before_ms)
        .map(|r| Expiry {
            record_id: r.record_id.clone(),
            tenant: r.tenant.clone(),
            meeting_id: r.meeting_id.clone(),
            end_time_ms: r.end_time_ms,
            bytes: r.formats.iter().map(|f| f.bytes).sum(),
            rule: rule.clone(),
        })
        .collect()
}

impl RecordingService {
    /// Expires every recording its tenant's rule (or the global default)
    /// says is due at `now_ms`; with `dry_run`, only says which. Returns
    /// the recordings expired (or due).
    pub async fn expire(&self, now_ms: i64, dry_run: bool) -> Result<Vec<Expiry>, StoreError> {
        let global = self.settings.retention_days;
        let mut rules: HashMap<TenantId, Option<u32>> =
            HashMap::from([(TenantId::default_tenant(), None)]);
        for tenant in self.store.tenants().await? {
            rules.insert(TenantId(tenant.name), tenant.retention_days);
        }
        let mut tenants: Vec<(TenantId, Option<u32>)> = rules.into_iter().collect();
        tenants.sort_by(|a, b| a.0.0.cmp(&b.0.0));
        let mut expired = Vec::new();
        for (tenant, days) in tenants {
            let Some(rule) = rule_for(days, global) else {
                continue;
            };
            let mut query = RecordingQuery::new(tenant.clone());
            query.states = Some(vec!["published".into(), "unpublished".into()]);
            let page = self.store.find_recordings(&query).await?;
            for expiry in due(&page.recordings, &rule, now_ms) {
                if dry_run {
                    expired.push(expiry);
                    continue;
                }
                match self.expire_one(&expiry, now_ms).await {
                    Ok(true) => expired.push(expiry),
                    Ok(false) => {}
                    Err(err) => {
                        tracing::warn!(record_id = %expiry.record_id, error = %err, "a recording could not be expired; the next run tries again");
                    }
                }
            }
        }
        Ok(expired)
    }

    /// Records one expiry, then removes its files and text tracks; false
    /// when the aggregate kept it (protected, held, or no longer due).
    async fn expire_one(&self, expiry: &Expiry, now_ms: i64) -> Result<bool, RecordingCallError> {
        let command = RecordingCommand::Expire {
            rule: expiry.rule.clone(),
            ended_before_ms: now_ms - i64::from(expiry.rule.days) * DAY_MS,
        };
        let metadata = EventMetadata {
            actor: RETENTION_ACTOR.to_owned(),
            request_id: None,
            tenant: Some(expiry.tenant.0.clone()),
        };
        let executed = match self
            .executor
            .execute::<Recording>(&recording_stream(&expiry.record_id), &command, &metadata)
            .await
        {
            Ok(executed) => executed,
            // Deleted, or expired by another instance, since it was listed.
            Err(CommandError::Rejected(RecordingError::NotFound(_))) => return Ok(false),
            Err(CommandError::Rejected(err)) => {
                return Err(RecordingCallError::Rejected(err.to_string()));
            }
            Err(CommandError::Store(err)) => return Err(err.into()),
        };
        if executed.events.is_empty() {
            return Ok(false);
        }
        tracing::info!(record_id = %expiry.record_id, tenant = %expiry.tenant, days = expiry.rule.days, source = %expiry.rule.source, "recording expired");
        let tenant = expiry.tenant.0.clone();
        metrics::counter!(METRIC_EXPIRED, "tenant" => tenant.clone()).increment(1);
        metrics::counter!(METRIC_EXPIRED_BYTES, "tenant" => tenant).increment(expiry.bytes);
        // Recorded: it is expired whatever the files do. A removal that
        // fails is logged (by `on_disk`) and its files stay for an operator.
        if self
            .on_disk(
                &expiry.record_id,
                &expiry.tenant,
                super::calls::TreeOp::Delete,
            )
            .await
            .is_err()
        {
            tracing::error!(record_id = %expiry.record_id, "an expired recording's files could not be removed; remove them by hand");
        }
        super::text_tracks::delete_all(self, &expiry.record_id).await;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use switchboard_domain::recording::RecordingFormat;

    const NOW: i64 = 1_796_083_200_000;

    fn recording(id: &str, ended_days_ago: i64) -> RecordingRecord {
        RecordingRecord {
            record_id: id.into(),
            tenant: TenantId("school".into()),
            meeting_id: format!("meeting-{id}"),
            internal_meeting_id: id.into(),
            name: id.into(),
            is_breakout: false,
            breakout: None,
            breakout_rooms: Vec::new(),
            published: true,
            state: "published".into(),
            start_time_ms: NOW - ended_days_ago * DAY_MS - 3_600_000,
            end_time_ms: NOW - ended_days_ago * DAY_MS,
            participants: 2,
            protected: false,
            metadata: BTreeMap::new(),
            formats: vec![RecordingFormat {
                format: "presentation".into(),
                url: String::new(),
                processing_time_ms: 0,
                length_ms: 0,
                bytes: 1_000,
                images: vec![],
            }],
            version: 1,
        }
    }

    #[test]
    fn a_tenants_own_days_come_before_the_global_default() {
        assert_eq!(rule_for(Some(7), Some(30)).unwrap().source, "tenant");
        assert_eq!(rule_for(None, Some(30)).unwrap().days, 30);
        assert_eq!(rule_for(None, None), None);
    }

    #[test]
    fn only_recordings_ended_before_the_rule_and_not_kept_are_due() {
        let rule = RetentionRule {
            source: "tenant".into(),
            days: 30,
        };
        let mut protected = recording("protected", 40);
        protected.protected = true;
        let mut held = recording("held", 40);
        held.metadata.insert("keep".into(), "TRUE".into());
        let mut not_held = recording("not-held", 40);
        not_held.metadata.insert("keep".into(), "false".into());
        let mut deleted = recording("deleted", 40);
        deleted.state = "deleted".into();
        let due: Vec<String> = due(
            &[
                recording("old", 31),
                recording("edge", 30),
                recording("young", 29),
                protected,
                held,
                not_held,
                deleted,
            ],
            &rule,
            NOW + 1,
        )
        .into_iter()
        .map(|e| {
            assert_eq!(e.bytes, 1_000);
            e.record_id
        })
        .collect();
        assert_eq!(due, vec!["old", "edge", "not-held"]);
    }
}
