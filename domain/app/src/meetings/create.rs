//! create: idempotent placement on the least loaded server.
//!
//! A meeting that runs goes back to its server (BBB's `duplicateWarning` is
//! relayed). A new one goes to the best server by load and tag rules; a server
//! that fails is skipped for the next; a meeting is recorded only after a
//! server accepted it. Concurrent creates of one meetingID are serialised in
//! this process and, across processes, by the stream's expected version: the
//! loser moves its create to the winner's server and ends its stray copy.
//! A meeting whose server is offline (not disabled) answers
//! `serverUnavailable` until the offline policy forgets it, so a meeting is
//! never split over two servers.

use super::calls::serving;
use super::listing::created_meeting_xml;
use super::{ApiRequest, CallError, MeetingService};
use crate::backend::{Answer, CallFailure, RequestBody};
use crate::callbacks::{CallbackLinks, ServerCallback};
use crate::executor::CommandError;
use crate::records::{MeetingListing, MeetingRecord, PendingPlacement, ServerRecord};
use switchboard_domain::bbb::params::Params;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::{MeetingId, ServerId, meeting_stream};
use switchboard_domain::meeting::{Meeting, MeetingCommand, MeetingRun, RunCallbacks};
use switchboard_domain::selection::{SelectionError, TagRequest};
use switchboard_domain::server::ServerState;

/// How often a create starts over after losing a race to another instance.
const ROUNDS: usize = 3;

/// What one placement round ended with.
enum Round {
    /// Answer the front-end.
    Done(Answer),
    /// Another instance recorded the meeting first: look again.
    Raced,
}

/// The parts of a create that every round needs.
struct CreateCall<'a> {
    state: &'a MeetingService,
    request: &'a ApiRequest,
    /// The parameters after the tenant's policy.
    params: Params,
    /// Passwords the front-end left out, given to a new run only (a create
    /// of a running meeting without passwords gets BBB's duplicateWarning).
    passwords: Vec<(&'static str, String)>,
    /// The voiceBridge a new run goes out with, decided once a server was
    /// found for it (`None` inside: left to the server).
    voice_bridge: tokio::sync::OnceCell<Option<String>>,
    /// The voiceBridge the meeting held when the pending placement was
    /// read (both in one round trip), for the new run's voiceBridge. Set by
    /// the first round only: the voiceBridge is decided once per create, in
    /// that round, so a later round never needs a fresher value.
    held_voice_bridge: std::sync::OnceLock<Option<String>>,
    /// The pending placement and held voiceBridge read with the meeting
    /// (one round trip), for the round's placement; taken once.
    read_with_meeting: std::sync::Mutex<Option<(Option<PendingPlacement>, Option<String>)>>,
    meeting_id: MeetingId,
    name: String,
    query: String,
    metadata: &'a EventMetadata,
    /// `meta_bbb-recording-ready-url`, kept here and not forwarded.
    recording_ready_url: Option<String>,
    /// The front-end's end-of-meeting callbacks, replaced by Switchboard's.
    callbacks: Option<RunCallbacks>,
}

/// The names front-ends give the recording-ready URL (Scalelite's aliases),
/// in the order they are preferred.
const RECORDING_READY_KEYS: [&str; 3] = [
    "meta_bbb-recording-ready-url",
    "meta_bn-recording-ready-url",
    "meta_canvas-recording-ready-url",
];

/// Removes every parameter named `name` (any case when `any_case`, as BBB
/// reads `meta_` keys lower-cased); returns the first non-empty value.
fn take_param(params: &mut Params, name: &str, any_case: bool) -> Option<String> {
    let keys: Vec<String> = params
        .iter()
        .map(|(key, _)| key)
        .filter(|key| {
            if any_case {
                key.eq_ignore_ascii_case(name)
            } else {
                *key == name
            }
        })
        .map(str::to_owned)
        .collect();
    let mut found = None;
    for key in keys {
        if let Some(value) = params.remove(&key)
            && found.is_none()
            && !value.trim().is_empty()
        {
            found = Some(value.trim().to_owned());
        }
    }
    found
}

/// Removes the recording-ready URL under each of its names; returns the
/// preferred one given.
fn take_recording_ready_url(params: &mut Params) -> Option<String> {
    let mut found = None;
    for key in RECORDING_READY_KEYS {
        let value = take_param(params, key, true);
        found = found.or(value);
    }
    found
}

/// A callback URL a front-end gave, if Switchboard can call it: http(s),
/// without control characters (PostgreSQL text cannot hold NUL); anything
/// else is dropped with a warning (BBB could not call it either).
fn usable_callback_url(key: &str, value: Option<String>) -> Option<String> {
    let value = value?;
    let usable = !value.chars().any(char::is_control)
        && url::Url::parse(&value)
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
    if !usable {
        tracing::warn!(
            param = key,
            "a callback URL that is not an http(s) URL is ignored"
        );
    }
    usable.then_some(value)
}

/// Takes the front-end's end-of-meeting callbacks out of the parameters;
/// the server gets Switchboard's own in their place ([`with_server_links`]).
fn take_end_callbacks(params: &mut Params, signed_with: Option<String>) -> RunCallbacks {
    let mut take =
        |key: &str, any_case: bool| usable_callback_url(key, take_param(params, key, any_case));
    RunCallbacks {
        nonce: CallbackLinks::new_nonce(),
        end_callback_url: take("meta_endCallbackUrl", true),
        meeting_ended_url: take("meetingEndedURL", false),
        analytics_url: take("meta_analytics-callback-url", true),
        signed_with,
    }
}

/// The nonce of a run on `server`: one per server a create is sent to, so
/// a stray copy on another server can never report the recorded run ended.
fn run_nonce(base: &str, server: ServerId) -> String {
    format!("{base}-{server}")
}

/// The create's query for one server: Switchboard's callback URLs for the
/// run there (always `meetingEndedURL`, so Switchboard hears of the end at
/// once; the others where the front-end asked for them).
fn with_server_links(
    params: &Params,
    links: &CallbackLinks,
    callbacks: &RunCallbacks,
    server: ServerId,
) -> String {
    let nonce = run_nonce(&callbacks.nonce, server);
    let mut params = params.clone();
    params.set("meetingEndedURL", links.url(ServerCallback::Ended, &nonce));
    if callbacks.end_callback_url.is_some() {
        params.set(
            "meta_endCallbackUrl",
            links.url(ServerCallback::EndCallback, &nonce),
        );
    }
    if callbacks.analytics_url.is_some() {
        params.set(
            "meta_analytics-callback-url",
            links.url(ServerCallback::Analytics, &nonce),
        );
    }
    params.to_query()
}

impl MeetingService {
    /// `create`: the server's answer to relay.
    pub async fn create(
        &self,
        request: &ApiRequest,
        metadata: &EventMetadata,
    ) -> Result<Answer, CallError> {
        create(self, request, metadata).await
    }
}

