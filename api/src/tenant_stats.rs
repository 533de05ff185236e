//! A tenant's own stats, without the admin API: `GET /t/NAME/stats` (and
//! `/stats` on the tenant's host) as JSON, `GET /t/NAME/metrics` in
//! Prometheus text. Authenticated with the
//! tenant's stats token (`switchboard tenants stats-token NAME`), sent as
//! `Authorization: Bearer TOKEN` or `?token=TOKEN`.

use crate::admin::api::problem;
use poem::http::{StatusCode, header};
use poem::web::{Data, Path};
use poem::{Request, Response, handler};
use std::fmt::Write as _;
use std::sync::Arc;
use switchboard_app::stats::{StatsError, StatsService, TenantStats};

/// The token of a request: the bearer header, else `?token=`.
fn token_of(request: &Request) -> String {
    let bearer = request
        .header(header::AUTHORIZATION)
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    match bearer {
        Some(token) => token.to_owned(),
        None => request
            .uri()
            .query()
            .and_then(|query| {
                url::form_urlencoded::parse(query.as_bytes())
                    .find(|(key, _)| key == "token")
                    .map(|(_, value)| value.into_owned())
            })
            .unwrap_or_default(),
    }
}

fn problem_response(status: StatusCode, detail: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = problem(status.as_u16(), title, detail);
    Response::builder()
        .status(status)
        .content_type("application/problem+json")
        .header(header::WWW_AUTHENTICATE, "Bearer")
        .body(serde_json::to_string(&body).unwrap_or_default())
}

async fn stats_of(
    service: &StatsService,
    tenant: &str,
    request: &Request,
) -> Result<TenantStats, Response> {
    service
        .stats(tenant, &token_of(request))
        .await
        .map_err(|err| match err {
            StatsError::Unauthorized => problem_response(
                StatusCode::UNAUTHORIZED,
                "send the tenant's stats token (`switchboard tenants stats-token NAME` issues \
                 one) as `Authorization: Bearer TOKEN` or `?token=TOKEN`",
            ),
            StatsError::Store(err) => {
                tracing::error!(error = %err, "tenant stats: database failure");
                problem_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Switchboard's database is unavailable; please retry",
                )
            }
        })
}

/// An instant as RFC 3339 (UTC).
fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The JSON document of a tenant's stats.
pub fn stats_json(stats: &TenantStats) -> serde_json::Value {
    serde_json::json!({
        "tenant": stats.tenant,
        "meetings": {
            "running": stats.meetings.len(),
            "limit": stats.max_meetings,
        },
        "attendees": {
            "current": stats.attendees,
            "limit": stats.max_attendees,
        },
        "usage_this_month": {
            "period": stats.month.period,
            "meetings": stats.month.meetings,
            "meeting_minutes": stats.month.meeting_minutes(),
            "attendee_minutes": stats.month.attendee_minutes(),
            "peak_concurrent_attendees": stats.month.peak_concurrent_attendees,
        },
        "running_meetings": stats.meetings.iter().map(|meeting| serde_json::json!({
            "meeting_id": meeting.meeting_id,
            "name": meeting.name,
            "attendees": meeting.attendees,
            "started_at": rfc3339(meeting.started_at_ms),
        })).collect::<Vec<_>>(),
    })
}

