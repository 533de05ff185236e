//! Scalelite's FreeSWITCH dial-plan endpoint: `POST /fsapi`, called by
//! `mod_xml_curl` on a dial-in gateway. A caller is asked for a PIN (the
//! meeting's voice bridge, unique across the pool), then bridged to the
//! server running that meeting. Answers are FreeSWITCH XML documents, the
//! same Scalelite writes; HTTP basic auth as user `fsapi`.

use poem::http::{StatusCode, header};
use poem::web::Data;
use poem::{Body, Request, Response, handler};
use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, Event};
use std::collections::HashMap;
use std::sync::Arc;
use switchboard_app::ports::Database;
use switchboard_app::routing::RoutingView;

/// What `/fsapi` needs.
pub struct FsapiState {
    /// Whether `/fsapi` answers at all (else 404).
    pub enabled: bool,
    /// Largest form body read (only once the password matched).
    pub max_body_bytes: usize,
    /// The password of user `fsapi` (`None` or empty: no authentication;
    /// `serve` always gives one, the first BBB secret by default).
    pub password: Option<String>,
    /// Seconds a bridged call may last (0: no limit).
    pub max_duration_secs: u64,
    /// Fewest and most digits a PIN may have.
    pub pin_digits: (u32, u32),
    /// Who holds which voice bridge.
    pub store: Arc<dyn Database>,
    /// Running meetings and their servers.
    pub routing: Arc<RoutingView>,
}

impl std::fmt::Debug for FsapiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsapiState")
            .field("enabled", &self.enabled)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("max_duration_secs", &self.max_duration_secs)
            .field("pin_digits", &self.pin_digits)
            .finish_non_exhaustive()
    }
}

/// `POST /fsapi`.
#[handler]
pub async fn fsapi(request: &Request, body: Body, state: Data<&Arc<FsapiState>>) -> Response {
    if !state.enabled {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body("dial-in is switched off ([fsapi] enabled = false)\n");
    }
    if !authorized(request, state.password.as_deref()) {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, "Basic realm=\"Application\"")
            .body("HTTP Basic: Access denied.\n");
    }
    let Ok(bytes) = body.into_bytes_limit(state.max_body_bytes).await else {
        return Response::builder()
            .status(StatusCode::PAYLOAD_TOO_LARGE)
            .body("the request body is too large\n");
    };
    let mut params: HashMap<String, String> =
        url::form_urlencoded::parse(&bytes).into_owned().collect();
    if let Some(query) = request.uri().query() {
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()).into_owned() {
            params.entry(key).or_insert(value);
        }
    }
    let document = answer(&params, &state).await;
    Response::builder()
        .header(header::CONTENT_TYPE, "text/xml; charset=utf-8")
        .body(document)
}

/// Basic auth as user `fsapi`, the password compared in constant time.
fn authorized(request: &Request, password: Option<&str>) -> bool {
    use base64::Engine as _;
    use subtle::ConstantTimeEq as _;
    let Some(password) = password.filter(|password| !password.is_empty()) else {
        return true;
    };
    let Some(given) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok())
    else {
        return false;
    };
    let Some((user, pass)) = given.split_once(':') else {
        return false;
    };
    let matches: bool = pass.as_bytes().ct_eq(password.as_bytes()).into();
    user == "fsapi" && matches
}

/// What the caller gets next.
#[derive(Debug, PartialEq)]
enum Step {
    /// Not a dial-plan request.
    Reject,
    /// Ask for the PIN.
    Prompt,
    /// The PIN runs no meeting: ask again.
    Reprompt,
    /// Bridge the call to the meeting's server.
    Bridge {
        meeting_id: String,
        host: String,
        caller_id: String,
    },
}

