//! The simulated server's in-memory state: meetings, attendees, request
//! counters, failure mode and latency.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::Rng;
use rand::distr::Alphanumeric;
use sha1::{Digest, Sha1};
use switchboard_domain::bbb::params::Params;

use crate::FailureMode;

/// The dial-in number BBB's default configuration announces.
pub(crate) const DEFAULT_DIAL_NUMBER: &str = "613-555-1234";

/// A user's role in a meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Moderator,
    Viewer,
}

impl Role {
    /// The role as BBB spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::Moderator => "MODERATOR",
            Role::Viewer => "VIEWER",
        }
    }

    /// Parses `MODERATOR` / `VIEWER`, case-insensitively.
    pub(crate) fn parse(text: &str) -> Option<Role> {
        if text.eq_ignore_ascii_case("moderator") {
            Some(Role::Moderator)
        } else if text.eq_ignore_ascii_case("viewer") {
            Some(Role::Viewer)
        } else {
            None
        }
    }
}

/// A user who joined a meeting.
#[derive(Debug, Clone)]
pub(crate) struct Attendee {
    pub(crate) user_id: String,
    pub(crate) full_name: String,
    pub(crate) role: Role,
    pub(crate) is_presenter: bool,
    pub(crate) customdata: Vec<(String, String)>,
}

/// A hook registered on the simulated server (`hooks/create`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimHook {
    pub(crate) id: String,
    pub(crate) callback_url: String,
    pub(crate) meeting_id: Option<String>,
}

/// A running meeting.
#[derive(Debug, Clone)]
pub(crate) struct Meeting {
    pub(crate) meeting_id: String,
    pub(crate) name: String,
    pub(crate) internal_id: String,
    pub(crate) parent_meeting_id: String,
    pub(crate) attendee_pw: String,
    pub(crate) moderator_pw: String,
    pub(crate) create_time: i64,
    pub(crate) create_date: String,
    pub(crate) voice_bridge: String,
    pub(crate) dial_number: String,
    pub(crate) duration: u64,
    pub(crate) max_users: u64,
    pub(crate) is_breakout: bool,
    pub(crate) metadata: Vec<(String, String)>,
    pub(crate) attendees: Vec<Attendee>,
    pub(crate) has_user_joined: bool,
    /// True once a moderator was made presenter (the first one to join).
    pub(crate) has_presenter: bool,
    pub(crate) last_join_params: Option<Vec<(String, String)>>,
    /// The decoded parameters of the create that made the meeting.
    pub(crate) create_params: Vec<(String, String)>,
}

impl Meeting {
    /// True once the first user joined (BBB reports a meeting as running from
    /// then on; the simulator has no "leave").
    pub(crate) fn running(&self) -> bool {
        self.has_user_joined && !self.attendees.is_empty()
    }

    /// Number of moderators among the attendees.
    pub(crate) fn moderator_count(&self) -> usize {
        self.attendees
            .iter()
            .filter(|a| a.role == Role::Moderator)
            .count()
    }
}

/// What `create` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateOutcome {
    /// A new meeting was created.
    Created,
    /// The meeting already ran and the given passwords (if any) matched.
    Duplicate,
    /// The meeting already ran with other passwords.
    IdNotUnique,
}

/// Every meeting on the server, by external meeting ID.
#[derive(Debug, Default)]
pub(crate) struct Meetings {
    by_id: HashMap<String, Meeting>,
    voice_bridges: HashSet<String>,
}

impl Meetings {
    /// The meeting with that external ID.
    pub(crate) fn get(&self, meeting_id: &str) -> Option<&Meeting> {
        self.by_id.get(meeting_id)
    }

    /// The meeting with that external ID, mutable.
    pub(crate) fn get_mut(&mut self, meeting_id: &str) -> Option<&mut Meeting> {
        self.by_id.get_mut(meeting_id)
    }

    /// Number of meetings.
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Every meeting, oldest first (ties broken by ID for a stable order).
    pub(crate) fn sorted(&self) -> Vec<&Meeting> {
        let mut all: Vec<&Meeting> = self.by_id.values().collect();
        all.sort_unstable_by(|a, b| {
            (a.create_time, &a.meeting_id).cmp(&(b.create_time, &b.meeting_id))
        });
        all
    }

