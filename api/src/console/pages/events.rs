//! The event log and the pool at a moment.

use super::*;

/// The events page's filters (times as `datetime-local` sends them, UTC).
#[derive(Deserialize, Default)]
pub struct EventsFilter {
    #[serde(default)]
    stream: String,
    #[serde(rename = "type", default)]
    event_type: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// A UTC moment as `datetime-local` sends it (`2026-12-06T12:03` or with
/// seconds) or RFC 3339; empty is `None`.
pub fn parse_local(text: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.with_timezone(&chrono::Utc)));
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(at) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(Some(at.and_utc()));
        }
    }
    Err(format!(
        "`{text}` is not a time: use YYYY-MM-DDTHH:MM[:SS] (UTC)"
    ))
}

fn local_input(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    chrome: Chrome,
    filter: EventsFilter,
    events: Vec<EventRow>,
    error: Option<String>,
    pool_at_default: String,
}

/// `GET /console/events`: the log, newest first, filtered.
#[handler]
pub async fn events_page(
    req: &Request,
    Query(filter): Query<EventsFilter>,
    Data(state): State<'_>,
) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "events", "Events".into()).await?;
            let now =
                chrono::DateTime::from_timestamp_millis(state.clock.now_ms()).unwrap_or_default();
            let nonempty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
            let times =
                parse_local(&filter.from).and_then(|from| Ok((from, parse_local(&filter.to)?)));
            let (events, error) = match times {
                Ok((from, to)) => match state
                    .admin
                    .events(EventFilter {
                        stream: nonempty(&filter.stream),
                        event_type: nonempty(&filter.event_type),
                        actor: nonempty(&filter.actor),
                        from,
                        to,
                        after: 0,
                        limit: 200,
                        newest_first: true,
                    })
                    .await
                {
                    Ok(page) => (page.events, None),
                    Err(failure) => (Vec::new(), Some(failure.to_string())),
                },
                Err(message) => (Vec::new(), Some(message)),
            };
            Ok(html(EventsPage {
                chrome: page.chrome,
                filter,
                events: event_rows(&events),
                error,
                pool_at_default: local_input(now - chrono::Duration::hours(1)),
            }))
        }
        .await,
    )
}

/// The pool-at form.
#[derive(Deserialize, Default)]
pub struct PoolAtQuery {
    #[serde(default)]
    at: String,
}

#[derive(Template)]
#[template(path = "pool_at.html")]
struct PoolAtPage {
    chrome: Chrome,
    at: String,
    at_input: String,
    position: i64,
    totals: PoolTotals,
    cards: Vec<ServerCard>,
    running: Vec<(String, String, String)>,
}

/// `GET /console/pool-at?at=…`: the pool as the log had it at a moment,
/// shown as the overview shows the pool now.
#[handler]
pub async fn pool_at_page(
    req: &Request,
    Query(query): Query<PoolAtQuery>,
    Data(state): State<'_>,
) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "events", "The pool at a moment".into()).await?;
            let at = match parse_local(&query.at) {
                Ok(Some(at)) => at,
                Ok(None) => {
                    return Err(page.problem(&Failure::Invalid(
                        "choose a moment (UTC) to show the pool at".into(),
                    )));
                }
                Err(message) => return Err(page.problem(&Failure::Invalid(message))),
            };
            let cluster = match state.admin.history(at).await {
                Ok(cluster) => cluster,
                Err(failure) => return Err(page.problem(&failure)),
            };
            let cards = views::cards_at(&cluster);
            let hosts: HashMap<&str, &str> = cards
                .iter()
                .map(|c| (c.id.as_str(), c.host.as_str()))
                .collect();
            let running = cluster
                .meetings
                .iter()
                .filter(|m| m.running)
                .map(|m| {
                    let server = m
                        .server_id
                        .as_deref()
                        .map(|id| hosts.get(id).copied().unwrap_or(id).to_owned())
                        .unwrap_or_default();
                    (m.tenant.clone(), m.meeting_id.clone(), server)
                })
                .collect();
            Ok(html(PoolAtPage {
                chrome: Chrome {
                    title: format!("The pool at {}", views::moment(at.timestamp_millis())),
                    ..page.chrome
                },
                at: views::moment(at.timestamp_millis()),
                at_input: local_input(at),
                position: cluster.position,
                totals: views::totals(&cards),
                cards,
                running,
            }))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_as_a_browser_sends_them_in_utc() {
        let at = parse_local("2026-12-06T12:03").unwrap().unwrap();
        assert_eq!(at.to_rfc3339(), "2026-12-06T12:03:00+00:00");
        let at = parse_local("2026-12-06T12:03:04").unwrap().unwrap();
        assert_eq!(local_input(at), "2026-12-06T12:03:04");
        assert_eq!(parse_local(" ").unwrap(), None);
        assert!(parse_local("yesterday").unwrap_err().contains("YYYY-MM-DD"));
        assert!(parse_local("2026-12-06T12:03:04+01:00").unwrap().is_some());
    }
}
