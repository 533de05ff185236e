//! A server calling one of Switchboard's callback URLs for a run.
//!
//! - `ended` (the server's `meetingEndedURL`) and `end` (its
//!   `meta_endCallbackUrl`): the run is recorded as ended at once (polling
//!   stays the safety net), and the front-end's own `meetingEndedURL` (GET,
//!   URL as given) and `meta_endCallbackUrl` (GET, its query kept, then
//!   BBB's `recordingmarks` and the front-end's `meetingID`) are written to
//!   the outbox in the same transaction.
//! - `analytics`: the server's bearer token is checked with that server's
//!   secret (HS512), the body's `meeting_id` is made the front-end's, and it
//!   is written to the outbox, to be signed with the front-end's secret.
//!
//! A delivery's id is made of the run's nonce and the kind, so a server that
//! calls twice causes one delivery.

use super::{CallbackService, Delivery, ServerCallback};
use crate::error::StoreError;
use crate::records::{CallbackKind, CallbackSigning, MeetingRunRecord, NewCallback};
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::{MeetingId, meeting_stream};
use switchboard_domain::meeting::{EndReason, Meeting, MeetingCommand, RunCallbacks};
use thiserror::Error;

/// What a server sent to a callback URL.
#[derive(Debug, Clone, Default)]
pub struct ServerCall {
    /// The URL's query (BBB appends `recordingmarks` and `meetingID` to the
    /// end callback).
    pub query: String,
    /// The body (the analytics JSON).
    pub body: bytes::Bytes,
    /// The `Authorization: Bearer` token, if any.
    pub bearer: Option<String>,
}

/// Why a server's callback was refused.
#[derive(Debug, Error)]
pub enum ReceiveError {
    /// No run has this URL (a bad signature, an unknown nonce).
    #[error("no run has this callback URL")]
    Unknown,
    /// The analytics token is missing, not HS512 or not the server's.
    #[error("{0}")]
    Unauthorized(String),
    /// The body cannot be read.
    #[error("{0}")]
    Invalid(String),
    /// The run's server still runs it (a forged or replayed end URL).
    #[error("the meeting still runs on its server")]
    StillRunning,
    /// The database failed; the server should call again.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CallbackService {
    /// Handles a server's call of callback URL `kind` / `nonce` /
    /// `signature`; returns how many deliveries it caused (0 when the
    /// front-end asked for none).
    pub async fn receive(
        &self,
        kind: ServerCallback,
        nonce: &str,
        signature: &str,
        call: &ServerCall,
    ) -> Result<usize, ReceiveError> {
        if !self.links.verify(kind, nonce, signature) {
            return Err(ReceiveError::Unknown);
        }
        if kind == ServerCallback::Webhook {
            return self.webhook_events(nonce, call).await;
        }
        let run = self
            .store
            .meeting_run_by_nonce(nonce)
            .await?
            .ok_or(ReceiveError::Unknown)?;
        let callbacks = run.callbacks.clone().unwrap_or_default();
        match kind {
            ServerCallback::Ended | ServerCallback::EndCallback => {
                if self.still_running_on_server(&run).await {
                    tracing::warn!(meeting = %run.meeting_id, "an end callback for a run its server still runs is ignored");
                    return Err(ReceiveError::StillRunning);
                }
                let marks =
                    (kind == ServerCallback::EndCallback).then(|| recording_marks(&call.query));
                let deliveries = end_deliveries(
                    &run,
                    &callbacks,
                    marks,
                    self.clock.now_ms(),
                    self.settings.retry_for,
                );
                let count = deliveries.len();
                self.record_end(&run, deliveries).await?;
                Ok(count)
            }
            ServerCallback::Analytics => self.analytics(&run, &callbacks, call).await,
            ServerCallback::Webhook => unreachable!("handled above"),
        }
    }

