//! Usage per tenant and period in the admin API (`GET /usage`), for
//! billing: from the summaries of ended runs and the tenants' daily peaks.

use super::api::{AdminError, Answer, Tag, TokenAuth};
use super::facade::AdminFacade;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use switchboard_app::admin::Failure;
use switchboard_app::records::UsageFilter;
use switchboard_app::usage::{Period, UsageRow};
use switchboard_domain::ids::TenantId;
use switchboard_domain::token::TokenScope;

/// How usage is grouped in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum UsagePeriod {
    /// One row per UTC day.
    Day,
    /// One row per UTC month.
    Month,
}

/// One tenant's usage in one period (runs count in the period they started
/// in, once ended; a period is final once all its runs ended).
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
pub struct UsageRowView {
    /// The tenant.
    pub tenant: String,
    /// The period: `2026-12-06` or `2026-12`.
    pub period: String,
    /// Meeting runs (ended).
    pub meetings: u64,
    /// Their running time, minutes.
    pub meeting_minutes: f64,
    /// Attendees integrated over time, attendee-minutes.
    pub attendee_minutes: f64,
    /// Most attendees at once over the tenant's meetings.
    pub peak_concurrent_attendees: u64,
    /// Most attendees of one meeting.
    pub peak_meeting_attendees: u64,
    /// Runs created to be recorded (`record=true`; not whether a recording
    /// was made).
    pub recordable_meetings: u64,
    /// Recordings of meetings started in the period (deleted ones too).
    pub recordings: u64,
    /// Their size, bytes (recordings imported before sizes were kept
    /// count 0).
    pub recording_bytes: u64,
}

impl From<&UsageRow> for UsageRowView {
    fn from(row: &UsageRow) -> Self {
        Self {
            tenant: row.tenant.clone(),
            period: row.period.clone(),
            meetings: row.meetings,
            meeting_minutes: row.meeting_minutes(),
            attendee_minutes: row.attendee_minutes(),
            peak_concurrent_attendees: row.peak_concurrent_attendees,
            peak_meeting_attendees: row.peak_meeting_attendees,
            recordable_meetings: row.recordable_meetings,
            recordings: row.recordings,
            recording_bytes: row.recording_bytes,
        }
    }
}

/// A usage report.
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
pub struct UsageReport {
    /// Rows by tenant, then period.
    pub rows: Vec<UsageRowView>,
}

/// A day `YYYY-MM-DD` as the milliseconds of its start (UTC).
pub fn day_start_ms(day: &str) -> Result<i64, Failure> {
    chrono::NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|start| start.and_utc().timestamp_millis())
        .ok_or_else(|| Failure::Invalid(format!("`{day}` is not a day: write YYYY-MM-DD")))
}

/// The filter of a report: `from` and `to` are days, both included.
pub fn usage_filter(
    tenant: Option<String>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<UsageFilter, Failure> {
    const DAY_MS: i64 = 86_400_000;
    Ok(UsageFilter {
        tenant: tenant.filter(|t| !t.is_empty()).map(TenantId),
        from_ms: from.map(day_start_ms).transpose()?,
        to_ms: to
            .map(|to| day_start_ms(to).map(|start| start + DAY_MS))
            .transpose()?,
    })
}

/// The use case's period.
pub fn period(by: Option<UsagePeriod>) -> Period {
    match by {
        Some(UsagePeriod::Month) => Period::Month,
        _ => Period::Day,
    }
}

/// The usage endpoint.
pub struct UsageApi;

#[OpenApi]
impl UsageApi {
    /// Usage per tenant and period: meetings, meeting-minutes,
    /// attendee-minutes, peak concurrent attendees, recorded meetings.
    #[oai(
        path = "/usage",
        method = "get",
        tag = "Tag::Tenants",
        operation_id = "usage"
    )]
    async fn usage(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        /// Only this tenant (`default` for the global secrets' front-ends).
        tenant: Query<Option<String>>,
        /// First day, `YYYY-MM-DD` (UTC), included.
        from: Query<Option<String>>,
        /// Last day, `YYYY-MM-DD` (UTC), included.
        to: Query<Option<String>>,
        /// Rows per `day` (default) or `month`.
        by: Query<Option<UsagePeriod>>,
    ) -> Answer<UsageReport> {
        auth.require(TokenScope::Read)?;
        let filter =
            usage_filter(tenant.0, from.0.as_deref(), to.0.as_deref()).map_err(AdminError::from)?;
        let rows = state.usage(&filter, period(by.0)).await?;
        Ok(Json(UsageReport {
            rows: rows.iter().map(UsageRowView::from).collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_whole_utc_days_both_included() {
        let filter = usage_filter(
            Some("school".into()),
            Some("2026-12-01"),
            Some("2026-12-01"),
        )
        .unwrap();
        assert_eq!(filter.from_ms, Some(1_796_083_200_000));
        assert_eq!(filter.to_ms, Some(1_796_083_200_000 + 86_400_000));
        let bad = usage_filter(None, Some("1.12.2026"), None).unwrap_err();
        assert!(bad.to_string().contains("YYYY-MM-DD"));
    }
}
