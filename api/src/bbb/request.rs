//! Turning an HTTP request into a verified BBB API request: method rules, size
//! limit, body kinds, checksum over the raw query (or the raw form body), and
//! strict parameter decoding.

use super::error::BbbError;
use bytes::Bytes;
use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, split_checksum, verify_which};
use switchboard_domain::bbb::params::{ParamError, Params};
use switchboard_domain::ids::TenantId;

/// What a call accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodRule {
    /// GET only.
    GetOnly,
    /// GET, or POST with a form or XML body.
    GetOrPost,
    /// POST with an XML body.
    PostXml,
    /// POST with a `multipart/form-data` body (a file upload).
    PostMultipart,
}

/// The calls the facade knows, with their method rules. BBB accepts GET and
/// POST (parameters in the signed query, a form body, or both) on its API
/// calls; join is GET-only from BBB 3.0 on.
pub fn method_rule(call: &str) -> Option<MethodRule> {
    Some(match call {
        "join" => MethodRule::GetOnly,
        "create"
        | "end"
        | "isMeetingRunning"
        | "getMeetingInfo"
        | "getMeetings"
        | "sendChatMessage"
        | "getRecordings"
        | "publishRecordings"
        | "deleteRecordings"
        | "updateRecordings"
        | "getRecordingTextTracks"
        | "hooks/create"
        | "hooks/destroy"
        | "hooks/list" => MethodRule::GetOrPost,
        "insertDocument" => MethodRule::PostXml,
        "putRecordingTextTrack" => MethodRule::PostMultipart,
        _ => return None,
    })
}

pub use switchboard_app::backend::RequestBody as XmlBody;
pub use switchboard_app::meetings::ApiRequest;

/// The raw pieces of an incoming request.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    /// Call name from the path.
    pub call: &'a str,
    /// True for POST (else GET; other methods never get here).
    pub is_post: bool,
    /// Raw query string, without `?`.
    pub query: &'a str,
    /// Content-Type header, if any.
    pub content_type: Option<&'a str>,
    /// Body bytes.
    pub body: &'a Bytes,
}

/// Who may sign requests.
#[derive(Debug, Clone, Copy)]
pub struct Verifier<'a> {
    /// Accepted secrets.
    pub secrets: &'a [String],
    /// Accepted algorithms.
    pub algorithms: &'a [ChecksumAlgorithm],
    /// Largest query plus body.
    pub max_bytes: usize,
}

enum BodyKind {
    None,
    Form,
    Xml(String),
    Multipart(String),
}

fn body_kind(raw: &RawRequest<'_>, rule: MethodRule) -> Result<BodyKind, BbbError> {
    if !raw.is_post {
        return Ok(BodyKind::None);
    }
    let media_type = raw
        .content_type
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let kind = match media_type.as_str() {
        "application/x-www-form-urlencoded" if rule == MethodRule::GetOrPost => BodyKind::Form,
        "multipart/form-data" if rule == MethodRule::PostMultipart => {
            BodyKind::Multipart(raw.content_type.unwrap_or_default().to_owned())
        }
        _ if rule == MethodRule::PostMultipart => return Err(BbbError::unsupported_content_type()),
        "text/xml" | "application/xml" => BodyKind::Xml(media_type.clone()),
        "" if raw.body.is_empty() && rule == MethodRule::GetOrPost => BodyKind::None,
        _ => return Err(BbbError::unsupported_content_type()),
    };
    Ok(kind)
}

fn param_error(err: ParamError) -> BbbError {
    BbbError::validation(match err {
        ParamError::Duplicate(key) => format!("The parameter {key} was given more than once."),
        other => format!("The request could not be read: {other}."),
    })
}