async fn answer(params: &HashMap<String, String>, state: &FsapiState) -> String {
    let get = |key: &str| params.get(key).map(String::as_str).unwrap_or_default();
    let destination = get("Caller-Destination-Number");
    let step = if get("section") != "dialplan" || destination.is_empty() {
        Step::Reject
    } else if get("variable_pin").is_empty() {
        Step::Prompt
    } else {
        match meeting_of(get("variable_pin"), state).await {
            Some((meeting_id, host)) => Step::Bridge {
                meeting_id,
                host,
                caller_id: caller_id(params),
            },
            None => Step::Reprompt,
        }
    };
    if let Step::Bridge { meeting_id, .. } = &step {
        tracing::info!(meeting = %meeting_id, "fsapi: bridging a dial-in call");
    }
    render(&step, destination, get("variable_pin"), state)
}

/// The running meeting holding `pin` (or, for a breakout room's PIN, its
/// parent's, which is one digit shorter) and its server's host.
async fn meeting_of(pin: &str, state: &FsapiState) -> Option<(String, String)> {
    if !pin.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // A breakout room's PIN is its parent's with one more digit.
    let mut candidates = vec![pin];
    if pin.len() > 1 {
        candidates.push(&pin[..pin.len() - 1]);
    }
    for number in candidates {
        let Ok(Some(holder)) = state.store.voice_bridge_holder(number).await else {
            continue;
        };
        let Ok(Some(meeting)) = state
            .routing
            .meeting(&holder.tenant, &holder.meeting_id)
            .await
        else {
            continue;
        };
        if !meeting.running {
            continue;
        }
        let server = state.routing.server(meeting.run.server_id)?;
        let host = url::Url::parse(&server.settings.url)
            .ok()?
            .host_str()?
            .to_owned();
        return Some((holder.meeting_id.as_str().to_owned(), host));
    }
    None
}

/// The caller id shown in the meeting, masked as Scalelite masks it: a
/// number loses its last four digits (`X`), hidden ones are not shown.
fn caller_id(params: &HashMap<String, String>) -> String {
    let get = |key: &str| params.get(key).map(String::as_str).unwrap_or_default();
    let name = get("Caller-Caller-ID-Name");
    let shown = if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        (get("Caller-Privacy-Hide-Number") != "true").then(|| {
            let keep = name.len().saturating_sub(4);
            format!("{}{}", &name[..keep], "X".repeat(name.len() - keep))
        })
    } else {
        (get("Caller-Privacy-Hide-Name") != "true").then(|| name.to_owned())
    };
    shown
        .filter(|shown| !shown.is_empty())
        .unwrap_or_else(|| "Unavailable".to_owned())
}

/// Escapes a value for FreeSWITCH's dial plan: `\` and `${` get a backslash
/// (so no variable is expanded).
fn fs_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace("${", "\\${")
}

/// A literal as a regular expression (Ruby's `Regexp.escape`).
fn regex_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '.' | '*' | '?' | '+' | '^' | '$' | '|' | '(' | ')' | '[' | ']' | '{' | '}' | '\\'
            | '-' | '/' => {
                out.push('\\');
                out.push(c);
            }
            ' ' => out.push_str("\\ "),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
    out
}