async fn create(
    state: &MeetingService,
    request: &ApiRequest,
    metadata: &EventMetadata,
) -> Result<Answer, CallError> {
    let meeting_id = request.meeting_id()?;
    let mut params = request.params.clone();
    let has_documents = request.xml_body.is_some();
    // Scalelite's precedence: the tenant's overrides, the operator's
    // overrides, the front-end's values, the tenant's defaults, the
    // operator's defaults.
    if let Some(tenant) = &request.tenant_config {
        tenant.policy.apply_create_defaults(&mut params);
    }
    state.policy.apply_create(&mut params, has_documents);
    if let Some(tenant) = &request.tenant_config {
        tenant.policy.apply_create(&mut params, has_documents);
    }
    // Switchboard calls the recording-ready URL itself, once the recording
    // is imported here; the server must not call it (nor see it).
    let recording_ready_url =
        usable_callback_url("recording-ready-url", take_recording_ready_url(&mut params));
    // The server calls Switchboard when the meeting ends; Switchboard calls
    // the front-end's URLs, re-signed.
    let callbacks = state
        .callback_links
        .as_ref()
        .map(|_| take_end_callbacks(&mut params, request.signed_with.clone()));
    // Control characters are stripped from the name as from the meetingID
    // (BBB's ParamsUtil.stripControlChars), so none reaches XML or the
    // database (PostgreSQL text cannot hold NUL).
    let name = params
        .non_empty("name")
        .map(switchboard_domain::bbb::params::strip_control_chars)
        .ok_or(CallError::MissingParam {
            key: "missingParamName",
            message: "You must specify a name for the meeting.",
        })?
        .into_owned();
    if state.settings.tenant_metadata
        && let Some(tenant) = &request.tenant_config
    {
        params.set(
            "meta_tenant-id",
            switchboard_domain::tenant::tenant_uuid(&tenant.name).to_string(),
        );
        params.set("meta_tenant-name", tenant.name.clone());
    }
    let tenant = &request.tenant;
    // By meetingID alone: tenants' creates of one meetingID are serialised
    // too, since a server knows a meeting by its meetingID only.
    let _guard = state.create_locks.lock(meeting_id.as_str()).await;
    let mut passwords = Vec::new();
    if state.settings.fill_passwords {
        for key in ["moderatorPW", "attendeePW"] {
            if params.non_empty(key).is_none() {
                let password = state.generated_password(tenant, &meeting_id, key).await?;
                passwords.push((key, password));
            }
        }
    }
    let call = CreateCall {
        state,
        request,
        name,
        query: params.to_query(),
        params,
        passwords,
        voice_bridge: tokio::sync::OnceCell::new(),
        held_voice_bridge: std::sync::OnceLock::new(),
        read_with_meeting: std::sync::Mutex::new(None),
        metadata,
        meeting_id,
        recording_ready_url,
        callbacks,
    };
    let mut raced = false;
    for _ in 0..ROUNDS {
        // After a lost race the routing view may not have heard of the
        // winner yet: read the projection itself. A meeting not cached here
        // is read with what its placement needs, in one round trip.
        let cached = match raced {
            false => state.routing.cached_meeting(tenant, &call.meeting_id),
            true => None,
        };
        let existing = match cached {
            Some(record) => Some(record),
            None => {
                let read = state
                    .store
                    .meeting_for_create(tenant, &call.meeting_id)
                    .await?;
                let record = read.meeting.map(std::sync::Arc::new);
                if let Some(record) = record.as_ref().filter(|_| !raced) {
                    state.routing.remember(record.clone());
                }
                *call.read_with_meeting.lock().expect("read lock") =
                    Some((read.pending, read.held_voice_bridge));
                record
            }
        };
        if let Some(record) = existing.as_ref().filter(|record| record.running) {
            match state.server_of(record).await? {
                Some(server) if serving(&server) => {
                    match call.on_existing(record, &server).await? {
                        Some(Round::Done(response)) => return Ok(response),
                        Some(Round::Raced) => {
                            raced = true;
                            continue;
                        }
                        None => {} // its server failed the create: place it anew
                    }
                }
                // Offline, not disabled: its meetings are kept until the
                // offline policy forgets them, so the meeting is not split.
                Some(server) if server.state != ServerState::Disabled => {
                    return Err(CallError::ServerUnavailable);
                }
                _ => {} // disabled or removed: place it anew
            }
        }
        // Within the limit, serialised per tenant in this process.
        let _limit_guard = match call.meeting_limit() {
            Some(limit) => {
                let guard = state.limit_locks.lock(&tenant.0).await;
                let running = state.store.running_meetings_of(tenant).await?;
                if running >= limit {
                    return Err(CallError::MaxMeetings(limit));
                }
                Some(guard)
            }
            None => None,
        };
        match call.place(existing.as_deref()).await? {
            Round::Done(response) => return Ok(response),
            Round::Raced => raced = true,
        }
    }
    Err(CallError::Internal(
        "The meeting was changed concurrently too often; please retry.".into(),
    ))
}

impl MeetingService {
    /// The server a running meeting is on. The routing view may lag behind
    /// another instance's change (a server just enabled there); before a
    /// meeting is placed anew because its server looks unusable here, the
    /// projection is asked, so a meeting is never split over two servers.
    async fn server_of(
        &self,
        record: &MeetingRecord,
    ) -> Result<Option<std::sync::Arc<ServerRecord>>, CallError> {
        match self.routing.server(record.run.server_id) {
            Some(server) if serving(&server) => Ok(Some(server)),
            _ => Ok(self
                .store
                .server(record.run.server_id)
                .await?
                .map(std::sync::Arc::new)),
        }
    }
}

