//! Tenants: limits and use against them, this month's usage, policies.

use super::*;
use chrono::Datelike as _;

/// A tenant as the tenants page shows it.
pub struct TenantCard {
    name: String,
    api_path: String,
    running: u64,
    max_meetings: Option<u64>,
    percent: Option<u64>,
    near: bool,
    max_attendees: Option<u64>,
    month_meetings: u64,
    month_attendee_minutes: u64,
    required_tags: String,
    policy: String,
    secrets: Vec<String>,
    stats_token: bool,
    retention: String,
}

#[derive(Template)]
#[template(path = "tenants.html")]
struct TenantsPage {
    chrome: Chrome,
    tenants: Vec<TenantCard>,
}

/// `GET /console/tenants`: limits, use against them, this month's usage,
/// policies, secrets as fingerprints.
#[handler]
pub async fn tenants_page(req: &Request, Data(state): State<'_>) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "tenants", "Tenants".into()).await?;
            let tenants = match state.admin.tenants().await {
                Ok(tenants) => tenants,
                Err(failure) => return Err(page.problem(&failure)),
            };
            let now =
                chrono::DateTime::from_timestamp_millis(state.clock.now_ms()).unwrap_or_default();
            let month_start = now
                .date_naive()
                .with_day(1)
                .and_then(|day| day.and_hms_opt(0, 0, 0))
                .map(|at| at.and_utc().timestamp_millis());
            let usage = state
                .admin
                .usage(
                    &switchboard_app::records::UsageFilter {
                        tenant: None,
                        from_ms: month_start,
                        to_ms: None,
                    },
                    switchboard_app::usage::Period::Month,
                )
                .await
                .unwrap_or_default();
            let gauges: HashMap<String, TenantGauge> = views::tenant_gauges(&tenants)
                .into_iter()
                .map(|gauge| (gauge.name.clone(), gauge))
                .collect();
            let cards = tenants
                .iter()
                .map(|tenant| {
                    let gauge = gauges.get(&tenant.name);
                    let used: Vec<_> = usage
                        .iter()
                        .filter(|row| row.tenant == tenant.name)
                        .collect();
                    TenantCard {
                        name: tenant.name.clone(),
                        api_path: tenant.api_path.clone(),
                        running: tenant.running_meetings,
                        max_meetings: tenant.limits.max_meetings,
                        percent: gauge.and_then(|g| g.percent),
                        near: gauge.is_some_and(|g| g.near),
                        max_attendees: tenant.limits.max_attendees,
                        month_meetings: used.iter().map(|row| row.meetings).sum(),
                        month_attendee_minutes: used
                            .iter()
                            .map(|row| row.attendee_seconds)
                            .sum::<u64>()
                            / 60,
                        required_tags: tenant.required_tags.join(", "),
                        policy: serde_json::to_string(&tenant.policy).unwrap_or_default(),
                        secrets: tenant.secrets.clone(),
                        stats_token: tenant.stats_token,
                        retention: tenant
                            .retention_days
                            .map_or("the global default".to_owned(), |days| {
                                format!("{days} days after they end")
                            }),
                    }
                })
                .collect();
            Ok(html(TenantsPage {
                chrome: page.chrome,
                tenants: cards,
            }))
        }
        .await,
    )
}