/// Checks method, size, content type and checksum, then decodes parameters.
pub fn verify_request(raw: RawRequest<'_>, verifier: Verifier<'_>) -> Result<ApiRequest, BbbError> {
    let rule = method_rule(raw.call).ok_or_else(BbbError::unsupported_request)?;
    match (rule, raw.is_post) {
        (MethodRule::GetOnly, true)
        | (MethodRule::PostXml, false)
        | (MethodRule::PostMultipart, false) => {
            return Err(BbbError::unsupported_request());
        }
        _ => {}
    }
    if raw.query.len() + raw.body.len() > verifier.max_bytes {
        return Err(BbbError::too_large(verifier.max_bytes));
    }
    let kind = body_kind(&raw, rule)?;
    let (query_rest, query_checksum) = split_checksum(raw.query);
    let form_text = match kind {
        BodyKind::Form => Some(
            std::str::from_utf8(raw.body)
                .map_err(|_| BbbError::validation("The form body is not valid UTF-8."))?,
        ),
        _ => None,
    };
    // Which secret signed (a tenant may have several): callbacks of the
    // request's meeting are signed with that one.
    let signed_by = std::cell::Cell::new(None);
    let check = |signed: &str, checksum: &str| {
        let which = verify_which(
            raw.call,
            signed,
            checksum,
            verifier.secrets,
            verifier.algorithms,
        );
        if which.is_some() {
            signed_by.set(which);
        }
        which.is_some()
    };
    // The signed string: the URL query (BBB, Scalelite) or the form body
    // (some clients). The checksum may stand in either.
    // `form_signed`: whether the checksum covers the form body too (else
    // its parameters are merged unsigned, as BBB does).
    let (form_rest, verified, form_signed) = match (form_text, query_checksum) {
        (None, Some(checksum)) => (None, check(&query_rest, checksum), true),
        (None, None) => (None, false, true),
        // A body-signed request may carry nothing unsigned in its URL.
        (Some(form), Some(checksum)) => {
            if check(&query_rest, checksum) {
                (Some(form.to_owned()), true, false)
            } else {
                let ok = query_rest.is_empty() && check(form, checksum);
                (Some(form.to_owned()), ok, true)
            }
        }
        (Some(form), None) => {
            let (rest, body_checksum) = split_checksum(form);
            match body_checksum {
                Some(checksum) if query_rest.is_empty() && check(&rest, checksum) => {
                    (Some(rest), true, true)
                }
                Some(checksum) => (Some(rest), check(&query_rest, checksum), false),
                None => (Some(rest), false, false),
            }
        }
    };
    if !verified {
        return Err(BbbError::checksum());
    }
    let mut params = Params::parse(&query_rest).map_err(param_error)?;
    let has_form_params = match &form_rest {
        Some(form) => {
            let body_params = Params::parse(form).map_err(param_error)?;
            if !form_signed
                && let Some(key) = body_params
                    .iter()
                    .map(|(key, _)| key)
                    .find(|key| is_callback_url_param(key))
            {
                return Err(BbbError::validation(format!(
                    "The parameter {key} is a callback URL and was not covered by the \
                     checksum: send it in the signed query (or sign the form body)."
                )));
            }
            let any = !body_params.is_empty();
            params.merge(body_params).map_err(param_error)?;
            any
        }
        None => false,
    };
    let (xml_body, multipart) = match kind {
        BodyKind::Xml(content_type) if !raw.body.is_empty() => (
            Some(XmlBody {
                content_type,
                body: raw.body.clone(),
            }),
            None,
        ),
        BodyKind::Multipart(content_type) => (
            None,
            Some(XmlBody {
                content_type,
                body: raw.body.clone(),
            }),
        ),
        _ => (None, None),
    };
    Ok(ApiRequest {
        call: raw.call.to_owned(),
        params,
        raw_query: query_rest,
        has_form_params,
        xml_body,
        multipart,
        tenant: TenantId::default_tenant(),
        tenant_config: None,
        signed_with: signed_by
            .get()
            .filter(|_| keeps_signer(raw.call))
            .and_then(|index| verifier.secrets.get(index))
            .map(|secret| switchboard_app::admin::tenants::fingerprint(secret)),
    })
}

/// The calls that remember which secret signed them (the callbacks of a
/// meeting or a hook they create are signed with it); no other call pays
/// for the fingerprint.
fn keeps_signer(call: &str) -> bool {
    matches!(call, "create" | "hooks/create")
}