impl CreateCall<'_> {
    /// Sends the create to the server the meeting runs on. `None` when the
    /// meeting is to be placed anew: it had ended there and its server is
    /// cordoned (draining servers take no new runs). A server that fails the
    /// create is an error, never a reason to start a second copy elsewhere.
    async fn on_existing(
        &self,
        record: &MeetingRecord,
        server: &ServerRecord,
    ) -> Result<Option<Round>, CallError> {
        let held = self.held_voice_bridge().await?;
        let answer = match self.send(server, &held).await {
            Ok(answer) => answer,
            Err(err) => {
                tracing::warn!(server = %server.id, error = %err, "create on the meeting's server failed");
                return Err(err.into());
            }
        };
        if !answer.summary.is_success() {
            return Ok(Some(Round::Done(answer)));
        }
        let run = self.run_from(&answer, server.id);
        if run.internal_id == record.run.internal_id {
            let sent = held.first().map(|(_, number)| number.as_str());
            self.hold_answered_voice_bridge(&answer, sent).await;
            return Ok(Some(Round::Done(answer)));
        }
        // The meeting had ended on its server and started again there.
        if server.state != ServerState::Enabled {
            self.end_copy(server, &answer).await;
            return Ok(None);
        }
        Ok(Some(self.record(Some(record), run, answer).await?))
    }

    /// The tenant's cap on running meetings, if any.
    fn meeting_limit(&self) -> Option<u64> {
        self.request
            .tenant_config
            .as_ref()
            .and_then(|tenant| tenant.limits.max_meetings)
    }

    /// Places the meeting on the best server that accepts it: within the
    /// tenant's pool, and never beside another tenant's meeting of the same
    /// meetingID (a server knows a meeting by its meetingID alone).
    async fn place(&self, existing: Option<&MeetingRecord>) -> Result<Round, CallError> {
        let state = self.state;
        let tags = TagRequest::parse(self.params.get("meta_server-tag"));
        let pool: &[String] = self
            .request
            .tenant_config
            .as_ref()
            .map(|tenant| tenant.required_tags.as_slice())
            .unwrap_or_default();
        let mut tried: Vec<ServerId> = Vec::new();
        if !state.routing.tenants().is_empty() {
            tried = state
                .store
                .servers_running_elsewhere(&self.request.tenant, &self.meeting_id)
                .await?;
        }
        if let Some(round) = self.resume_pending(existing, &tried).await? {
            return Ok(round);
        }
        let occupied = tried.len();
        let mut refused: Option<Answer> = None;
        for _ in 0..state.settings.create_attempts {
            let reservation = match state.routing.reserve(&tags, pool, &tried) {
                Ok(reservation) => reservation,
                Err(_) if tried.len() > occupied => break,
                Err(SelectionError::TagUnavailable(tags)) => {
                    return Err(CallError::TagUnavailable(tags));
                }
                Err(SelectionError::NoServer) => return Err(CallError::NoServer),
            };
            let server = reservation.server.clone();
            tried.push(server.id);
            // Where the create goes is kept before it is sent, so a crash
            // before the run is recorded cannot split the meeting.
            self.note_placement(server.id).await?;
            let answer = match self.send_new_run(&server).await? {
                // With tenants, a meeting of this meetingID already running on
                // the server is someone else's: never join it, try another.
                Ok(answer)
                    if answer.summary.message_key() == Some("duplicateWarning")
                        && !state.routing.tenants().is_empty() =>
                {
                    tracing::warn!(server = %server.id, "a meeting of this meetingID runs there already; trying another server");
                    continue;
                }
                Ok(answer) if answer.summary.is_success() => answer,
                Ok(answer) => {
                    tracing::warn!(server = %server.id, key = ?answer.summary.message_key(), "server refused a create");
                    refused = Some(answer);
                    continue;
                }
                Err(err) => {
                    tracing::warn!(server = %server.id, error = %err, "create failed on server");
                    continue;
                }
            };
            let run = self.run_from(&answer, server.id);
            // The reservation counts the meeting until the append's event
            // reaches the routing view, which counts it from then on.
            let round = self.record(existing, run, answer).await;
            drop(reservation);
            return round;
        }
        match refused {
            Some(answer) => Ok(Round::Done(answer)),
            None => Err(CallError::Internal(
                "No server could create the meeting; please retry.".into(),
            )),
        }
    }

    /// Notes that the create is about to go to `server` (see
    /// [`PendingPlacement`]); the first time, with the claim of the new
    /// run's voiceBridge, in one round trip where the store can.
    async fn note_placement(&self, server: ServerId) -> Result<(), CallError> {
        let placement = PendingPlacement {
            tenant: self.request.tenant.clone(),
            meeting_id: self.meeting_id.clone(),
            server_id: server,
            at_ms: self.state.clock.now_ms(),
            recording_ready_url: self.recording_ready_url.clone(),
            callbacks: self.callbacks_on(server),
        };
        let mut note = Some(&placement);
        self.new_run_voice_bridge_noting(&mut note).await?;
        if let Some(placement) = note {
            self.state.store.put_pending_placement(placement).await?;
        }
        Ok(())
    }

    /// A create of this meeting left pending (sent to a server, never
    /// recorded: Switchboard stopped in between) may have started the
    /// meeting there; a retried create goes there first, where BBB answers
    /// with the running meeting, so the meeting is never split. `None` when
    /// there is no such create or its server cannot take it now.
    async fn resume_pending(
        &self,
        existing: Option<&MeetingRecord>,
        occupied: &[ServerId],
    ) -> Result<Option<Round>, CallError> {
        let state = self.state;
        let read_with_meeting = self.read_with_meeting.lock().expect("read lock").take();
        let (pending, held) = match read_with_meeting {
            Some(read) => read,
            None => {
                state
                    .store
                    .pending_placement_and_voice_bridge(&self.request.tenant, &self.meeting_id)
                    .await?
            }
        };
        let _ = self.held_voice_bridge.set(held);
        let Some(pending) = pending else {
            return Ok(None);
        };
        let Some(server) = state.routing.server(pending.server_id) else {
            return Ok(None);
        };
        if !serving(&server) || occupied.contains(&server.id) {
            return Ok(None);
        }
        // A draining server takes no new meeting: only if the meeting runs
        // there already.
        if server.state == ServerState::Cordoned && !self.runs_on(&server).await {
            return Ok(None);
        }
        let answer = match self.send_new_run(&server).await? {
            Ok(answer) if answer.summary.is_success() => answer,
            Ok(_) | Err(_) => return Ok(None),
        };
        tracing::info!(server = %server.id, meeting = %self.meeting_id, "create resumed on the server an unrecorded create went to");
        let mut run = self.run_from(&answer, server.id);
        // Running there already: the server keeps the callbacks of the
        // create that started it, not this one's.
        if answer.summary.message_key() == Some("duplicateWarning") {
            run.callbacks = pending.callbacks.clone().map(Box::new);
            run.recording_ready_url = pending.recording_ready_url.clone();
        }
        Ok(Some(self.record(existing, run, answer).await?))
    }

    /// Whether the server says this meeting runs there.
    async fn runs_on(&self, server: &ServerRecord) -> bool {
        let mut params = Params::default();
        params.set("meetingID", self.meeting_id.as_str());
        match self
            .state
            .backends
            .call(server, "isMeetingRunning", &params.to_query(), None)
            .await
        {
            Ok(answer) => answer.summary.field("running") == Some("true"),
            Err(_) => false,
        }
    }

    /// Sends the create: parameters in the URL, or, when the front-end sent
    /// a form body, as a form body again (long parameter lists do not fit a
    /// URL), signed over the then empty query as BBB checks it.
    async fn send(
        &self,
        server: &ServerRecord,
        extra: &[(&'static str, String)],
    ) -> Result<Answer, CallFailure> {
        use std::borrow::Cow;
        let backends = &self.state.backends;
        let params = if extra.is_empty() {
            Cow::Borrowed(&self.params)
        } else {
            let mut params = self.params.clone();
            for (key, value) in extra {
                params.set(key, value.clone());
            }
            Cow::Owned(params)
        };
        let query = match (&self.callbacks, &self.state.callback_links) {
            (Some(callbacks), Some(links)) => {
                Cow::Owned(with_server_links(&params, links, callbacks, server.id))
            }
            _ if matches!(params, Cow::Owned(_)) => Cow::Owned(params.to_query()),
            _ => Cow::Borrowed(self.query.as_str()),
        };
        if self.request.has_form_params && self.request.xml_body.is_none() {
            let form = RequestBody {
                content_type: "application/x-www-form-urlencoded".to_owned(),
                body: bytes::Bytes::from(query.into_owned()),
            };
            return backends.call(server, "create", "", Some(&form)).await;
        }
        backends
            .call(server, "create", &query, self.request.xml_body.as_ref())
            .await
    }

    /// Sends the create of a new run: with the meeting's voiceBridge
    /// (claimed with the placement note, or now when a pending create is
    /// resumed) and the passwords the
    /// front-end left out. A server where the meeting runs already with
    /// other passwords (started elsewhere, unrecorded) answers
    /// `idNotUnique`: asked again without the generated passwords, it
    /// answers with that run, which is then recorded, never split.
    async fn send_new_run(
        &self,
        server: &ServerRecord,
    ) -> Result<Result<Answer, CallFailure>, CallError> {
        let mut extra = self.passwords.clone();
        if let Some(number) = self.new_run_voice_bridge().await? {
            extra.push(("voiceBridge", number));
        }
        let answer = self.send(server, &extra).await;
        let refused_passwords = matches!(&answer, Ok(answer)
            if answer.summary.message_key() == Some("idNotUnique"));
        if !refused_passwords || self.passwords.is_empty() {
            return Ok(answer);
        }
        extra.retain(|(key, _)| *key == "voiceBridge");
        Ok(self.send(server, &extra).await)
    }

    /// The voiceBridge of a new run, decided once per create.
    async fn new_run_voice_bridge(&self) -> Result<Option<String>, CallError> {
        self.new_run_voice_bridge_noting(&mut None).await
    }

    /// [`new_run_voice_bridge`](Self::new_run_voice_bridge), noting the
    /// placement in `note` with its first claim when it is decided now
    /// (`note` is taken then).
    async fn new_run_voice_bridge_noting(
        &self,
        note: &mut Option<&PendingPlacement>,
    ) -> Result<Option<String>, CallError> {
        self.voice_bridge
            .get_or_try_init(|| async {
                self.state
                    .voice_bridge_for(
                        &self.request.tenant,
                        &self.meeting_id,
                        self.params.get("voiceBridge"),
                        self.held_voice_bridge.get().cloned(),
                        note,
                    )
                    .await
            })
            .await
            .cloned()
    }

    /// For a create of a running meeting: the voiceBridge it holds, sent
    /// as Scalelite sends it (the server keeps its own in any case).
    async fn held_voice_bridge(&self) -> Result<Vec<(&'static str, String)>, CallError> {
        if self.state.settings.voice_bridges.is_none() {
            return Ok(Vec::new());
        }
        Ok(self
            .state
            .store
            .voice_bridge_of(&self.request.tenant, &self.meeting_id)
            .await?
            .map(|number| vec![("voiceBridge", number)])
            .unwrap_or_default())
    }

    /// The run's callbacks as given to `server` (its own nonce).
    fn callbacks_on(&self, server: ServerId) -> Option<RunCallbacks> {
        self.callbacks.as_ref().map(|callbacks| RunCallbacks {
            nonce: run_nonce(&callbacks.nonce, server),
            ..callbacks.clone()
        })
    }

    /// The run a server reported (ids computed as BBB does when missing).
    fn run_from(&self, answer: &Answer, server_id: ServerId) -> MeetingRun {
        let create_time_ms = answer
            .summary
            .field("createTime")
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| self.state.clock.now_ms());
        let internal_id = answer
            .summary
            .field("internalMeetingID")
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| self.meeting_id.internal_id(create_time_ms));
        MeetingRun {
            internal_id,
            server_id,
            create_time_ms,
            recording_ready_url: self.recording_ready_url.clone(),
            callbacks: self.callbacks_on(server_id).map(Box::new),
        }
    }

    /// Appends the run against the version that was read; on a lost race the
    /// stray copy on our server is ended unless the winner chose it too.
    async fn record(
        &self,
        existing: Option<&MeetingRecord>,
        run: MeetingRun,
        answer: Answer,
    ) -> Result<Round, CallError> {
        let state = self.state;
        let (aggregate, version) = existing
            .map(|record| (record.aggregate(), record.version))
            .unwrap_or((Meeting::default(), 0));
        let tenant = &self.request.tenant;
        let sent = match self.voice_bridge.get() {
            Some(number) => number.as_deref(),
            None => self.params.get("voiceBridge"),
        };
        self.hold_answered_voice_bridge(&answer, sent).await;
        let command = MeetingCommand::RecordCreated {
            tenant: tenant.clone(),
            meeting_id: self.meeting_id.clone(),
            name: self.name.clone(),
            run: run.clone(),
        };
        let listing = self.listing(&run, &answer);
        let stream = meeting_stream(tenant, &self.meeting_id);
        let (mut aggregate, mut version) = (aggregate, version);
        // A lost race is handled here, never decided again blindly: when
        // another writer recorded a run first, the stray copy is ended and
        // the create looks again; when it only recorded an end (a poll saw
        // the old run go), there is no winner and our run is recorded
        // against the fresh state.
        for _ in 0..crate::executor::ATTEMPTS {
            match state
                .executor
                .try_once_listed(
                    &stream,
                    &aggregate,
                    version,
                    &command,
                    self.metadata,
                    &listing,
                )
                .await
            {
                Ok(_) => return Ok(Round::Done(answer)),
                Err(err) if err.is_conflict() => {
                    match state.store.meeting(tenant, &self.meeting_id).await {
                        Ok(Some(fresh)) if !fresh.running => {
                            (aggregate, version) = (fresh.aggregate(), fresh.version);
                        }
                        _ => {
                            self.end_stray(&run, &answer).await;
                            return Ok(Round::Raced);
                        }
                    }
                }
                Err(CommandError::Rejected(err)) => {
                    self.end_stray(&run, &answer).await;
                    return Err(CallError::Internal(err.to_string()));
                }
                Err(CommandError::Store(err)) => {
                    self.end_stray(&run, &answer).await;
                    return Err(err.into());
                }
            }
        }
        self.end_stray(&run, &answer).await;
        Ok(Round::Raced)
    }

    /// Holds the voiceBridge the server answered with when it is not the
    /// one sent: a meeting running from before voice bridges were held
    /// keeps its number (BBB's duplicateWarning), so that number is the
    /// meeting's from now on and dial-in finds it.
    async fn hold_answered_voice_bridge(&self, answer: &Answer, sent: Option<&str>) {
        if self.state.settings.voice_bridges.is_none() {
            return;
        }
        let Some(number) = answer
            .summary
            .field("voiceBridge")
            .map(str::trim)
            .filter(|number| !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()))
        else {
            return;
        };
        if sent == Some(number) {
            return;
        }
        match self
            .state
            .claim(&self.request.tenant, &self.meeting_id, number)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(meeting = %self.meeting_id, voice_bridge = %number, "the meeting runs with a voice bridge another running meeting holds");
            }
            Err(err) => {
                tracing::warn!(meeting = %self.meeting_id, error = %err, "could not hold the meeting's voice bridge");
            }
        }
    }

    /// The run's `<meeting>` element for getMeetings until a poll lists it,
    /// written with the run's event, so every instance that sees the run
    /// finds it (a failure to write it fails the append, as one commit).
    fn listing(&self, run: &MeetingRun, answer: &Answer) -> MeetingListing {
        MeetingListing {
            internal_id: run.internal_id.clone(),
            server_id: run.server_id,
            created_at_ms: self.state.clock.now_ms(),
            xml: created_meeting_xml(
                self.meeting_id.as_str(),
                &self.name,
                &run.internal_id,
                run.create_time_ms,
                &answer.summary,
                &self.params,
            ),
        }
    }

    /// Ends a copy of the meeting that was created but not recorded, unless
    /// the recorded run is on the same server.
    async fn end_stray(&self, run: &MeetingRun, answer: &Answer) {
        let state = self.state;
        let winner = state
            .store
            .meeting(&self.request.tenant, &self.meeting_id)
            .await
            .ok()
            .flatten();
        if winner.is_some_and(|record| record.running && record.run.server_id == run.server_id) {
            return;
        }
        if let Some(server) = state.routing.server(run.server_id) {
            self.end_copy(&server, answer).await;
        }
    }

    /// Ends the copy of the meeting a create answer describes on `server`.
    async fn end_copy(&self, server: &ServerRecord, answer: &Answer) {
        let mut params = Params::default();
        params.set("meetingID", self.meeting_id.as_str());
        if let Some(password) = answer.summary.field("moderatorPW") {
            params.set("password", password);
        }
        if let Err(err) = self
            .state
            .backends
            .call(server, "end", &params.to_query(), None)
            .await
        {
            tracing::warn!(server = %server.id, error = %err, "could not end a stray meeting copy");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meetings::JoinOutcome;
    use crate::memory::answers::{self, Reply};
    use crate::memory::{BackendCall, ScriptedBackend};
    use crate::ports::MeetingReads;
    use crate::ports::Placements as _;
    use crate::ports::TenantReads as _;
    use crate::testing::{
        NOW_MS, World, asked, created, ended, given, meeting_id, request, secret, url,
    };
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, sign};
    use switchboard_domain::events::DomainEvent;
    use switchboard_domain::events::EventMetadata;
    use switchboard_domain::ids::TenantId;
    use switchboard_domain::meeting::EndReason;
    use switchboard_domain::meeting::MeetingEvent;
    use switchboard_domain::server::ServerCommand;
    use switchboard_domain::tenant::{
        Tenant, TenantCommand, TenantConfig, TenantLimits, tenant_stream,
    };

    const CREATE: &str = "meetingID=room&name=room";
    const JOIN: &str = "meetingID=room&fullName=Ann&password=ap";

    fn create_call(server: &str) -> BackendCall {
        BackendCall::new(url(server), "create", CREATE)
    }

    fn unexpected(url: &str, call: &str) -> Reply {
        panic!("unexpected call {call} to {url}")
    }

    #[tokio::test]
    async fn the_server_gets_switchboards_callback_urls_and_the_run_keeps_the_front_ends() {
        let world = World::new();
        let server = world.server("one").await;
        let backend = Arc::new(ScriptedBackend::new(move |_, call, _| match call {
            "create" => answers::create_success("room", "room-1", NOW_MS),
            other => unexpected("one", other),
        }));
        let links = Arc::new(CallbackLinks::new(b"key", Some("https://lb.example")));
        let meetings = world
            .meetings(&backend)
            .await
            .with_callback_links(links.clone());
        let query = "meetingID=room&name=room&meetingEndedURL=https%3A%2F%2Ffe.example%2Fended\
                     &meta_endCallbackUrl=https%3A%2F%2Ffe.example%2Fend%3Fid%3D4\
                     &meta_analytics-callback-url=https%3A%2F%2Ffe.example%2Fa\
                     &meta_canvas-recording-ready-url=https%3A%2F%2Fcanvas.example%2Fr\
                     &meta_bn-recording-ready-url=https%3A%2F%2Fbn.example%2Fr";
        let mut create = request("create", query);
        create.signed_with = Some("sha256:abcdef01".into());
        meetings.create(&create, &asked()).await.unwrap();
        let sent = backend.calls();
        assert_eq!(sent.len(), 1);
        let params = Params::parse(&sent[0].query).unwrap();
        for (key, value) in params.iter() {
            assert!(
                !value.contains("fe.example"),
                "{key}={value} reached the server"
            );
            assert!(!key.contains("recording-ready"), "{key} reached the server");
        }
        let run = world.store.meeting_run("room-1").await.unwrap().unwrap();
        let kept = run.callbacks.expect("the run keeps its callbacks");
        assert_eq!(
            kept.meeting_ended_url.as_deref(),
            Some("https://fe.example/ended")
        );
        assert_eq!(
            kept.end_callback_url.as_deref(),
            Some("https://fe.example/end?id=4")
        );
        assert_eq!(kept.analytics_url.as_deref(), Some("https://fe.example/a"));
        assert_eq!(kept.signed_with.as_deref(), Some("sha256:abcdef01"));
        // Scalelite's order: bn before canvas.
        assert_eq!(
            run.recording_ready_url.as_deref(),
            Some("https://bn.example/r")
        );
        for (key, kind) in [
            ("meetingEndedURL", ServerCallback::Ended),
            ("meta_endCallbackUrl", ServerCallback::EndCallback),
            ("meta_analytics-callback-url", ServerCallback::Analytics),
        ] {
            assert_eq!(
                params.get(key),
                Some(links.url(kind, &kept.nonce).as_str()),
                "{key}"
            );
        }
        let _ = server;
    }

    #[tokio::test]
    async fn each_server_a_create_goes_to_gets_its_own_nonce() {
        let world = World::new();
        world.server("first").await;
        world.server("second").await;
        // The first server tried fails the create (a copy may be left there).
        let failed = std::sync::Mutex::new(None::<String>);
        let backend = Arc::new(ScriptedBackend::new(move |target, call, _| {
            let mut failed = failed.lock().unwrap();
            match call {
                "create" if failed.is_none() => {
                    *failed = Some(target.url.to_owned());
                    answers::status(500)
                }
                "create" => answers::create_success("room", "room-1", NOW_MS),
                other => unexpected(target.url, other),
            }
        }));
        let links = Arc::new(CallbackLinks::new(b"key", Some("https://lb.example")));
        let meetings = world
            .meetings(&backend)
            .await
            .with_callback_links(links.clone());
        meetings
            .create(&request("create", CREATE), &asked())
            .await
            .unwrap();
        let sent = backend.calls();
        assert_eq!(sent.len(), 2);
        let ended = |n: usize| {
            Params::parse(&sent[n].query)
                .unwrap()
                .get("meetingEndedURL")
                .unwrap()
                .to_owned()
        };
        assert_ne!(ended(0), ended(1), "one nonce per server");
        let run = world.store.meeting_run("room-1").await.unwrap().unwrap();
        let nonce = run.callbacks.unwrap().nonce;
        assert_eq!(ended(1), links.url(ServerCallback::Ended, &nonce));
        assert!(
            world
                .store
                .meeting_run_by_nonce(&nonce)
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn without_front_end_callbacks_the_server_still_reports_the_end_to_switchboard() {
        let world = World::new();
        world.server("one").await;
        let backend = Arc::new(ScriptedBackend::new(move |_, call, _| match call {
            "create" => answers::create_success("room", "room-1", NOW_MS),
            other => unexpected("one", other),
        }));
        let links = Arc::new(CallbackLinks::new(b"key", Some("https://lb.example")));
        let meetings = world.meetings(&backend).await.with_callback_links(links);
        meetings
            .create(&request("create", CREATE), &asked())
            .await
            .unwrap();
        let params = Params::parse(&backend.calls()[0].query).unwrap();
        assert!(
            params.get("meetingEndedURL").is_some_and(
                |url| url.starts_with("https://lb.example/switchboard/callbacks/ended/")
            )
        );
        assert_eq!(params.get("meta_endCallbackUrl"), None);
        assert_eq!(params.get("meta_analytics-callback-url"), None);
    }

    #[tokio::test]
    async fn a_new_meeting_goes_to_the_least_loaded_enabled_online_server_and_stays_there() {
        let world = World::new();
        // Added first: on a tie of load these would be chosen.
        let disabled = world.server("disabled").await;
        world.on_server(disabled, ServerCommand::Disable).await;
        let offline = world.server("offline").await;
        world.on_server(offline, ServerCommand::MarkOffline).await;
        let busy = world.server("busy").await;
        world.meeting("other", "other-1", busy, NOW_MS).await;
        let idle = world.server("idle").await;
        let first = AtomicBool::new(true);
        let backend = Arc::new(ScriptedBackend::new(move |target, call, _| {
            match (call, target.url == url("idle")) {
                ("create", true) if first.swap(false, Ordering::SeqCst) => {
                    answers::create_success("room", "room-1", NOW_MS + 7)
                }
                ("create", true) => answers::create_duplicate("room", "room-1", NOW_MS + 7),
                _ => unexpected(target.url, call),
            }
        }));
        let meetings = world.meetings(&backend).await;

        let before = world.store.position();
        let answer = meetings
            .create(&request("create", CREATE), &asked())
            .await
            .unwrap();
        assert_eq!(
            world.store.events_after_position(before),
            vec![created("room", "room-1", idle, NOW_MS + 7)],
            "the run the server reported, with its createTime"
        );
        assert_eq!(backend.take_calls(), vec![create_call("idle")]);
        assert!(answer.summary.is_success());
        assert_eq!(answer.summary.message_key(), None);

        let before = world.store.position();
        let again = meetings
            .create(&request("create", CREATE), &asked())
            .await
            .unwrap();
        assert_eq!(world.store.events_after_position(before), vec![]);
        assert_eq!(backend.take_calls(), vec![create_call("idle")]);
        assert_eq!(again.summary.message_key(), Some("duplicateWarning"));
        assert_eq!(
            again.body,
            answers::create_duplicate("room", "room-1", NOW_MS + 7)
                .unwrap()
                .body,
            "the server's answer is relayed as it came"
        );
    }

    /// Issue 15.A1: a create sent to a server but never recorded (a crash
    /// between the server's answer and the append) left a pending
    /// placement; the front-end's retry goes to that server, which answers
    /// with the running meeting, never to a less loaded one.
    #[tokio::test]
    async fn a_retried_create_after_a_crash_goes_to_the_server_the_first_went_to() {
        let world = World::new();
        let idle = world.server("idle").await;
        let busy = world.server("busy").await;
        world.meeting("other", "other-1", busy, NOW_MS).await;
        world
            .store
            .put_pending_placement(&PendingPlacement {
                tenant: TenantId::default_tenant(),
                meeting_id: meeting_id("room"),
                server_id: busy,
                at_ms: NOW_MS - 5_000,
                recording_ready_url: None,
                callbacks: None,
            })
            .await
            .unwrap();
        let backend = Arc::new(ScriptedBackend::new(move |target, call, _| {
            match (call, target.url == url("busy")) {
                ("create", true) => answers::create_duplicate("room", "room-1", NOW_MS - 4_000),
                _ => unexpected(target.url, call),
            }
        }));
        let meetings = world.meetings(&backend).await;
        let before = world.store.position();

        let answer = meetings
            .create(&request("create", CREATE), &asked())
            .await
            .unwrap();

        assert!(answer.summary.is_success());
        assert_eq!(backend.take_calls(), vec![create_call("busy")]);
        assert_eq!(
            world.store.events_after_position(before),
            vec![created("room", "room-1", busy, NOW_MS - 4_000)]
        );
        assert_eq!(
            world
                .store
                .pending_placement(&TenantId::default_tenant(), &meeting_id("room"))
                .await
                .unwrap(),
            None,
            "recorded: no longer pending"
        );
        let _ = idle;
    }

    /// The placement is noted before the server is asked.
    #[tokio::test]
    async fn the_placement_is_noted_before_the_server_is_asked() {
        let world = World::new();
        let a = world.server("a").await;
        let store = world.store.clone();
        let backend = Arc::new(ScriptedBackend::new(move |target, call, _| {
            let noted = futures::executor::block_on(
                store.pending_placement(&TenantId::default_tenant(), &meeting_id("room")),
            )
            .unwrap();
            assert_eq!(noted.map(|p| p.server_id), Some(a), "noted before {call}");
            match call {
                "create" => answers::failed("internalError", "boom"),
                _ => unexpected(target.url, call),
            }
        }));
        let meetings = world.meetings(&backend).await;
        let answer = meetings
            .create(&request("create", CREATE), &asked())
            .await
            .unwrap();
        assert!(!answer.summary.is_success());
    }

    #[tokio::test]
    async fn a_server_failing_the_create_is_skipped_and_nothing_is_recorded_for_it() {
        type Failure = fn() -> Reply;
        let failures: [(&str, Failure); 4] = [
            ("HTTP 500", || answers::status(500)),
            ("garbage", answers::garbage),
            ("timeout", answers::timeout),
            ("FAILED", || answers::failed("internalError", "boom")),
        ];
        for (failure, answer_with) in failures {
            let world = World::new();
            world.server("broken").await;
            let good = world.server("good").await;
            let backend = Arc::new(ScriptedBackend::new(move |target, call, _| match call {
                "create" if target.url == url("broken") => answer_with(),
                "create" if target.url == url("good") => {
                    answers::create_success("room", "room-1", NOW_MS)
                }
                _ => unexpected(target.url, call),
            }));
            let meetings = world.meetings(&backend).await;
            let before = world.store.position();

            let answer = meetings
                .create(&request("create", CREATE), &asked())
                .await
                .unwrap();

            assert!(answer.summary.is_success(), "{failure}");
            assert_eq!(
                world.store.events_after_position(before),
                vec![created("room", "room-1", good, NOW_MS)],
                "{failure}"
            );
            assert_eq!(
                backend.calls(),
                vec![create_call("broken"), create_call("good")],
                "{failure}: tried in order of id (equal load), no end sent to the failed one"
            );
            let listed: Vec<(String, ServerId)> = world
                .store
                .listings()
                .into_iter()
                .map(|listing| (listing.internal_id, listing.server_id))
                .collect();
            assert_eq!(listed, vec![("room-1".to_owned(), good)], "{failure}");
        }
    }

    #[tokio::test]
    async fn when_every_server_refuses_the_last_refusal_is_relayed_and_nothing_recorded() {
        let world = World::new();
        world.server("a").await;
        world.server("b").await;
        let backend = Arc::new(ScriptedBackend::new(|_, call, _| match call {
            "create" => answers::failed("maxMeetings", "too many meetings"),
            _ => panic!("unexpected {call}"),
        }));
        let meetings = world.meetings(&backend).await;
        let before = world.store.position();

        let answer = meetings
            .create(&request("create", CREATE), &asked())
            .await
            .unwrap();

        assert!(!answer.summary.is_success());
        assert_eq!(answer.summary.message_key(), Some("maxMeetings"));
        assert_eq!(world.store.events_after_position(before), vec![]);
        assert_eq!(backend.calls(), vec![create_call("a"), create_call("b")]);
    }

    /// A step for a script: the first time it runs, another instance
    /// records the meeting first, on `winner` with `winner_run`.
    fn racing_store(
        world: &World,
        winner: ServerId,
        winner_run: &'static str,
    ) -> impl Fn() + Send + Sync + 'static {
        let store = world.store.clone();
        let raced = AtomicBool::new(false);
        move || {
            if !raced.swap(true, Ordering::SeqCst) {
                store
                    .append_raw(
                        &meeting_stream(&TenantId::default_tenant(), &meeting_id("room")),
                        0,
                        &[created("room", winner_run, winner, NOW_MS - 10)],
                        &EventMetadata::actor("another-instance"),
                    )
                    .expect("the other instance records first");
            }
        }
    }

    #[tokio::test]
    async fn a_create_that_loses_the_race_ends_its_stray_copy_and_answers_with_the_winners_run() {
        let world = World::new();
        let _ours = world.server("ours").await;
        let theirs = world.server("theirs").await;
        let race = racing_store(&world, theirs, "theirs-1");
        let backend = Arc::new(ScriptedBackend::new(move |target, call, _| match call {
            "create" if target.url == url("ours") => {
                race();
                answers::create_success("room", "ours-1", NOW_MS)
            }
            "create" if target.url == url("theirs") => {
                answers::create_duplicate("room", "theirs-1", NOW_MS - 10)
            }
            "end" if target.url == url("ours") => answers::end_sent(),
            _ => unexpected(target.url, call),
        }));
        let meetings = world.meetings(&backend).await;
        let before = world.store.position();

        let answer = meetings
            .create(&request("create", CREATE), &asked())
            .await
            .unwrap();

        assert_eq!(
            world.store.events_after_position(before),
            vec![created("room", "theirs-1", theirs, NOW_MS - 10)],
            "only the winner's run is recorded"
        );
        assert_eq!(
            backend.calls(),
            vec![
                create_call("ours"),
                BackendCall::new(url("ours"), "end", "meetingID=room&password=mp"),
                create_call("theirs"),
            ]
        );
        assert_eq!(answer.summary.field("internalMeetingID"), Some("theirs-1"));
        let record = world
            .store
            .meeting(&TenantId::default_tenant(), &meeting_id("room"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((record.run.server_id, record.version), (theirs, 1));
    }

    #[tokio::test]
    async fn a_create_that_loses_the_race_on_the_same_server_ends_nothing() {
        let world = World::new();
        let shared = world.server("shared").await;
        world.server("spare").await;
        let race = racing_store(&world, shared, "shared-1");
        let backend = Arc::new(ScriptedBackend::new(move |target, call, _| match call {
            "create" if target.url == url("shared") => {
                race();
                answers::create_duplicate("room", "shared-1", NOW_MS - 10)
            }
            _ => unexpected(target.url, call),
        }));
        let meetings = world.meetings(&backend).await;
        let before = world.store.position();

        let answer = meetings
            .create(&request("create", CREATE), &asked())
            .await
            .unwrap();

        assert_eq!(
            world.store.events_after_position(before),
            vec![created("room", "shared-1", shared, NOW_MS - 10)]
        );
        assert_eq!(
            backend.calls(),
            vec![create_call("shared"), create_call("shared")],
            "no end: the winner's run is that very copy"
        );
        assert_eq!(answer.summary.field("internalMeetingID"), Some("shared-1"));
    }

    #[tokio::test]
    async fn a_create_that_only_lost_to_an_end_keeps_its_copy_and_records_its_run() {
        let world = World::new();
        let old = world.server("old").await;
        world.meeting("room", "room-0", old, NOW_MS - 60_000).await;
        world.on_server(old, ServerCommand::Disable).await;
        let ours = world.server("ours").await;
        let store = world.store.clone();
        let backend = Arc::new(ScriptedBackend::new(move |target, call, _| match call {
            "create" if target.url == url("ours") => {
                // Meanwhile a poll records the old run as gone.
                store
                    .append_raw(
                        &meeting_stream(&TenantId::default_tenant(), &meeting_id("room")),
                        1,
                        &[ended("room-0", EndReason::GoneFromServer, NOW_MS)],
                        &EventMetadata::actor("worker:reconcile"),
                    )
                    .expect("the poll records the end first");
                answers::create_success("room", "ours-1", NOW_MS)
            }
            _ => unexpected(target.url, call),
        }));
        let meetings = world.meetings(&backend).await;
        let before = world.store.position();

        let answer = meetings
            .create(&request("create", CREATE), &asked())
            .await
            .unwrap();

        assert_eq!(
            world.store.events_after_position(before),
            vec![
                ended("room-0", EndReason::GoneFromServer, NOW_MS),
                created("room", "ours-1", ours, NOW_MS),
            ]
        );
        assert_eq!(
            backend.calls(),
            vec![create_call("ours")],
            "no end: nobody else runs the meeting"
        );
        assert_eq!(answer.summary.field("internalMeetingID"), Some("ours-1"));
    }

    #[tokio::test]
    async fn a_cordoned_server_takes_no_new_meeting_but_still_serves_its_running_one() {
        let world = World::new();
        let cordoned = world.server("cordoned").await;
        world.meeting("room", "room-1", cordoned, NOW_MS).await;
        // Busier than the cordoned server: only the cordon keeps new meetings off it.
        let open = world.server("open").await;
        world.meeting("m1", "m1-1", open, NOW_MS).await;
        world.meeting("m2", "m2-1", open, NOW_MS).await;
        world.on_server(cordoned, ServerCommand::Cordon).await;
        let backend = Arc::new(ScriptedBackend::new(|target, call, query| match call {
            "create" if target.url == url("cordoned") => {
                answers::create_duplicate("room", "room-1", NOW_MS)
            }
            "create" if target.url == url("open") => {
                let id = answers::param(query, "meetingID").unwrap();
                answers::create_success(&id, &format!("{id}-1"), NOW_MS)
            }
            _ => unexpected(target.url, call),
        }));
        let meetings = world.meetings(&backend).await;
        let before = world.store.position();

        let again = meetings
            .create(&request("create", CREATE), &asked())
            .await
            .unwrap();
        assert_eq!(again.summary.message_key(), Some("duplicateWarning"));
        assert_eq!(backend.take_calls(), vec![create_call("cordoned")]);

        let JoinOutcome::Redirect(to) = meetings.join(&request("join", JOIN)).await.unwrap() else {
            panic!("a join redirects");
        };
        assert_eq!(
            to,
            format!(
                "{}api/join?{JOIN}&checksum={}",
                url("cordoned"),
                sign(ChecksumAlgorithm::Sha1, "join", JOIN, &secret("cordoned"))
            )
        );
        assert_eq!(backend.take_calls(), vec![], "a redirect asks no server");

        meetings
            .create(&request("create", "meetingID=fresh&name=fresh"), &asked())
            .await
            .unwrap();
        assert_eq!(
            backend.take_calls(),
            vec![BackendCall::new(
                url("open"),
                "create",
                "meetingID=fresh&name=fresh"
            )]
        );
        assert_eq!(
            world.store.events_after_position(before),
            vec![created("fresh", "fresh-1", open, NOW_MS)]
        );
    }

    #[tokio::test]
    async fn a_meeting_on_an_offline_server_answers_server_unavailable_and_is_not_split() {
        let world = World::new();
        let down = world.server("down").await;
        world.meeting("room", "room-1", down, NOW_MS).await;
        world.server("spare").await;
        world.on_server(down, ServerCommand::MarkOffline).await;
        let backend = Arc::new(ScriptedBackend::new(|target, call, _| {
            unexpected(target.url, call)
        }));
        let meetings = world.meetings(&backend).await;
        let before = world.store.position();

        let create = meetings.create(&request("create", CREATE), &asked()).await;
        let join = meetings.join(&request("join", JOIN)).await;

        assert!(
            matches!(create, Err(CallError::ServerUnavailable)),
            "{create:?}"
        );
        assert!(
            matches!(join, Err(CallError::ServerUnavailable)),
            "{join:?}"
        );
        assert_eq!(world.store.events_after_position(before), vec![]);
        assert_eq!(backend.calls(), vec![]);
    }

    #[tokio::test]
    async fn a_meeting_on_a_disabled_server_is_placed_anew_replacing_its_old_run() {
        let world = World::new();
        let old = world.server("old").await;
        world.meeting("room", "room-1", old, NOW_MS - 60_000).await;
        let new = world.server("new").await;
        world.on_server(old, ServerCommand::Disable).await;
        let backend = Arc::new(ScriptedBackend::new(|target, call, _| match call {
            "create" if target.url == url("new") => {
                answers::create_success("room", "room-2", NOW_MS)
            }
            _ => unexpected(target.url, call),
        }));
        let meetings = world.meetings(&backend).await;
        let before = world.store.position();

        meetings
            .create(&request("create", CREATE), &asked())
            .await
            .unwrap();

        assert_eq!(
            world.store.events_after_position(before),
            vec![
                ended("room-1", EndReason::Replaced, NOW_MS),
                created("room", "room-2", new, NOW_MS),
            ]
        );
        assert_eq!(backend.calls(), vec![create_call("new")]);
    }

    /// Given: the tenant `acme` running at most `max_meetings` meetings, as
    /// the facade hands its configuration to the use cases.
    async fn acme(world: &World, max_meetings: u64) -> Arc<TenantConfig> {
        let stream = tenant_stream("acme");
        let commands = [
            TenantCommand::Create {
                name: "acme".into(),
                secret: "acme-secret-1".into(),
            },
            TenantCommand::SetLimits(TenantLimits {
                max_meetings: Some(max_meetings),
                max_attendees: None,
            }),
        ];
        for command in &commands {
            world
                .executor
                .execute::<Tenant>(&stream, command, &given())
                .await
                .unwrap();
        }
        Arc::new(world.store.tenant("acme").await.unwrap().unwrap())
    }

    fn acme_request(query: &str, config: &Arc<TenantConfig>) -> ApiRequest {
        ApiRequest {
            tenant: TenantId("acme".into()),
            tenant_config: Some(config.clone()),
            signed_with: None,
            ..request("create", query)
        }
    }

    /// `MeetingCreated` of `acme`.
    fn acme_created(id: &str, internal_id: &str, server: ServerId) -> DomainEvent {
        DomainEvent::Meeting(MeetingEvent::MeetingCreated {
            tenant: TenantId("acme".into()),
            meeting_id: meeting_id(id),
            name: id.to_owned(),
            run: MeetingRun {
                internal_id: internal_id.to_owned(),
                server_id: server,
                create_time_ms: NOW_MS,
                recording_ready_url: None,
                callbacks: None,
            },
        })
    }

    #[tokio::test]
    async fn a_tenant_at_its_meeting_limit_gets_max_meetings_and_no_server_is_asked() {
        let world = World::new();
        world.server("a").await;
        let b = world.server("b").await;
        let config = acme(&world, 1).await;
        let started = AtomicBool::new(false);
        let backend = Arc::new(ScriptedBackend::new(move |target, call, query| {
            let id = answers::param(query, "meetingID").unwrap();
            match call {
                "create" if id == "first" && started.swap(true, Ordering::SeqCst) => {
                    answers::create_duplicate("first", "first-1", NOW_MS)
                }
                "create" => answers::create_success(&id, &format!("{id}-1"), NOW_MS),
                _ => unexpected(target.url, call),
            }
        }));
        let meetings = world.meetings(&backend).await;
        let first = "meetingID=first&name=first";
        meetings
            .create(&acme_request(first, &config), &asked())
            .await
            .unwrap();
        assert_eq!(
            backend.take_calls(),
            vec![BackendCall::new(url("a"), "create", first)]
        );
        let before = world.store.position();

        let refused = meetings
            .create(&acme_request(CREATE, &config), &asked())
            .await;

        assert!(
            matches!(refused, Err(CallError::MaxMeetings(1))),
            "{refused:?}"
        );
        assert_eq!(backend.take_calls(), vec![], "no server is asked");
        assert_eq!(world.store.events_after_position(before), vec![]);

        let again = meetings
            .create(&acme_request(first, &config), &asked())
            .await
            .unwrap();
        assert_eq!(
            again.summary.message_key(),
            Some("duplicateWarning"),
            "its running meeting is no new one"
        );
        assert_eq!(
            backend.take_calls(),
            vec![BackendCall::new(url("a"), "create", first)]
        );

        let other = meetings.create(&request("create", CREATE), &asked()).await;
        assert!(other.is_ok(), "another tenant has no such limit: {other:?}");
        assert_eq!(backend.take_calls(), vec![create_call("b")]);
        assert_eq!(
            world.store.events_after_position(before),
            vec![created("room", "room-1", b, NOW_MS)]
        );
    }

    #[tokio::test]
    async fn a_tenant_under_its_meeting_limit_again_creates_once_a_meeting_ended() {
        let world = World::new();
        let a = world.server("a").await;
        let config = acme(&world, 1).await;
        let backend = Arc::new(ScriptedBackend::new(|target, call, query| match call {
            "create" => {
                let id = answers::param(query, "meetingID").unwrap();
                answers::create_success(&id, &format!("{id}-1"), NOW_MS)
            }
            _ => unexpected(target.url, call),
        }));
        let meetings = world.meetings(&backend).await;
        meetings
            .create(
                &acme_request("meetingID=first&name=first", &config),
                &asked(),
            )
            .await
            .unwrap();
        let first = world
            .store
            .meeting(&TenantId("acme".into()), &meeting_id("first"))
            .await
            .unwrap()
            .unwrap();
        crate::lifecycle::end_run(
            &world.executor,
            &first,
            EndReason::EndCalled,
            NOW_MS,
            &given(),
        )
        .await
        .unwrap();
        backend.take_calls();
        let before = world.store.position();

        meetings
            .create(&acme_request(CREATE, &config), &asked())
            .await
            .unwrap();

        assert_eq!(backend.calls(), vec![create_call("a")]);
        assert_eq!(
            world.store.events_after_position(before),
            vec![acme_created("room", "room-1", a)]
        );
    }

    #[tokio::test]
    async fn control_characters_are_stripped_from_the_recorded_name_and_meeting_id() {
        let world = World::new();
        let a = world.server("a").await;
        let backend = Arc::new(ScriptedBackend::new(|target, call, _| match call {
            "create" => answers::create_success("room", "room-1", NOW_MS),
            _ => unexpected(target.url, call),
        }));
        let meetings = world.meetings(&backend).await;
        // A tab and a NUL in the meetingID; a newline, DEL, ESC and a C1
        // control (NEL) in the name.
        let query = "meetingID=ro%09om%00&name=My%0ARoom%7F%1B%C2%85";
        let before = world.store.position();

        meetings
            .create(&request("create", query), &asked())
            .await
            .unwrap();

        assert_eq!(
            world.store.events_after_position(before),
            vec![DomainEvent::Meeting(MeetingEvent::MeetingCreated {
                tenant: TenantId::default_tenant(),
                meeting_id: meeting_id("room"),
                name: "MyRoom".into(),
                run: MeetingRun {
                    internal_id: "room-1".into(),
                    server_id: a,
                    create_time_ms: NOW_MS,
                    recording_ready_url: None,
                    callbacks: None,
                },
            })]
        );
        assert_eq!(
            backend.take_calls(),
            vec![BackendCall::new(url("a"), "create", query)],
            "the server gets the parameters as sent (BBB strips them itself)"
        );
        let listings = world.store.listings();
        assert_eq!(listings.len(), 1);
        assert!(
            listings[0].xml.starts_with(
                "<meeting><meetingName>MyRoom</meetingName><meetingID>room</meetingID>"
            ),
            "{}",
            listings[0].xml
        );
        assert!(!listings[0].xml.chars().any(char::is_control));

        let JoinOutcome::Redirect(to) = meetings
            .join(&request("join", "meetingID=room%09&fullName=Ann"))
            .await
            .unwrap()
        else {
            panic!("a join redirects");
        };
        assert!(to.starts_with(&format!("{}api/join?", url("a"))), "{to}");
    }
}