    /// Every external meeting ID.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.by_id.keys().cloned().collect()
    }

    /// Removes a meeting; returns it if it existed.
    pub(crate) fn remove(&mut self, meeting_id: &str) -> Option<Meeting> {
        let meeting = self.by_id.remove(meeting_id)?;
        self.voice_bridges.remove(&meeting.voice_bridge);
        Some(meeting)
    }

    /// Creates a meeting, or reports that it already exists. `params` are the
    /// create call's decoded parameters (passwords, `voiceBridge`, `meta_*`, ...).
    pub(crate) fn create(
        &mut self,
        meeting_id: &str,
        name: &str,
        params: &Params,
    ) -> CreateOutcome {
        if let Some(existing) = self.by_id.get(meeting_id) {
            let matches = |given: Option<&str>, stored: &str| given.is_none_or(|g| g == stored);
            return if matches(params.non_empty("attendeePW"), &existing.attendee_pw)
                && matches(params.non_empty("moderatorPW"), &existing.moderator_pw)
            {
                CreateOutcome::Duplicate
            } else {
                CreateOutcome::IdNotUnique
            };
        }
        let create_time = chrono::Utc::now().timestamp_millis();
        let voice_bridge = match params.non_empty("voiceBridge") {
            Some(given) => given.to_owned(),
            None => self.free_voice_bridge(),
        };
        let metadata = params
            .iter()
            .filter_map(|(key, value)| {
                let rest = key.strip_prefix("meta_")?;
                Some((rest.to_lowercase(), value.to_owned()))
            })
            .collect();
        let meeting = Meeting {
            meeting_id: meeting_id.to_owned(),
            name: name.to_owned(),
            internal_id: internal_meeting_id(meeting_id, create_time),
            parent_meeting_id: params
                .non_empty("parentMeetingID")
                .unwrap_or("bbb-none")
                .to_owned(),
            attendee_pw: params
                .non_empty("attendeePW")
                .map_or_else(|| random_alphanumeric(8), str::to_owned),
            moderator_pw: params
                .non_empty("moderatorPW")
                .map_or_else(|| random_alphanumeric(8), str::to_owned),
            create_time,
            create_date: java_date(create_time),
            voice_bridge: voice_bridge.clone(),
            dial_number: params
                .non_empty("dialNumber")
                .unwrap_or(DEFAULT_DIAL_NUMBER)
                .to_owned(),
            duration: parse_number(params.get("duration")),
            max_users: parse_number(params.get("maxParticipants")),
            is_breakout: params
                .get("isBreakout")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            metadata,
            attendees: Vec::new(),
            has_user_joined: false,
            has_presenter: false,
            last_join_params: None,
            create_params: params
                .iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
        };
        self.voice_bridges.insert(voice_bridge);
        self.by_id.insert(meeting_id.to_owned(), meeting);
        CreateOutcome::Created
    }

    /// A random 5-digit voice bridge not used by a running meeting (BBB tries
    /// ten times, then lives with a collision).
    fn free_voice_bridge(&self) -> String {
        let mut rng = rand::rng();
        let mut candidate = String::new();
        for _ in 0..10 {
            candidate = rng.random_range(10_000..100_000u32).to_string();
            if !self.voice_bridges.contains(&candidate) {
                break;
            }
        }
        candidate
    }
}

/// `sha1hex(meetingID) + "-" + createTimeMillis`, BBB's internal meeting ID.
pub(crate) fn internal_meeting_id(meeting_id: &str, create_time: i64) -> String {
    format!(
        "{}-{create_time}",
        hex::encode(Sha1::digest(meeting_id.as_bytes()))
    )
}

/// `len` random ASCII letters and digits.
pub(crate) fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// `len` random lower-case letters and digits (BBB's user IDs and tokens).
pub(crate) fn random_token(len: usize) -> String {
    random_alphanumeric(len).to_ascii_lowercase()
}

/// Milliseconds since the epoch in Java's `Date.toString()` form, as BBB
/// prints `createDate` (`Wed Mar 05 14:30:43 UTC 2025`).
fn java_date(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .format("%a %b %d %H:%M:%S UTC %Y")
        .to_string()
}

/// A non-negative integer parameter, 0 when absent or not a number.
fn parse_number(value: Option<&str>) -> u64 {
    value.and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// State shared by the HTTP handlers and every [`crate::Simulator`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The one shared secret, as a list for `checksum::verify`.
    pub(crate) secrets: Vec<String>,
    /// Reported by the index call.
    pub(crate) bbb_version: String,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) origin: String,
    latency_nanos: AtomicU64,
    failure: AtomicU8,
    meetings: Mutex<Meetings>,
    request_counts: Mutex<HashMap<String, usize>>,
    node: Mutex<crate::node::Node>,
    /// Fire BBB's end-of-meeting callbacks (on by default).
    pub(crate) fire_callbacks: std::sync::atomic::AtomicBool,
    /// Hooks registered with `hooks/create`.
    pub(crate) hooks: Mutex<Vec<SimHook>>,
    /// Callbacks fired and the status each got (0: no answer).
    pub(crate) fired: Arc<Mutex<Vec<(String, u16)>>>,
}