    /// Whether the run's server says it still runs that very run (an end URL
    /// someone else called). BBB calls its end URLs once the meeting ended
    /// (it answers `notFound`, or shows an `endTime`); a server that cannot
    /// be asked is believed.
    async fn still_running_on_server(&self, run: &MeetingRunRecord) -> bool {
        let (Some(backends), Some(server_id)) = (&self.backends, run.server_id) else {
            return false;
        };
        let Ok(Some(server)) = self.store.server(server_id).await else {
            return false;
        };
        let mut params = switchboard_domain::bbb::params::Params::default();
        params.set("meetingID", run.meeting_id.as_str());
        let Ok(answer) = backends
            .call(&server, "getMeetingInfo", &params.to_query(), None)
            .await
        else {
            return false;
        };
        answer.summary.is_success()
            && answer.summary.field("internalMeetingID") == Some(run.internal_id.as_str())
            && answer
                .summary
                .field("endTime")
                .is_none_or(|end| end.trim() == "0" || end.trim().is_empty())
    }

    /// Records the run as ended (if it still runs) with `deliveries`, in one
    /// transaction.
    async fn record_end(
        &self,
        run: &MeetingRunRecord,
        deliveries: Vec<NewCallback>,
    ) -> Result<(), ReceiveError> {
        let meeting_id = MeetingId::parse(&run.meeting_id)
            .map_err(|err| ReceiveError::Invalid(format!("the run's meetingID: {err}")))?;
        let stream = meeting_stream(&run.tenant, &meeting_id);
        let command = MeetingCommand::RecordEnded {
            reason: EndReason::ServerReported,
            at_ms: self.clock.now_ms(),
            only_run: Some(run.internal_id.clone()),
        };
        let metadata = EventMetadata {
            actor: run
                .server_id
                .map(|server| format!("server:{server}"))
                .unwrap_or_else(|| "server".to_owned()),
            request_id: None,
            tenant: Some(run.tenant.to_string()),
        };
        self.executor
            .execute_with_callbacks::<Meeting>(&stream, &command, &metadata, &|_| {
                deliveries.clone()
            })
            .await
            .map_err(|err| match err {
                crate::executor::CommandError::Store(err) => ReceiveError::Store(err),
                crate::executor::CommandError::Rejected(err) => {
                    ReceiveError::Invalid(err.to_string())
                }
            })?;
        Ok(())
    }

    /// The analytics callback: checked, rewritten and written to the outbox.
    async fn analytics(
        &self,
        run: &MeetingRunRecord,
        callbacks: &RunCallbacks,
        call: &ServerCall,
    ) -> Result<usize, ReceiveError> {
        let server = match run.server_id {
            Some(id) => self.store.server(id).await?,
            None => None,
        };
        let Some(server) = server else {
            return Err(ReceiveError::Unauthorized(
                "the run's server is no longer in the pool".into(),
            ));
        };
        let token = call
            .bearer
            .as_deref()
            .ok_or_else(|| ReceiveError::Unauthorized("a bearer token is required".into()))?;
        if !super::signing::verify_analytics_token(token, &server.settings.secret) {
            return Err(ReceiveError::Unauthorized(
                "the bearer token is not an HS512 token of this server's secret".into(),
            ));
        }
        let mut body: serde_json::Value = serde_json::from_slice(&call.body)
            .map_err(|err| ReceiveError::Invalid(format!("the body is not JSON: {err}")))?;
        let Some(object) = body.as_object_mut() else {
            return Err(ReceiveError::Invalid(
                "the body is not a JSON object".into(),
            ));
        };
        object.insert(
            "meeting_id".to_owned(),
            serde_json::Value::String(run.meeting_id.clone()),
        );
        let Some(url) = callbacks.analytics_url.clone() else {
            return Ok(0);
        };
        let delivery = Delivery {
            kind: CallbackKind::Analytics,
            tenant: run.tenant.clone(),
            meeting_id: run.meeting_id.clone(),
            method: "POST",
            url,
            content_type: Some("application/json"),
            body: Some(body.to_string()),
            signing: CallbackSigning::BearerHs512 {
                secret: callbacks.signed_with.clone(),
            },
        }
        .into_outbox(
            format!("{}-analytics", callbacks.nonce),
            self.clock.now_ms(),
            self.settings.retry_for,
        );
        let meeting_id = MeetingId::parse(&run.meeting_id)
            .map_err(|err| ReceiveError::Invalid(format!("the run's meetingID: {err}")))?;
        let stream = meeting_stream(&run.tenant, &meeting_id);
        self.store
            .append_with_callbacks(&stream, 0, &[], &EventMetadata::default(), &[delivery])
            .await?;
        Ok(1)
    }
}