fn render(step: &Step, destination: &str, pin: &str, state: &FsapiState) -> String {
    let mut xml = Writer::new(Vec::new());
    let open = |xml: &mut Writer<Vec<u8>>, name: &str, attrs: &[(&str, &str)]| {
        let mut start = BytesStart::new(name);
        for (key, value) in attrs {
            start.push_attribute((*key, *value));
        }
        let _ = xml.write_event(Event::Start(start));
    };
    let close = |xml: &mut Writer<Vec<u8>>, name: &str| {
        let _ = xml.write_event(Event::End(BytesEnd::new(name)));
    };
    let action = |xml: &mut Writer<Vec<u8>>, application: &str, data: Option<&str>| {
        let mut start = BytesStart::new("action");
        start.push_attribute(("application", application));
        if let Some(data) = data {
            start.push_attribute(("data", data));
        }
        let _ = xml.write_event(Event::Empty(start));
    };
    open(&mut xml, "document", &[("type", "freeswitch/xml")]);
    let (description, extension) = match step {
        Step::Reject => {
            open(&mut xml, "section", &[("name", "result")]);
            let mut result = BytesStart::new("result");
            result.push_attribute(("status", "not found"));
            let _ = xml.write_event(Event::Empty(result));
            close(&mut xml, "section");
            close(&mut xml, "document");
            return String::from_utf8(xml.into_inner()).unwrap_or_default();
        }
        Step::Prompt => (
            "Match DID and Pin for Conference",
            "match_did_and_prompt_for_pin",
        ),
        Step::Reprompt => ("Reprompt Pin for Conference", "reprompt_for_pin"),
        Step::Bridge { .. } => ("Bridge Call to BBB Server", "bridge_to_bbb_server"),
    };
    open(
        &mut xml,
        "section",
        &[("name", "dialplan"), ("description", description)],
    );
    open(&mut xml, "context", &[("name", "public")]);
    open(&mut xml, "extension", &[("name", extension)]);
    let expression = format!("^{}$", fs_escape(&regex_escape(destination)));
    open(
        &mut xml,
        "condition",
        &[("field", "destination_number"), ("expression", &expression)],
    );
    let (min, max) = state.pin_digits;
    let get_digits = format!(
        "{min} {max} 3 7000 # conference/conf-enter_conf_pin.wav conference/conf-bad-pin.wav pin \\d+"
    );
    match step {
        Step::Prompt => {
            action(&mut xml, "answer", None);
            if state.max_duration_secs > 0 {
                let hangup = format!("+{} normal_clearing", state.max_duration_secs);
                action(&mut xml, "sched_hangup", Some(&hangup));
            }
            action(&mut xml, "sleep", Some("500"));
            action(&mut xml, "playback", Some("ivr/ivr-welcome.wav"));
            action(&mut xml, "sleep", Some("200"));
            action(&mut xml, "play_and_get_digits", Some(&get_digits));
            action(&mut xml, "transfer", Some("${pin} XML public"));
        }
        Step::Reprompt => {
            action(&mut xml, "playback", Some("conference/conf-bad-pin.wav"));
            action(&mut xml, "sleep", Some("500"));
            action(&mut xml, "play_and_get_digits", Some(&get_digits));
            action(&mut xml, "transfer", Some("${pin} XML public"));
        }
        Step::Bridge {
            meeting_id,
            host,
            caller_id,
        } => {
            let meeting = format!("meeting_id={}", fs_escape(meeting_id));
            let caller = format!("effective_caller_id_name={}", fs_escape(caller_id));
            let bridge = format!("sofia/external/{}@{host}", fs_escape(pin));
            action(&mut xml, "set", Some(&meeting));
            action(&mut xml, "set", Some(&caller));
            action(&mut xml, "bridge", Some(&bridge));
        }
        Step::Reject => {}
    }
    for name in ["condition", "extension", "context", "section", "document"] {
        close(&mut xml, name);
    }
    String::from_utf8(xml.into_inner()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn numbers_lose_their_last_four_digits_and_hidden_ids_are_unavailable() {
        let number = params(&[("Caller-Caller-ID-Name", "6135551234")]);
        assert_eq!(caller_id(&number), "613555XXXX");
        let short = params(&[("Caller-Caller-ID-Name", "12")]);
        assert_eq!(caller_id(&short), "XX");
        let hidden = params(&[
            ("Caller-Caller-ID-Name", "6135551234"),
            ("Caller-Privacy-Hide-Number", "true"),
        ]);
        assert_eq!(caller_id(&hidden), "Unavailable");
        let name = params(&[("Caller-Caller-ID-Name", "Ann ${evil}")]);
        assert_eq!(caller_id(&name), "Ann ${evil}");
        assert_eq!(fs_escape("Ann ${evil} \\"), "Ann \\${evil} \\\\");
    }

    #[test]
    fn destinations_become_anchored_literal_patterns() {
        assert_eq!(regex_escape("+1 613.555"), "\\+1\\ 613\\.555");
        assert_eq!(regex_escape("5551234"), "5551234");
    }
}
