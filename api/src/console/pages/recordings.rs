//! Recordings: search and publish, unpublish, protect.

use super::*;
use std::collections::BTreeMap;
use switchboard_domain::recording::KEEP_KEY;

/// The recordings page's search.
#[derive(Deserialize, Default)]
pub struct RecordingFilter {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    meeting: String,
    #[serde(default)]
    state: String,
}

/// A recording as a row.
pub struct RecordingRow {
    record_id: String,
    meeting_id: String,
    name: String,
    state: String,
    protected: bool,
    started: String,
    length: String,
    actions: Vec<Action>,
}

/// At most this many recordings on one page.
const RECORDINGS_SHOWN: u64 = 200;

#[derive(Template)]
#[template(path = "recordings.html")]
struct RecordingsPage {
    chrome: Chrome,
    filter: RecordingFilter,
    tenants: Vec<String>,
    recordings: Vec<RecordingRow>,
    total: usize,
}

/// `GET /console/recordings`: search by tenant, meeting and state; publish,
/// unpublish, protect.
#[handler]
pub async fn recordings_page(
    req: &Request,
    Query(mut filter): Query<RecordingFilter>,
    Data(state): State<'_>,
) -> Response {
    answer(async {
        let page = Page::open(req, state, "recordings", "Recordings".into()).await?;
        let tenants = tenant_names(state).await;
        if filter.tenant.is_empty() {
            filter.tenant = tenants[0].clone();
        }
        if filter.state.is_empty() {
            filter.state = "any".into();
        }
        let mut query = RecordingQuery::new(TenantId(filter.tenant.clone()));
        let meeting = filter.meeting.trim();
        if !meeting.is_empty() {
            query.meeting_ids = vec![meeting.to_owned()];
        }
        query.states = match filter.state.as_str() {
            "any" => Some(vec![
                "published".into(),
                "unpublished".into(),
                "processing".into(),
            ]),
            other => Some(vec![other.to_owned()]),
        };
        query.limit = Some(RECORDINGS_SHOWN);
        let found = match state.recordings.find(&query).await {
            Ok(found) => found,
            Err(err) => return Err(page.problem(&Failure::Internal(err.to_string()))),
        };
        let root = page.chrome.root.clone();
        let encode = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let rows = found
            .recordings
            .iter()
            .map(|r| {
                let href = |action: &str| {
                    format!(
                        "{root}/recordings/{}/{}/{action}",
                        encode(&r.tenant.0),
                        encode(&r.record_id)
                    )
                };
                let mut actions = Vec::new();
                if r.state == "published" {
                    actions.push(Action {
                        href: href("unpublish"),
                        label: "Unpublish",
                        confirm: format!("Unpublish {}? Its playback links stop working until it is published again.", r.record_id),
                        class: "",
                    });
                } else if r.state == "unpublished" {
                    actions.push(Action {
                        href: href("publish"),
                        label: "Publish",
                        confirm: format!("Publish {}? Its playback links work again.", r.record_id),
                        class: "",
                    });
                }
                if r.state != "deleted" {
                    actions.push(if r.protected {
                        Action {
                            href: href("unprotect"),
                            label: "Unprotect",
                            confirm: format!("Stop protecting {}? Its playback URL then works without a one-time link.", r.record_id),
                            class: "",
                        }
                    } else {
                        Action {
                            href: href("protect"),
                            label: "Protect",
                            confirm: format!("Protect {}? Playback then needs a one-time link from getRecordings.", r.record_id),
                            class: "",
                        }
                    });
                    let held = r
                        .metadata
                        .get(KEEP_KEY)
                        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
                    actions.push(if held {
                        Action {
                            href: href("release"),
                            label: "Release",
                            confirm: format!("Release the hold on {}? Retention may then expire it.", r.record_id),
                            class: "",
                        }
                    } else {
                        Action {
                            href: href("hold"),
                            label: "Hold",
                            confirm: format!("Hold {}? No retention rule expires it while held (metadata keep=true).", r.record_id),
                            class: "",
                        }
                    });
                }
                let seconds = ((r.end_time_ms - r.start_time_ms).max(0) / 1000) as u64;
                RecordingRow {
                    record_id: r.record_id.clone(),
                    meeting_id: r.meeting_id.clone(),
                    name: r.name.clone(),
                    state: r.state.clone(),
                    protected: r.protected,
                    started: views::moment(r.start_time_ms),
                    length: format!("{}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60),
                    actions,
                }
            })
            .collect();
        Ok(html(RecordingsPage {
            chrome: page.chrome,
            filter,
            tenants,
            recordings: rows,
            total: found.total.map_or(found.recordings.len(), |total| total as usize),
        }))
    }
    .await)
}

/// `POST /console/recordings/:tenant/:record_id/:action`: publish,
/// unpublish, protect or unprotect.
#[handler]
pub async fn recording_action(
    req: &Request,
    Path((tenant, record_id, action)): Path<(String, String, String)>,
    Data(state): State<'_>,
    form: Option<Form<ActionForm>>,
) -> Response {
    answer(async {
        let (signed, root, form) = actor(req, state, form).await?;
        let metadata = EventMetadata {
            actor: signed.principal.name.clone(),
            request_id: None,
            tenant: Some(tenant.clone()),
        };
        let tenant_id = TenantId(tenant.clone());
        let ids = vec![record_id.clone()];
        let result = match action.as_str() {
            "publish" | "unpublish" => state
                .recordings
                .set_published(&tenant_id, &ids, action == "publish", &metadata)
                .await
                .map(|_| if action == "publish" { "published" } else { "unpublished" }),
            "protect" | "unprotect" => state
                .recordings
                .update(
                    &tenant_id,
                    &ids,
                    &RecordingUpdate {
                        protect: Some(action == "protect"),
                        ..RecordingUpdate::default()
                    },
                    &metadata,
                )
                .await
                .map(|_| if action == "protect" { "protected" } else { "unprotected" }),
            "hold" | "release" => {
                let hold = action == "hold";
                let update = RecordingUpdate {
                    set: if hold {
                        BTreeMap::from([(KEEP_KEY.to_owned(), "true".to_owned())])
                    } else {
                        BTreeMap::new()
                    },
                    remove: if hold { vec![] } else { vec![KEEP_KEY.to_owned()] },
                    protect: None,
                };
                state
                    .recordings
                    .update(&tenant_id, &ids, &update, &metadata)
                    .await
                    .map(|_| if hold { "held" } else { "released" })
            }
            _ => {
                return Err(action_failed(
                    req,
                    StatusCode::NOT_FOUND,
                    &format!("no recording action `{action}`: use publish, unpublish, protect, unprotect, hold or release"),
                ));
            }
        };
        match result {
            Ok(done) => {
                let fallback = format!(
                    "{root}/recordings?tenant={}",
                    url::form_urlencoded::byte_serialize(tenant.as_bytes()).collect::<String>()
                );
                Ok(after_action(req, &back_to(&root, &form.back, fallback), done))
            }
            Err(err) => Err(action_failed(req, StatusCode::CONFLICT, &err.to_string())),
        }
    }
    .await)
}
