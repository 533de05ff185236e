//! Charts: meetings, attendees and load per server over time.

use super::*;

/// The charts' span.
#[derive(Deserialize, Default)]
pub struct ChartQuery {
    hours: Option<u64>,
}

#[derive(Template)]
#[template(path = "charts.html")]
struct ChartsPage {
    chrome: Chrome,
    hours: u64,
    kept_hours: u64,
}

fn chart_hours(query: &ChartQuery) -> u64 {
    query.hours.unwrap_or(3).clamp(1, 24 * 7)
}

/// `GET /console/charts`: meetings, attendees and load per server.
#[handler]
pub async fn charts_page(
    req: &Request,
    Query(query): Query<ChartQuery>,
    Data(state): State<'_>,
) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "charts", "Charts".into()).await?;
            Ok(html(ChartsPage {
                chrome: page.chrome,
                hours: chart_hours(&query),
                kept_hours: state.settings.history_hours,
            }))
        }
        .await,
    )
}

/// `GET /console/series.json?hours=N`: the charts' data (signed in only).
#[handler]
pub async fn series_json(
    req: &Request,
    Query(query): Query<ChartQuery>,
    Data(state): State<'_>,
) -> Response {
    let root = public_root(req, &state.settings);
    if let Err(why) = state.signed(req).await {
        return to_sign_in(req, &root, why);
    }
    let since = state.clock.now_ms() - chart_hours(&query) as i64 * 3_600_000;
    let points = match state.db.series_since(since, None).await {
        Ok(points) => points,
        Err(err) => {
            return Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .content_type("text/plain; charset=utf-8")
                .body(format!("cannot read the series: {err}"));
        }
    };
    let labels: HashMap<String, String> = state
        .admin
        .servers()
        .await
        .map(|servers| {
            views::server_cards(&servers, &[], &HashMap::new(), 0)
                .into_iter()
                .map(|card| (card.id, card.host))
                .collect()
        })
        .unwrap_or_default();
    let data: ChartData = views::chart_data(&points, &labels);
    Response::builder()
        .content_type("application/json")
        .body(serde_json::to_string(&data).unwrap_or_else(|_| "{}".into()))
}
