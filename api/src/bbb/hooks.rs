//! bbb-webhooks' calls on the facade (`hooks/create`, `hooks/destroy`,
//! `hooks/list`), per tenant, answered in bbb-webhooks' XML shapes; the
//! hooks are Switchboard's (see `switchboard_app::callbacks::hooks`).

use super::error::BbbError;
use super::request::ApiRequest;
use super::xml::{XmlWriter, xml_response};
use poem::Response;
use switchboard_app::callbacks::CallbackService;
use switchboard_app::callbacks::hooks::{HookCreated, HookFailure};
use switchboard_app::records::HookRecord;
use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, split_checksum};
use switchboard_domain::events::EventMetadata;

impl From<HookFailure> for BbbError {
    fn from(failure: HookFailure) -> Self {
        let message = failure.to_string();
        let key = match failure {
            HookFailure::MissingCallbackUrl => "missingParamCallbackURL",
            HookFailure::MissingHookId => "missingParamHookID",
            HookFailure::Create(_) => "createHookError",
            HookFailure::NotFound => "destroyMissingHook",
            HookFailure::Store(err) => {
                tracing::error!(error = %err, "hooks: database failure");
                return BbbError::internal("An error happened with your hook; please retry.");
            }
        };
        BbbError::hook(key, message)
    }
}

/// The algorithm the request was signed with (by its checksum's length).
fn signed_algorithm(raw_query: &str) -> ChecksumAlgorithm {
    split_checksum(raw_query)
        .1
        .and_then(|checksum| ChecksumAlgorithm::from_hex_len(checksum.len()))
        .unwrap_or(ChecksumAlgorithm::Sha1)
}

/// `hooks/create`.
pub async fn create(
    callbacks: &CallbackService,
    request: &ApiRequest,
    raw_query: &str,
    metadata: &EventMetadata,
) -> Result<Response, BbbError> {
    let created = callbacks
        .create_hook(
            &request.tenant,
            &request.params,
            signed_algorithm(raw_query),
            request.signed_with.clone(),
            metadata,
        )
        .await?;
    let mut xml = XmlWriter::response("SUCCESS");
    match created {
        HookCreated::Created(hook) => {
            xml.text("hookID", &hook.id);
            xml.value("permanentHook", false);
            // Events are relayed as mapped events, never raw (see
            // docs/callbacks.md).
            xml.value("rawData", false);
        }
        HookCreated::Duplicate(hook) => {
            xml.text("hookID", &hook.id);
            xml.text("messageKey", "duplicateWarning");
            xml.text("message", "There is already a hook for this callback URL.");
        }
    }
    Ok(xml_response(xml.finish()))
}

/// `hooks/destroy`.
pub async fn destroy(
    callbacks: &CallbackService,
    request: &ApiRequest,
    metadata: &EventMetadata,
) -> Result<Response, BbbError> {
    callbacks
        .destroy_hook(&request.tenant, request.params.get("hookID"), metadata)
        .await?;
    let mut xml = XmlWriter::response("SUCCESS");
    xml.value("removed", true);
    Ok(xml_response(xml.finish()))
}

/// `hooks/list`.
pub async fn list(callbacks: &CallbackService, request: &ApiRequest) -> Result<Response, BbbError> {
    let hooks = callbacks
        .list_hooks(&request.tenant, request.params.non_empty("meetingID"))
        .await
        .map_err(|err| BbbError::from(HookFailure::Store(err)))?;
    let mut xml = XmlWriter::response("SUCCESS");
    xml.open("hooks");
    for hook in &hooks {
        write_hook(&mut xml, hook);
    }
    xml.close("hooks");
    Ok(xml_response(xml.finish()))
}

fn write_hook(xml: &mut XmlWriter, hook: &HookRecord) {
    let settings = &hook.settings;
    xml.open("hook");
    xml.text("hookID", &hook.id);
    xml.text("callbackURL", &settings.callback_url);
    if let Some(meeting_id) = &settings.meeting_id {
        xml.text("meetingID", meeting_id);
    }
    if let Some(event_ids) = &settings.event_ids {
        xml.text("eventID", &event_ids.join(","));
    }
    xml.value("permanentHook", false);
    xml.value("rawData", false);
    xml.close("hook");
}
