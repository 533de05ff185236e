//! BBB's end-of-meeting callbacks, fired as bbb-web fires them when a
//! meeting ends (by `end` or by itself), for meetings that are not
//! breakouts: `meetingEndedURL` (GET, as given), `meta_endCallbackUrl` (GET,
//! its query kept, `recordingmarks` and `meetingID` appended) and
//! `meta_analytics-callback-url` (POST JSON with `Authorization: Bearer
//! <JWT HS512 {exp}>` signed with the server's secret). Each is tried once,
//! with BBB's 10 s timeout and no redirect followed.

use crate::state::{Meeting, Shared};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// One callback to fire.
enum Call {
    Get(String),
    PostJson {
        url: String,
        body: String,
        token: String,
    },
}

/// Fires the callbacks the ended meeting asked for, in the background.
pub(crate) fn fire_end_callbacks(shared: &Shared, meeting: Meeting) {
    if !shared.fire_callbacks.load(Ordering::Relaxed) || meeting.is_breakout {
        return;
    }
    let calls = calls_for(&meeting, shared.secret());
    if calls.is_empty() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let fired = shared.fired.clone();
    runtime.spawn(async move {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap_or_default();
        for call in calls {
            fire(&client, call, &fired).await;
        }
    });
}

async fn fire(client: &reqwest::Client, call: Call, fired: &Arc<Mutex<Vec<(String, u16)>>>) {
    let (url, request) = match call {
        Call::Get(url) => (url.clone(), client.get(&url)),
        Call::PostJson { url, body, token } => (
            url.clone(),
            client
                .post(&url)
                .header("Content-Type", "application/json")
                .bearer_auth(token)
                .body(body),
        ),
    };
    let status = request
        .send()
        .await
        .map(|response| response.status().as_u16())
        .unwrap_or(0);
    fired
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((url, status));
}

/// The calls an ended meeting makes, in BBB's order.
fn calls_for(meeting: &Meeting, secret: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    let meta = |key: &str| {
        meeting
            .metadata
            .iter()
            .find(|(name, value)| name == key && !value.is_empty())
            .map(|(_, value)| value.clone())
    };
    if let Some(url) = meeting
        .create_params
        .iter()
        .find(|(key, value)| key == "meetingEndedURL" && !value.is_empty())
        .map(|(_, value)| value.clone())
    {
        calls.push(Call::Get(url));
    }
    if let Some(url) = meta("endcallbackurl") {
        let separator = if url.contains('?') { '&' } else { '?' };
        let appended = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("recordingmarks", "false")
            .append_pair("meetingID", &meeting.meeting_id)
            .finish();
        calls.push(Call::Get(format!("{url}{separator}{appended}")));
    }
    if let Some(url) = meta("analytics-callback-url")
        && let Ok(token) = analytics_token(secret)
    {
        calls.push(Call::PostJson {
            url,
            body: analytics_body(meeting),
            token,
        });
    }
    calls
}

/// The analytics JSON BBB posts (its main fields).
fn analytics_body(meeting: &Meeting) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let attendees: Vec<serde_json::Value> = meeting
        .attendees
        .iter()
        .map(|attendee| {
            serde_json::json!({
                "ext_user_id": attendee.user_id,
                "name": attendee.full_name,
                "moderator": attendee.role == crate::state::Role::Moderator,
                "joins": [meeting.create_time],
                "leaves": [now],
                "duration": (now - meeting.create_time) / 1000,
                "recent_talking_time": "",
                "engagement": {"chats": 0, "talks": 0, "raisehand": 0, "emojis": 0, "poll_votes": 0, "talk_time": 0},
            })
        })
        .collect();
    let metadata: serde_json::Map<String, serde_json::Value> = meeting
        .metadata
        .iter()
        .map(|(key, value)| (key.clone(), serde_json::Value::String(value.clone())))
        .collect();
    serde_json::json!({
        "version": "1.0",
        "meeting_id": meeting.meeting_id,
        "internal_meeting_id": meeting.internal_id,
        "data": {
            "metadata": metadata,
            "duration": (now - meeting.create_time) / 1000,
            "start": meeting.create_date,
            "finish": now,
            "attendees": attendees,
            "files": [],
            "polls": [],
        },
    })
    .to_string()
}

#[derive(serde::Serialize)]
struct Claims {
    exp: i64,
}

/// BBB's token: HS512, `exp` 24 h from now, the server's secret.
fn analytics_token(secret: &str) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &Claims {
            exp: chrono::Utc::now().timestamp() + 24 * 3600,
        },
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}