/// Whether `key` names a URL BBB (or Switchboard) calls or sends users to:
/// `logoutURL`, `meetingEndedURL`, `callbackURL` (webhooks) and every
/// `meta_...url` (`meta_endCallbackUrl`, `meta_bbb-recording-ready-url`,
/// `meta_analytics-callback-url`...). Such a parameter must be signed.
pub fn is_callback_url_param(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    matches!(
        key.as_str(),
        "logouturl" | "meetingendedurl" | "callbackurl"
    ) || (key.starts_with("meta_") && key.ends_with("url"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::bbb::checksum::sign;

    const SECRET: &str = "front-end-secret";

    fn verifier(secrets: &[String]) -> Verifier<'_> {
        Verifier {
            secrets,
            algorithms: &ChecksumAlgorithm::ALL,
            max_bytes: 4096,
        }
    }

    fn signed(call: &str, query: &str) -> String {
        let sum = sign(ChecksumAlgorithm::Sha1, call, query, SECRET);
        if query.is_empty() {
            format!("checksum={sum}")
        } else {
            format!("{query}&checksum={sum}")
        }
    }

    fn get<'a>(call: &'a str, query: &'a str, body: &'a Bytes) -> RawRequest<'a> {
        RawRequest {
            call,
            is_post: false,
            query,
            content_type: None,
            body,
        }
    }

    #[test]
    fn only_the_calls_that_keep_it_learn_which_secret_signed() {
        let secrets = vec!["older-secret".to_owned(), SECRET.to_owned()];
        let empty = Bytes::new();
        let signer = |call: &str| {
            let query = signed(call, "meetingID=m");
            verify_request(get(call, &query, &empty), verifier(&secrets))
                .unwrap()
                .signed_with
        };
        let fingerprint = Some(switchboard_app::admin::tenants::fingerprint(SECRET));
        assert_eq!(signer("create"), fingerprint);
        assert_eq!(signer("hooks/create"), fingerprint);
        assert_eq!(signer("join"), None);
        assert_eq!(signer("getMeetingInfo"), None);
    }

    #[test]
    fn accepts_a_signed_get_and_decodes_parameters() {
        let secrets = vec![SECRET.to_owned()];
        let empty = Bytes::new();
        let query = signed("join", "meetingID=r%C3%A4um&fullName=A+B");
        let request = verify_request(get("join", &query, &empty), verifier(&secrets)).unwrap();
        assert_eq!(request.params.get("meetingID"), Some("räum"));
        assert_eq!(request.raw_query, "meetingID=r%C3%A4um&fullName=A+B");
    }

    #[test]
    fn checksum_errors_come_before_parameter_errors() {
        let secrets = vec![SECRET.to_owned()];
        let empty = Bytes::new();
        let err = verify_request(
            get("join", "meetingID=%zz&checksum=00", &empty),
            verifier(&secrets),
        )
        .unwrap_err();
        assert_eq!(err.key, "checksumError");
        let query = signed("join", "meetingID=%zz");
        let err = verify_request(get("join", &query, &empty), verifier(&secrets)).unwrap_err();
        assert_eq!(err.key, "validationError");
        let query = signed("join", "meetingID=a&meetingID=b");
        let err = verify_request(get("join", &query, &empty), verifier(&secrets)).unwrap_err();
        assert!(err.message.contains("meetingID"), "{err:?}");
    }

    #[test]
    fn wrong_methods_and_unknown_calls_are_unsupported() {
        let secrets = vec![SECRET.to_owned()];
        let empty = Bytes::new();
        let query = signed("join", "meetingID=a");
        let mut post = get("join", &query, &empty);
        post.is_post = true;
        assert_eq!(
            verify_request(post, verifier(&secrets)).unwrap_err().key,
            "unsupportedRequest"
        );
        let query = signed("getRecordingsX", "");
        assert_eq!(
            verify_request(get("getRecordingsX", &query, &empty), verifier(&secrets))
                .unwrap_err()
                .key,
            "unsupportedRequest"
        );
    }

    #[test]
    fn form_bodies_may_be_signed_via_query_or_body() {
        let secrets = vec![SECRET.to_owned()];
        // Signed URL query only (BBB docs, Scalelite): empty signed string.
        let body = Bytes::from_static(b"meetingID=room-1&name=Room");
        let query = signed("create", "");
        let raw = RawRequest {
            call: "create",
            is_post: true,
            query: &query,
            content_type: Some("application/x-www-form-urlencoded; charset=UTF-8"),
            body: &body,
        };
        let request = verify_request(raw, verifier(&secrets)).unwrap();
        assert_eq!(request.params.get("name"), Some("Room"));
        assert!(request.has_form_params);
        // Signed body with the checksum inside the body.
        let body = Bytes::from(signed("create", "meetingID=room-1&name=Room"));
        let raw = RawRequest {
            query: "",
            body: &body,
            ..raw
        };
        assert!(verify_request(raw, verifier(&secrets)).is_ok());
        // The same parameter in URL and body is an error.
        let body = Bytes::from_static(b"meetingID=room-1");
        let query = signed("create", "meetingID=room-1");
        let raw = RawRequest {
            query: &query,
            body: &body,
            ..raw
        };
        assert_eq!(
            verify_request(raw, verifier(&secrets)).unwrap_err().key,
            "validationError"
        );
    }

    /// Issue 15.A6: unsigned form parameters are merged as BBB does, but
    /// never a callback URL.
    #[test]
    fn callback_urls_outside_the_checksum_are_refused() {
        let secrets = vec![SECRET.to_owned()];
        let query = signed("create", "meetingID=room-1");
        let hostile = [
            "meta_endCallbackUrl=https%3A%2F%2Fevil.example%2F",
            "meta_bbb-recording-ready-url=https%3A%2F%2Fevil.example%2F",
            "meta_analytics-callback-url=https%3A%2F%2Fevil.example%2F",
            "logoutURL=https%3A%2F%2Fevil.example%2F",
            "meetingEndedURL=https%3A%2F%2Fevil.example%2F",
        ];
        for form in hostile {
            let body = Bytes::from(format!("name=Room&{form}"));
            let raw = RawRequest {
                call: "create",
                is_post: true,
                query: &query,
                content_type: Some("application/x-www-form-urlencoded"),
                body: &body,
            };
            let error = verify_request(raw, verifier(&secrets)).unwrap_err();
            assert_eq!(error.key, "validationError", "{form}");
            assert!(
                error.message.contains("checksum"),
                "{form}: {}",
                error.message
            );
        }
        // Signed: in the query, or in a body that carries the checksum.
        let query = signed(
            "create",
            "meetingID=room-1&meta_endCallbackUrl=https%3A%2F%2Fapp.example%2F",
        );
        let body = Bytes::from_static(b"name=Room&meta_other=1");
        let raw = RawRequest {
            call: "create",
            is_post: true,
            query: &query,
            content_type: Some("application/x-www-form-urlencoded"),
            body: &body,
        };
        assert!(verify_request(raw, verifier(&secrets)).is_ok());
        let body = Bytes::from(signed(
            "create",
            "meetingID=room-1&logoutURL=https%3A%2F%2Fapp.example%2F",
        ));
        let raw = RawRequest {
            query: "",
            body: &body,
            ..raw
        };
        assert!(verify_request(raw, verifier(&secrets)).is_ok());
    }

    #[test]
    fn other_content_types_and_oversized_requests_are_refused() {
        let secrets = vec![SECRET.to_owned()];
        let body = Bytes::from_static(b"{}");
        let query = signed("create", "meetingID=a&name=b");
        let raw = RawRequest {
            call: "create",
            is_post: true,
            query: &query,
            content_type: Some("application/json"),
            body: &body,
        };
        assert_eq!(
            verify_request(raw, verifier(&secrets)).unwrap_err().key,
            "unsupportedContentType"
        );
        let long = "a".repeat(5000);
        let empty = Bytes::new();
        assert_eq!(
            verify_request(get("getMeetings", &long, &empty), verifier(&secrets))
                .unwrap_err()
                .key,
            "requestTooLarge"
        );
    }
}
