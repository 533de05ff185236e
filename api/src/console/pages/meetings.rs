//! Meetings: the filtered list, one meeting with its attendees and events, End.

use super::*;

/// The meetings page's filters.
#[derive(Deserialize, Default)]
pub struct MeetingFilter {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    server: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    q: String,
}

/// At most this many meetings on one page.
const MEETINGS_SHOWN: usize = 500;

#[derive(Template)]
#[template(path = "meetings.html")]
struct MeetingsPage {
    chrome: Chrome,
    filter: MeetingFilter,
    tenants: Vec<String>,
    servers: Vec<(String, String)>,
    meetings: Vec<MeetingRow>,
    truncated: bool,
}

/// `GET /console/meetings`: filtered by tenant, server, state and text.
#[handler]
pub async fn meetings_page(
    req: &Request,
    Query(mut filter): Query<MeetingFilter>,
    Data(state): State<'_>,
) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "meetings", "Meetings".into()).await?;
            if filter.state.is_empty() {
                filter.state = "running".into();
            }
            let wanted = match filter.state.as_str() {
                "ended" => Some(MeetingState::Ended),
                "all" => None,
                _ => Some(MeetingState::Running),
            };
            let servers = state.admin.servers().await.unwrap_or_default();
            let hosts: HashMap<String, String> =
                views::server_cards(&servers, &[], &HashMap::new(), 0)
                    .into_iter()
                    .map(|card| (card.id, card.host))
                    .collect();
            let found = state
                .admin
                .meetings(
                    Some(filter.server.as_str()).filter(|s| !s.is_empty()),
                    wanted,
                    Some(filter.tenant.as_str()).filter(|t| !t.is_empty()),
                )
                .await;
            let mut found = match found {
                Ok(found) => found,
                Err(failure) => return Err(page.problem(&failure)),
            };
            let text = filter.q.trim().to_lowercase();
            if !text.is_empty() {
                found.retain(|m| {
                    m.meeting_id.to_lowercase().contains(&text)
                        || m.name.to_lowercase().contains(&text)
                });
            }
            found.sort_by_key(|m| std::cmp::Reverse(m.create_time_ms));
            let truncated = found.len() > MEETINGS_SHOWN;
            found.truncate(MEETINGS_SHOWN);
            let tenants = tenant_names(state).await;
            let mut servers: Vec<(String, String)> = hosts.clone().into_iter().collect();
            servers.sort_by(|a, b| a.1.cmp(&b.1));
            let root = page.chrome.root.clone();
            Ok(html(MeetingsPage {
                meetings: meeting_rows(&root, &found, &hosts),
                chrome: page.chrome,
                filter,
                tenants,
                servers,
                truncated,
            }))
        }
        .await,
    )
}

#[derive(Template)]
#[template(path = "meeting.html")]
struct MeetingPage {
    chrome: Chrome,
    actions: Vec<Action>,
    meeting_id: String,
    name: String,
    tenant: String,
    server_id: String,
    server: String,
    state: &'static str,
    running: bool,
    created: String,
    ended: Option<String>,
    internal_id: String,
    attendees: Vec<Attendee>,
    events: Vec<EventRow>,
}

/// `GET /console/meetings/:tenant/:meeting_id`: one meeting with its
/// attendees (as its server last listed them) and its events.
#[handler]
pub async fn meeting_page(
    req: &Request,
    Path((tenant, meeting_id)): Path<(String, String)>,
    Data(state): State<'_>,
) -> Response {
    answer(
        async {
            let page = Page::open(req, state, "meetings", "Meeting".into()).await?;
            let view = match state.admin.meeting(&tenant, &meeting_id).await {
                Ok(view) => view,
                Err(failure) => return Err(page.problem(&failure)),
            };
            let attendees = match view.server_id.parse() {
                Ok(server) if view.running => state
                    .db
                    .server_samples_of(&[server])
                    .await
                    .ok()
                    .and_then(|samples| samples.into_iter().next())
                    .map(|sample| views::attendees_in(&sample.meetings_xml, &view.internal_id))
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            let events = state
                .admin
                .events(EventFilter {
                    stream: Some(format!("meeting:{}:{}", view.tenant, view.meeting_id)),
                    limit: 50,
                    newest_first: true,
                    ..EventFilter::default()
                })
                .await
                .map(|page| page.events)
                .unwrap_or_default();
            let server = state
                .admin
                .server(&view.server_id)
                .await
                .map(|s| {
                    views::server_cards(&[s], &[], &HashMap::new(), 0)
                        .remove(0)
                        .host
                })
                .unwrap_or_else(|_| view.server_id.clone());
            let root = page.chrome.root.clone();
            let actions = vec![Action {
                href: format!("{}/end", meeting_href(&root, &view)),
                label: "End",
                confirm: format!(
                    "End meeting {}? Everyone in it is disconnected on its server.",
                    view.meeting_id
                ),
                class: "danger",
            }];
            Ok(html(MeetingPage {
                chrome: Chrome {
                    title: format!("Meeting {}", view.meeting_id),
                    ..page.chrome
                },
                actions,
                meeting_id: view.meeting_id.clone(),
                name: view.name.clone(),
                tenant: view.tenant.clone(),
                server_id: view.server_id.clone(),
                server,
                state: if view.running { "running" } else { "ended" },
                running: view.running,
                created: views::moment(view.create_time_ms),
                ended: view.ended_at_ms.map(views::moment),
                internal_id: view.internal_id.clone(),
                attendees,
                events: event_rows(&events),
            }))
        }
        .await,
    )
}

/// `POST /console/meetings/:tenant/:meeting_id/end`.
#[handler]
pub async fn end_meeting(
    req: &Request,
    Path((tenant, meeting_id)): Path<(String, String)>,
    Data(state): State<'_>,
    form: Option<Form<ActionForm>>,
) -> Response {
    answer(
        async {
            let (signed, root, form) = actor(req, state, form).await?;
            match state
                .admin
                .end_meeting(&tenant, &meeting_id, &signed.principal)
                .await
            {
                Ok(view) => Ok(after_action(
                    req,
                    &back_to(&root, &form.back, meeting_href(&root, &view)),
                    "ended",
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