/// Escapes a Prometheus label value.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text of a tenant's stats.
pub fn stats_metrics(stats: &TenantStats) -> String {
    let tenant = label(&stats.tenant);
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, samples: Vec<(String, u64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{{tenant=\"{tenant}\"{labels}}} {value}");
        }
    };
    gauge(
        "switchboard_tenant_meetings",
        "Meetings the tenant runs now.",
        vec![(String::new(), stats.meetings.len() as u64)],
    );
    gauge(
        "switchboard_tenant_attendees",
        "Attendees in the tenant's running meetings.",
        vec![(String::new(), stats.attendees)],
    );
    if let Some(limit) = stats.max_meetings {
        gauge(
            "switchboard_tenant_meetings_limit",
            "The tenant's cap on running meetings.",
            vec![(String::new(), limit)],
        );
    }
    if let Some(limit) = stats.max_attendees {
        gauge(
            "switchboard_tenant_attendees_limit",
            "The tenant's cap on attendees.",
            vec![(String::new(), limit)],
        );
    }
    let mut counter = |name: &str, help: &str, value: String| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name}{{tenant=\"{tenant}\"}} {value}");
    };
    counter(
        "switchboard_tenant_month_meeting_minutes",
        "Meeting-minutes of the runs started this month (UTC) that ended.",
        format!("{}", stats.month.meeting_minutes()),
    );
    counter(
        "switchboard_tenant_month_attendee_minutes",
        "Attendee-minutes of the runs started this month (UTC) that ended.",
        format!("{}", stats.month.attendee_minutes()),
    );
    let mut gauge = |name: &str, help: &str, samples: Vec<(String, u64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{{tenant=\"{tenant}\"{labels}}} {value}");
        }
    };
    gauge(
        "switchboard_tenant_meeting_attendees",
        "Attendees of one running meeting.",
        stats
            .meetings
            .iter()
            .map(|m| {
                (
                    format!(",meeting=\"{}\"", label(&m.meeting_id)),
                    m.attendees,
                )
            })
            .collect(),
    );
    out
}

fn json_response(stats: &TenantStats) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(stats_json(stats).to_string())
}

fn metrics_response(stats: &TenantStats) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
        .header(header::CACHE_CONTROL, "no-store")
        .body(stats_metrics(stats))
}

/// The tenant a request's host names (its first label), if any.
fn host_tenant(request: &Request) -> Option<String> {
    request
        .header(header::HOST)
        .and_then(crate::bbb::tenancy::host_label)
}

/// The stats of `tenant` rendered by `render`, or the refusal.
async fn answer(
    service: &StatsService,
    tenant: &str,
    request: &Request,
    render: fn(&TenantStats) -> Response,
) -> Response {
    match stats_of(service, tenant, request).await {
        Ok(stats) => render(&stats),
        Err(response) => response,
    }
}

/// `GET /t/:tenant/stats`.
#[handler]
pub async fn path_stats(
    request: &Request,
    Path(tenant): Path<String>,
    service: Data<&Arc<StatsService>>,
) -> Response {
    answer(&service, &tenant, request, json_response).await
}

/// `GET /t/:tenant/metrics`.
#[handler]
pub async fn path_metrics(
    request: &Request,
    Path(tenant): Path<String>,
    service: Data<&Arc<StatsService>>,
) -> Response {
    answer(&service, &tenant, request, metrics_response).await
}

/// `GET /stats` on a tenant's host.
#[handler]
pub async fn host_stats(request: &Request, service: Data<&Arc<StatsService>>) -> Response {
    let tenant = host_tenant(request).unwrap_or_default();
    answer(&service, &tenant, request, json_response).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_app::stats::TenantMeetingStats;

    fn sample() -> TenantStats {
        TenantStats {
            tenant: "school".into(),
            meetings: vec![TenantMeetingStats {
                meeting_id: "room \"1\"".into(),
                name: "Room".into(),
                attendees: 4,
                started_at_ms: 1_700_000_000_000,
            }],
            attendees: 5,
            max_meetings: Some(10),
            max_attendees: None,
            month: switchboard_app::usage::UsageRow {
                tenant: "school".into(),
                period: "2026-12".into(),
                meetings: 3,
                meeting_seconds: 5400,
                attendee_seconds: 60,
                ..Default::default()
            },
        }
    }

    #[test]
    fn the_json_shows_usage_against_limits() {
        let json = stats_json(&sample());
        assert_eq!(json["meetings"]["running"], 1);
        assert_eq!(json["meetings"]["limit"], 10);
        assert!(json["attendees"]["limit"].is_null());
        assert_eq!(
            json["running_meetings"][0]["started_at"],
            "2023-11-14T22:13:20Z"
        );
    }

    #[test]
    fn the_metrics_are_prometheus_text_with_escaped_labels() {
        let text = stats_metrics(&sample());
        assert!(text.contains("switchboard_tenant_meetings{tenant=\"school\"} 1\n"));
        assert!(text.contains("switchboard_tenant_meetings_limit{tenant=\"school\"} 10\n"));
        assert!(!text.contains("switchboard_tenant_attendees_limit"));
        assert!(text.contains(
            "switchboard_tenant_meeting_attendees{tenant=\"school\",meeting=\"room \\\"1\\\"\"} 4\n"
        ));
    }
}
