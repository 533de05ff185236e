//! BBB API errors: one type that knows its XML rendering (HTTP 200, text/xml).

use super::xml::XmlWriter;
use poem::{IntoResponse, Response};
use switchboard_app::meetings::CallError;

/// A FAILED answer of the BBB API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BbbError {
    /// BBB's messageKey.
    pub key: &'static str,
    /// The human-readable message.
    pub message: String,
}

impl BbbError {
    fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }

    /// A bbb-webhooks failure (`missingParamCallbackURL`, `destroyMissingHook`, ...).
    pub fn hook(key: &'static str, message: impl Into<String>) -> Self {
        Self::new(key, message)
    }

    /// Wrong or missing checksum, unknown tenant or secret.
    pub fn checksum() -> Self {
        Self::new(
            "checksumError",
            "You did not pass the checksum security check",
        )
    }

    /// The tenant runs as many meetings as it may.
    pub fn max_meetings_reached(limit: u64) -> Self {
        Self::new(
            "maxMeetingsReached",
            format!(
                "The maximum number of running meetings ({limit}) has been reached; end a meeting or ask the operator to raise the limit."
            ),
        )
    }

    /// The tenant's meetings hold as many attendees as it may.
    pub fn max_participants_reached(limit: u64) -> Self {
        Self::new(
            "maxParticipantsReached",
            format!("The number of participants allowed ({limit}) has been reached."),
        )
    }

    /// Unknown call or wrong method.
    pub fn unsupported_request() -> Self {
        Self::new("unsupportedRequest", "This request is not supported.")
    }

    /// A POST body of a type the call does not take.
    pub fn unsupported_content_type() -> Self {
        Self::new(
            "unsupportedContentType",
            "POST request Content-Type is missing or unsupported",
        )
    }

    /// No running meeting with that id (Scalelite's wording).
    pub fn meeting_not_found() -> Self {
        Self::new(
            "notFound",
            "We could not find a meeting with that meeting ID - perhaps the meeting is not yet running?",
        )
    }

    /// None of the named recordings is the tenant's.
    pub fn recordings_not_found() -> Self {
        Self::new("notFound", "We could not find recordings")
    }

    /// A required parameter is missing.
    pub fn missing_param(key: &'static str, message: &str) -> Self {
        Self::new(key, message)
    }

    /// A parameter is malformed or given twice.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new("validationError", message)
    }

    /// The request is larger than allowed.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            "requestTooLarge",
            format!("The request is larger than {limit} bytes."),
        )
    }

    /// The meeting's server is disabled, offline or gone.
    pub fn server_unavailable() -> Self {
        Self::new(
            "serverUnavailable",
            "The server hosting this meeting is not available.",
        )
    }

    /// No server can take a new meeting.
    pub fn no_server() -> Self {
        Self::new(
            "serverUnavailable",
            "No server is available to host the meeting.",
        )
    }

    /// No server with a required tag.
    pub fn tag_unavailable(tags: &str) -> Self {
        Self::new(
            "serverTagUnavailable",
            format!("There is no available server with the required tag={tags}."),
        )
    }

    /// getRecordings without meetingID or recordID where it must be
    /// filtered (Scalelite's `GET_RECORDINGS_API_FILTERED`).
    pub fn missing_parameters() -> Self {
        Self::new(
            "missingParameters",
            "param meetingID or recordID must be included.",
        )
    }

    /// A server failed or answered nonsense.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("internalError", message)
    }

    /// The XML body.
    pub fn to_xml(&self) -> String {
        let mut xml = XmlWriter::response("FAILED");
        xml.text_element("messageKey", self.key);
        xml.text_element("message", &self.message);
        xml.finish()
    }
}

impl From<CallError> for BbbError {
    fn from(err: CallError) -> Self {
        match err {
            CallError::MissingParam { key, message } => Self::missing_param(key, message),
            CallError::Invalid(message) => Self::validation(message),
            CallError::NotFound => Self::meeting_not_found(),
            CallError::ServerUnavailable => Self::server_unavailable(),
            CallError::NoServer => Self::no_server(),
            CallError::TagUnavailable(tags) => Self::tag_unavailable(&tags),
            CallError::MaxMeetings(limit) => Self::max_meetings_reached(limit),
            CallError::MaxParticipants(limit) => Self::max_participants_reached(limit),
            CallError::VoiceBridgeInUse => Self::new(
                "nonUniqueVoiceBridge",
                "The selected voice bridge is already in use.",
            ),
            // The cause (addresses, TLS and DNS details of the pool) is for
            // the operator's log, not for front-ends (issue 15.A7).
            CallError::ServerFailed(failure) => {
                tracing::warn!(error = %failure, "a server failed a call on the BBB API");
                Self::internal("The meeting's server could not be reached; please retry.")
            }
            CallError::Store(err) => Self::store_failure(err),
            CallError::Internal(message) => Self::internal(message),
        }
    }
}

impl BbbError {
    /// A database failure, logged, as a front-end sees it.
    pub fn store_failure(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "database failure on the BBB API");
        Self::internal("Switchboard's database is unavailable; please retry.")
    }
}

impl IntoResponse for BbbError {
    fn into_response(self) -> Response {
        super::xml::xml_response(self.to_xml())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_servers_failure_is_not_described_to_front_ends() {
        use switchboard_app::backend::{BackendError, CallFailure};
        let failure = CallError::ServerFailed(CallFailure::Backend(BackendError::Connect(
            "tcp connect error: 10.0.0.5:443: Connection refused".into(),
        )));
        let error = BbbError::from(failure);
        assert_eq!(error.key, "internalError");
        assert!(!error.message.contains("10.0.0.5"), "{}", error.message);
    }

    #[test]
    fn renders_bbb_failed_answer_exactly() {
        assert_eq!(
            BbbError::checksum().to_xml(),
            "<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey>\
             <message>You did not pass the checksum security check</message></response>"
        );
        assert_eq!(
            BbbError::tag_unavailable("a&b").to_xml(),
            "<response><returncode>FAILED</returncode><messageKey>serverTagUnavailable</messageKey>\
             <message>There is no available server with the required tag=a&amp;b.</message></response>"
        );
    }
}