/// The front-end's end callbacks of a run: its `meetingEndedURL` when
/// `marks` is `None` (the server's `meetingEndedURL` call), else its
/// `meta_endCallbackUrl` with `recordingmarks=<marks>`. Ids are the run's
/// nonce and the kind, so the same callback written twice (the server's
/// call, polling's fallback) is delivered once.
pub fn end_deliveries(
    run: &MeetingRunRecord,
    callbacks: &RunCallbacks,
    marks: Option<bool>,
    now_ms: i64,
    retry_for: std::time::Duration,
) -> Vec<NewCallback> {
    let (url, callback_kind) = match marks {
        None => (
            callbacks.meeting_ended_url.clone(),
            CallbackKind::MeetingEnded,
        ),
        Some(marks) => (
            callbacks
                .end_callback_url
                .as_deref()
                .map(|url| with_end_parameters(url, marks, &run.meeting_id)),
            CallbackKind::EndCallback,
        ),
    };
    url.map(|url| {
        Delivery {
            kind: callback_kind,
            tenant: run.tenant.clone(),
            meeting_id: run.meeting_id.clone(),
            method: "GET",
            url,
            content_type: None,
            body: None,
            signing: CallbackSigning::None,
        }
        .into_outbox(
            format!("{}-{}", callbacks.nonce, callback_kind.as_str()),
            now_ms,
            retry_for,
        )
    })
    .into_iter()
    .collect()
}

/// What a front-end is owed when polling finds a run gone from its server
/// and the server never called (it could not reach Switchboard): both end
/// callbacks, `recordingmarks=false`, with the ids the server's calls would
/// have had.
pub fn fallback_end_deliveries(
    run: &MeetingRunRecord,
    now_ms: i64,
    retry_for: std::time::Duration,
    grace: std::time::Duration,
) -> Vec<NewCallback> {
    let Some(callbacks) = &run.callbacks else {
        return Vec::new();
    };
    let mut deliveries = end_deliveries(run, callbacks, None, now_ms, retry_for);
    deliveries.extend(end_deliveries(
        run,
        callbacks,
        Some(false),
        now_ms,
        retry_for,
    ));
    // Held back a while: a server's late call (its `recordingmarks`) still
    // replaces them.
    let grace = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    for delivery in &mut deliveries {
        delivery.due_ms = now_ms.saturating_add(grace);
    }
    deliveries
}

/// How long polling's fallback end callbacks wait for the server's own
/// call by default, ms.
pub const FALLBACK_GRACE_MS: i64 = 30_000;

/// BBB's `recordingmarks` from the server's call: `true` or `false`.
fn recording_marks(query: &str) -> bool {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "recordingmarks")
        .is_some_and(|(_, value)| value.eq_ignore_ascii_case("true"))
}

/// The front-end's end callback URL as BBB calls it: its own query kept,
/// then `recordingmarks` and `meetingID` appended.
pub fn with_end_parameters(url: &str, recording_marks: bool, meeting_id: &str) -> String {
    // The parameters go in the query, before a fragment (never sent).
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    let marks = if recording_marks { "true" } else { "false" };
    let appended = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("recordingmarks", marks)
        .append_pair("meetingID", meeting_id)
        .finish();
    match fragment {
        Some(fragment) => format!("{base}{separator}{appended}#{fragment}"),
        None => format!("{base}{separator}{appended}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_callback_keeps_its_query_and_gets_bbbs_parameters() {
        assert_eq!(
            with_end_parameters("https://lms.example/end.php?id=4&x=a%20b", true, "room 1/é"),
            "https://lms.example/end.php?id=4&x=a%20b&recordingmarks=true&meetingID=room+1%2F%C3%A9"
        );
        assert_eq!(
            with_end_parameters("https://lms.example/end", false, "r"),
            "https://lms.example/end?recordingmarks=false&meetingID=r"
        );
        assert_eq!(
            with_end_parameters("https://lms.example/end?a=1#top", false, "r"),
            "https://lms.example/end?a=1&recordingmarks=false&meetingID=r#top"
        );
    }

    #[test]
    fn recording_marks_are_read_from_the_servers_query() {
        assert!(recording_marks("recordingmarks=true&meetingID=x"));
        assert!(!recording_marks("recordingmarks=false&meetingID=x"));
        assert!(!recording_marks(""));
    }
}