impl Shared {
    /// Fresh state.
    pub(crate) fn new(
        secret: String,
        bbb_version: String,
        origin: String,
        latency: Duration,
    ) -> Self {
        let shared = Shared {
            secrets: vec![secret],
            bbb_version,
            origin,
            latency_nanos: AtomicU64::new(0),
            failure: AtomicU8::new(FailureMode::None.to_u8()),
            meetings: Mutex::new(Meetings::default()),
            request_counts: Mutex::new(HashMap::new()),
            node: Mutex::new(crate::node::Node::default()),
            fire_callbacks: std::sync::atomic::AtomicBool::new(true),
            fired: Arc::new(Mutex::new(Vec::new())),
            hooks: Mutex::new(Vec::new()),
        };
        shared.set_latency(latency);
        shared
    }

    /// The shared secret.
    pub(crate) fn secret(&self) -> &str {
        &self.secrets[0]
    }

    /// Locks the meeting table (a poisoned lock is taken over: the data stay
    /// consistent because no handler panics half-way through an update).
    pub(crate) fn meetings(&self) -> MutexGuard<'_, Meetings> {
        self.meetings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the simulated machine's CPU and memory.
    pub(crate) fn node(&self) -> MutexGuard<'_, crate::node::Node> {
        self.node.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The latency added to every answer.
    pub(crate) fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_nanos.load(Ordering::Relaxed))
    }

    /// Sets the latency added to every answer.
    pub(crate) fn set_latency(&self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latency_nanos.store(nanos, Ordering::Relaxed);
    }

    /// The current failure mode.
    pub(crate) fn failure(&self) -> FailureMode {
        FailureMode::from_u8(self.failure.load(Ordering::Relaxed))
    }

    /// Sets the failure mode.
    pub(crate) fn set_failure(&self, mode: FailureMode) {
        self.failure.store(mode.to_u8(), Ordering::Relaxed);
    }

    /// Counts one request for `call`.
    pub(crate) fn count_request(&self, call: &str) {
        let mut counts = self
            .request_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match counts.get_mut(call) {
            Some(count) => *count += 1,
            None => {
                counts.insert(call.to_owned(), 1);
            }
        }
    }

    /// How many requests for `call` arrived.
    pub(crate) fn request_count(&self, call: &str) -> usize {
        self.request_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(call)
            .copied()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Params {
        Params::parse(query).unwrap()
    }

    #[test]
    fn create_generates_passwords_and_lowercases_metadata_keys() {
        let mut meetings = Meetings::default();
        let outcome = meetings.create(
            "room-1",
            "Room",
            &params("meta_endCallbackUrl=https%3A%2F%2Fx&meta_bbb-origin=Moodle"),
        );
        assert_eq!(outcome, CreateOutcome::Created);
        let meeting = meetings.get("room-1").unwrap();
        assert_eq!(meeting.attendee_pw.len(), 8);
        assert!(
            meeting
                .attendee_pw
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        );
        assert_eq!(meeting.moderator_pw.len(), 8);
        assert_eq!(meeting.voice_bridge.len(), 5);
        assert_eq!(meeting.parent_meeting_id, "bbb-none");
        assert_eq!(
            meeting.metadata,
            vec![
                ("endcallbackurl".to_owned(), "https://x".to_owned()),
                ("bbb-origin".to_owned(), "Moodle".to_owned()),
            ]
        );
        let (sha, time) = meeting.internal_id.split_once('-').unwrap();
        assert_eq!(sha, hex::encode(Sha1::digest(b"room-1")));
        assert_eq!(time, meeting.create_time.to_string());
    }

    #[test]
    fn duplicate_create_checks_given_passwords() {
        let mut meetings = Meetings::default();
        meetings.create("m1", "M", &params("attendeePW=ap&moderatorPW=mp"));
        assert_eq!(
            meetings.create("m1", "M", &params("")),
            CreateOutcome::Duplicate
        );
        assert_eq!(
            meetings.create("m1", "M", &params("attendeePW=ap&moderatorPW=mp")),
            CreateOutcome::Duplicate
        );
        assert_eq!(
            meetings.create("m1", "M", &params("moderatorPW=other")),
            CreateOutcome::IdNotUnique
        );
        assert!(meetings.remove("m1").is_some());
        assert!(meetings.remove("m1").is_none());
        assert_eq!(meetings.len(), 0);
    }

    #[test]
    fn java_date_format() {
        assert_eq!(java_date(1_741_185_043_000), "Wed Mar 05 14:30:43 UTC 2025");
    }

    #[test]
    fn request_counts_and_settings() {
        let shared = Shared::new(
            "s".into(),
            "3.0.0".into(),
            "http://127.0.0.1:1".into(),
            Duration::from_millis(5),
        );
        assert_eq!(shared.latency(), Duration::from_millis(5));
        shared.count_request("create");
        shared.count_request("create");
        assert_eq!(shared.request_count("create"), 2);
        assert_eq!(shared.request_count("join"), 0);
        shared.set_failure(FailureMode::Garbage);
        assert_eq!(shared.failure(), FailureMode::Garbage);
    }
}
