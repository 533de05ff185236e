//! bbb-webhooks on the simulated server: `hooks/create`, `hooks/destroy`
//! and `hooks/list` (answered in bbb-webhooks' XML), and its events
//! (`meeting-created`, `user-joined`, `user-left`, `meeting-ended`) posted
//! to every matching hook as bbb-webhooks posts them: a form body
//! `domain=...&event=[<event JSON>]&timestamp=...` and
//! `?checksum=sha1(callbackURL + body + secret)`.

use crate::state::{Attendee, Meeting, Role, Shared, SimHook, random_token};
use sha1::{Digest, Sha1};
use std::sync::PoisonError;
use std::time::Duration;
use switchboard_domain::bbb::params::Params;
use switchboard_domain::bbb::xml_write::{self as xml, XmlWriter};

/// `hooks/create`.
pub(crate) fn create(shared: &Shared, params: &Params) -> String {
    let Some(url) = params.non_empty("callbackURL") else {
        return xml::error(
            "missingParamCallbackURL",
            "You must specify a callbackURL in the parameters.",
        );
    };
    let mut hooks = shared.hooks.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = hooks.iter().find(|hook| hook.callback_url == url) {
        let mut w = XmlWriter::response("SUCCESS");
        w.text("hookID", &existing.id);
        w.text("messageKey", "duplicateWarning");
        w.text("message", "There is already a hook for this callback URL.");
        return w.finish();
    }
    let hook = SimHook {
        id: random_token(16),
        callback_url: url.to_owned(),
        meeting_id: params.non_empty("meetingID").map(str::to_owned),
    };
    let mut w = XmlWriter::response("SUCCESS");
    w.text("hookID", &hook.id);
    w.value("permanentHook", false);
    w.value("rawData", false);
    hooks.push(hook);
    w.finish()
}

/// `hooks/destroy`.
pub(crate) fn destroy(shared: &Shared, params: &Params) -> String {
    let Some(id) = params.non_empty("hookID") else {
        return xml::error(
            "missingParamHookID",
            "You must specify a hookID in the parameters.",
        );
    };
    let mut hooks = shared.hooks.lock().unwrap_or_else(PoisonError::into_inner);
    let before = hooks.len();
    hooks.retain(|hook| hook.id != id);
    if hooks.len() == before {
        return xml::error("destroyMissingHook", "The hook informed was not found.");
    }
    let mut w = XmlWriter::response("SUCCESS");
    w.value("removed", true);
    w.finish()
}

/// `hooks/list`.
pub(crate) fn list(shared: &Shared) -> String {
    let hooks = shared.hooks.lock().unwrap_or_else(PoisonError::into_inner);
    let mut w = XmlWriter::response("SUCCESS");
    w.open("hooks");
    for hook in hooks.iter() {
        w.open("hook");
        w.text("hookID", &hook.id);
        w.text("callbackURL", &hook.callback_url);
        if let Some(meeting_id) = &hook.meeting_id {
            w.text("meetingID", meeting_id);
        }
        w.value("permanentHook", false);
        w.value("rawData", false);
        w.close("hook");
    }
    w.close("hooks");
    w.finish()
}

/// The meeting part of an event.
fn meeting_json(meeting: &Meeting) -> serde_json::Value {
    serde_json::json!({
        "internal-meeting-id": meeting.internal_id,
        "external-meeting-id": meeting.meeting_id,
        "name": meeting.name,
        "is-breakout": meeting.is_breakout,
    })
}

/// The user part of an event.
fn user_json(attendee: &Attendee) -> serde_json::Value {
    serde_json::json!({
        "internal-user-id": attendee.user_id,
        "external-user-id": attendee.user_id,
        "name": attendee.full_name,
        "role": if attendee.role == Role::Moderator { "MODERATOR" } else { "VIEWER" },
        "presenter": attendee.is_presenter,
    })
}

/// The events of a meeting's end: each attendee leaves, then the meeting
/// ends.
pub(crate) fn fire_ended(shared: &Shared, meeting: &Meeting) {
    for attendee in &meeting.attendees {
        fire(shared, "user-left", meeting, Some(attendee));
    }
    fire(shared, "meeting-ended", meeting, None);
}

/// Posts event `id` about `meeting` (and `user`) to every matching hook,
/// in the background.
pub(crate) fn fire(shared: &Shared, id: &str, meeting: &Meeting, user: Option<&Attendee>) {
    let hooks: Vec<SimHook> = shared
        .hooks
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|hook| {
            hook.meeting_id
                .as_deref()
                .is_none_or(|wanted| wanted == meeting.meeting_id)
        })
        .cloned()
        .collect();
    if hooks.is_empty() {
        return;
    }
    let now = chrono::Utc::now().timestamp_millis();
    let mut attributes = serde_json::json!({ "meeting": meeting_json(meeting) });
    if let Some(user) = user {
        attributes["user"] = user_json(user);
    }
    let event = serde_json::json!({
        "data": {
            "type": "event",
            "id": id,
            "attributes": attributes,
            "event": { "ts": now },
        }
    });
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("domain", shared.origin.trim_start_matches("http://"))
        .append_pair("event", &format!("[{event}]"))
        .append_pair("timestamp", &now.to_string())
        .finish();
    let secret = shared.secret().to_owned();
    let fired = shared.fired.clone();
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap_or_default();
        for hook in hooks {
            let checksum = hex::encode(Sha1::digest(
                format!("{}{body}{secret}", hook.callback_url).as_bytes(),
            ));
            let separator = if hook.callback_url.contains('?') {
                '&'
            } else {
                '?'
            };
            let url = format!("{}{separator}checksum={checksum}", hook.callback_url);
            let status = client
                .post(&url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await
                .map(|response| response.status().as_u16())
                .unwrap_or(0);
            fired
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((hook.callback_url.clone(), status));
        }
    });
}
