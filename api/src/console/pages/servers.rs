//! The overview and the servers: cards, a server's page and its actions.

use super::*;

/// Since when each server's health is what it is: the time of its last
/// online or offline event (or its addition).
async fn health_since(state: &ConsoleState, ids: &[String]) -> HashMap<String, i64> {
    let reads = ids.iter().map(|id| async move {
        let page = state
            .admin
            .events(EventFilter {
                stream: Some(format!("server:{id}")),
                limit: 50,
                newest_first: true,
                ..EventFilter::default()
            })
            .await
            .ok()?;
        page.events
            .iter()
            .find(|event| {
                matches!(
                    event.event_type.as_str(),
                    "ServerWentOnline" | "ServerWentOffline" | "ServerAdded"
                )
            })
            .map(|event| (id.clone(), event.recorded_at.timestamp_millis()))
    });
    futures::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn cards(state: &ConsoleState) -> Result<Vec<ServerCard>, Failure> {
    let servers = state.admin.servers().await?;
    let samples = state
        .db
        .server_samples()
        .await
        .map_err(|err| Failure::Internal(err.to_string()))?;
    let ids: Vec<String> = servers.iter().map(|s| s.id.clone()).collect();
    let since = health_since(state, &ids).await;
    Ok(views::server_cards(
        &servers,
        &samples,
        &since,
        state.clock.now_ms(),
    ))
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    totals: PoolTotals,
    cards: Vec<ServerCard>,
    near: Vec<TenantGauge>,
    near_percent: u64,
    updated: String,
}

/// `GET /console/`: the pool at a glance.
#[handler]
pub async fn overview_page(req: &Request, Data(state): State<'_>) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "overview", "Overview".into()).await?;
            let cards = match cards(state).await {
                Ok(cards) => cards,
                Err(failure) => return Err(page.problem(&failure)),
            };
            let tenants = match state.admin.tenants().await {
                Ok(tenants) => tenants,
                Err(failure) => return Err(page.problem(&failure)),
            };
            Ok(html(OverviewPage {
                totals: views::totals(&cards),
                cards,
                near: views::tenant_gauges(&tenants)
                    .into_iter()
                    .filter(|gauge| gauge.near)
                    .collect(),
                near_percent: views::NEAR_LIMIT_PERCENT,
                updated: views::moment(state.clock.now_ms()),
                chrome: page.chrome,
            }))
        }
        .await,
    )
}

#[derive(Template)]
#[template(path = "servers.html")]
struct ServersPage {
    chrome: Chrome,
    cards: Vec<ServerCard>,
}

/// `GET /console/servers`.
#[handler]
pub async fn servers_page(req: &Request, Data(state): State<'_>) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "servers", "Servers".into()).await?;
            match cards(state).await {
                Ok(cards) => Ok(html(ServersPage {
                    chrome: page.chrome,
                    cards,
                })),
                Err(failure) => Err(page.problem(&failure)),
            }
        }
        .await,
    )
}

#[derive(Template)]
#[template(path = "server.html")]
struct ServerPage {
    chrome: Chrome,
    cards: Vec<ServerCard>,
    url: String,
    tag: Option<String>,
    metrics_error: Option<String>,
    actions: Vec<Action>,
    meetings: Vec<MeetingRow>,
    events: Vec<EventRow>,
}

/// `GET /console/servers/:id`: one server with its meetings, recent
/// events and actions.
#[handler]
pub async fn server_page(
    req: &Request,
    Path(id): Path<String>,
    Data(state): State<'_>,
) -> Response {
    answer(async {
        let page = Page::open(req, state, "servers", "Server".into()).await?;
        let view = match state.admin.server(&id).await {
            Ok(view) => view,
            Err(failure) => return Err(page.problem(&failure)),
        };
        let mut all = match cards(state).await {
            Ok(cards) => cards,
            Err(failure) => return Err(page.problem(&failure)),
        };
        all.retain(|card| card.id == view.id);
        let meetings = state
            .admin
            .meetings(Some(&view.id), Some(MeetingState::Running), None)
            .await
            .unwrap_or_default();
        let events = state
            .admin
            .events(EventFilter {
                stream: Some(format!("server:{}", view.id)),
                limit: 25,
                newest_first: true,
                ..EventFilter::default()
            })
            .await
            .map(|page| page.events)
            .unwrap_or_default();
        let root = page.chrome.root.clone();
        let host = all.first().map(|card| card.host.clone()).unwrap_or_default();
        let hosts = HashMap::from([(view.id.clone(), host.clone())]);
        let href = |action: &str| format!("{root}/servers/{}/{action}", view.id);
        let actions = vec![
            Action {
                href: href("enable"),
                label: "Enable",
                confirm: format!("Enable {host}? It takes new meetings again."),
                class: "",
            },
            Action {
                href: href("cordon"),
                label: "Cordon",
                confirm: format!(
                    "Cordon {host}? Its running meetings go on and joins still reach them; new meetings go to other servers. Once it runs no meeting it is disabled."
                ),
                class: "",
            },
            Action {
                href: href("disable"),
                label: "Disable",
                confirm: format!(
                    "Disable {host}? It takes no meetings and is no longer polled; meetings recorded there stay recorded until they end."
                ),
                class: "",
            },
            Action {
                href: href("panic"),
                label: "Panic",
                confirm: format!(
                    "Panic {host}? It is disabled at once and every meeting recorded there is forgotten, so the next create of each starts it on another server. Use it when the server is lost. Its meetings are not ended on it."
                ),
                class: "danger",
            },
        ];
        Ok(html(ServerPage {
            chrome: Chrome {
                title: format!("Server {host}"),
                ..page.chrome
            },
            cards: all,
            url: view.url.clone(),
            tag: view.tag.clone(),
            metrics_error: view.metrics_error.clone(),
            actions,
            meetings: meeting_rows(&root, &meetings, &hosts),
            events: event_rows(&events),
        }))
    }
    .await)
}

/// `POST /console/servers/:id/:action`: enable, cordon, disable or panic.
#[handler]
pub async fn server_action(
    req: &Request,
    Path((id, action)): Path<(String, String)>,
    Data(state): State<'_>,
    form: Option<Form<ActionForm>>,
) -> Response {
    answer(
        async {
            let (signed, root, form) = actor(req, state, form).await?;
            let principal = &signed.principal;
            let result = match action.as_str() {
                "enable" => state
                    .admin
                    .set_state(&id, ServerCommand::Enable, principal)
                    .await
                    .map(|_| "enabled"),
                "cordon" => state
                    .admin
                    .set_state(&id, ServerCommand::Cordon, principal)
                    .await
                    .map(|_| "cordoned"),
                "disable" => state
                    .admin
                    .set_state(&id, ServerCommand::Disable, principal)
                    .await
                    .map(|_| "disabled"),
                "panic" => state
                    .admin
                    .panic(&id, PanicOptions { end_meetings: None }, principal)
                    .await
                    .map(|_| "panicked"),
                _ => Err(Failure::NotFound(format!(
                    "no server action `{action}`: use enable, cordon, disable or panic"
                ))),
            };
            match result {
                Ok(done) => Ok(after_action(
                    req,
                    &back_to(&root, &form.back, format!("{root}/servers/{id}")),
                    done,
                )),
                Err(failure) => Err(action_failed(
                    req,
                    status_of(&failure),
                    &failure.to_string(),
                )),
            }
        }
        .await,
    )
}
