//! One typed settings struct, read from (lowest to highest precedence) the
//! defaults, a TOML file, `SWITCHBOARD_*` environment variables and command
//! line flags. The environment is read through [`EnvSource`] so tests never
//! touch the process environment. Secrets are never printed by `Debug`.

use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use switchboard_domain::bbb::checksum::ChecksumAlgorithm;
use switchboard_domain::load::LoadWeights;
use thiserror::Error;

/// Where environment variables come from.
pub trait EnvSource {
    /// The value of a variable, if set.
    fn var(&self, key: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, key: &str) -> Option<String> {
        self.get(key).cloned()
    }
}

/// A setting that could not be read.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A value is not valid.
    #[error("invalid value for {key}: {reason}")]
    Invalid {
        /// Setting or variable name.
        key: String,
        /// Why.
        reason: String,
    },
}

/// Health polling settings.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSettings {
    /// Seconds between polls.
    pub interval_secs: f64,
    /// Timeout of one poll request, milliseconds.
    pub timeout_ms: u64,
    /// Consecutive failures before a server counts as offline.
    pub offline_after: u32,
    /// Consecutive successes before it counts as online again.
    pub online_after: u32,
    /// A run Switchboard recorded less than this many seconds before a poll
    /// started is not reconciled away by that poll (the margin for clock
    /// differences between Switchboard's own instances).
    pub reconcile_grace_secs: f64,
    /// Record meetings found on servers but unknown to Switchboard as its own.
    pub adopt_unknown: bool,
    /// Meetings of a server that went offline: `keep` (for
    /// `offline_grace_secs`, then forget) or `forget` (at once, like Scalelite).
    pub offline_meetings: String,
    /// How long `keep` keeps them, seconds.
    pub offline_grace_secs: f64,
    /// Servers polled at once.
    pub concurrency: usize,
    /// CPU and memory read from servers' metrics URLs are averaged over this
    /// many seconds; a last good value is used this long when reads fail.
    pub metrics_window_secs: f64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            interval_secs: 10.0,
            timeout_ms: 3000,
            offline_after: 3,
            online_after: 1,
            reconcile_grace_secs: 0.25,
            adopt_unknown: false,
            offline_meetings: "keep".to_owned(),
            offline_grace_secs: 300.0,
            concurrency: 64,
            metrics_window_secs: 300.0,
        }
    }
}

/// A secret read from the settings: kept as written, printed as
/// `<redacted>`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How recordings are imported, stored and played back.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingSettings {
    /// Root of the recording tree (`published/`, `unpublished/`, `captions/`);
    /// default `<data_dir>/recordings`.
    pub dir: Option<PathBuf>,
    /// The spool directory archives arrive in; default `<data_dir>/spool`.
    pub spool_dir: Option<PathBuf>,
    /// Seconds an archive must stay unchanged before it is imported.
    pub spool_settle_secs: f64,
    /// Seconds between rescans of the spool (the watcher can miss events).
    pub rescan_interval_secs: f64,
    /// Run the spool importer in this process.
    pub import: bool,
    /// Attempts of one import before the archive waits for the next rescan.
    pub import_attempts: u32,
    /// Milliseconds before the first retry of an import or callback (doubles).
    pub retry_base_ms: u64,
    /// Keep imported archives in `<spool>/done` (else delete them).
    pub keep_done: bool,
    /// `serve` (Switchboard serves playback files) or `x-accel-redirect`
    /// (nginx serves them; see `ops/nginx/switchboard-recordings.conf`).
    pub playback: String,
    /// The internal nginx location `X-Accel-Redirect` points into; it must
    /// alias `<dir>/published/`.
    pub x_accel_prefix: String,
    /// The installed BBB presentation player (bbb-playback), served at
    /// `/playback/presentation/2.3/`; e.g. `/var/bigbluebutton/playback/presentation/2.3`.
    pub presentation_player_dir: Option<PathBuf>,
    /// Seconds a protected recording's one-time link stays valid.
    pub link_ttl_secs: u64,
    /// Seconds the playback cookie a link sets stays valid.
    pub cookie_ttl_secs: u64,
    /// `Cache-Control` max-age of unprotected playback files, seconds.
    pub cache_max_age_secs: u64,
    /// Largest archive the upload endpoint takes, bytes.
    pub upload_max_bytes: u64,
    /// Superseded by `[callbacks] retry_hours` (every callback is now a
    /// durable delivery attempted for a time); still read so existing files
    /// load.
    pub callback_attempts: u32,
    /// Largest caption file putRecordingTextTrack takes, bytes.
    pub text_track_max_bytes: usize,
    /// Largest recording archive imported (sum of its files), bytes.
    pub archive_max_bytes: u64,
    /// Largest single file in an archive, bytes.
    pub archive_max_file_bytes: u64,
    /// Most entries (files and folders) in an archive.
    pub archive_max_entries: u64,
    /// Days imported archives stay in `<spool>/done` (with `keep_done`).
    pub keep_done_days: f64,
    /// Days refused archives stay in `<spool>/failed` with their reasons.
    pub keep_failed_days: f64,
    /// Days recordings are kept after they end, for tenants without their
    /// own value (`SWITCHBOARD_RECORDINGS_RETENTION_DAYS`; absent or
    /// `none`: kept until deleted). docs/recordings.md.
    pub retention_days: Option<u32>,
    /// Where recordings are kept when not in the tree under `dir`: another
    /// directory or `s3://BUCKET/PREFIX` (`SWITCHBOARD_RECORDINGS_STORE`).
    /// Tenants may have their own (`tenants recordings-store`).
    pub store: Option<String>,
    /// An S3-compatible server's `http(s)://host:port`
    /// (`SWITCHBOARD_S3_ENDPOINT`); unset: AWS. Credentials and region come
    /// from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`.
    pub s3_endpoint: Option<String>,
    /// The S3 region (else `AWS_REGION`, else `us-east-1`).
    pub s3_region: Option<String>,
    /// The S3 access key id (else `AWS_ACCESS_KEY_ID`).
    pub s3_access_key_id: Option<String>,
    /// The S3 secret access key (else `AWS_SECRET_ACCESS_KEY`); never
    /// printed.
    pub s3_secret_access_key: Option<SecretText>,
    /// Virtual-hosted bucket addressing (`https://BUCKET.host/`); default
    /// the path style most S3-compatible servers want
    /// (`SWITCHBOARD_S3_VIRTUAL_HOSTED`).
    pub s3_virtual_hosted: bool,
    /// How recordings in an object store are played back: `redirect` to a
    /// short-lived presigned URL (default), or `stream` them through
    /// Switchboard (`SWITCHBOARD_RECORDINGS_OBJECT_PLAYBACK`).
    pub object_playback: String,
    /// Seconds a presigned playback URL is valid.
    pub presign_ttl_secs: u64,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        Self {
            dir: None,
            spool_dir: None,
            spool_settle_secs: 10.0,
            rescan_interval_secs: 60.0,
            import: true,
            import_attempts: 3,
            retry_base_ms: 1000,
            keep_done: true,
            playback: "serve".to_owned(),
            x_accel_prefix: "/switchboard-recordings".to_owned(),
            presentation_player_dir: None,
            link_ttl_secs: 300,
            cookie_ttl_secs: 4 * 3600,
            cache_max_age_secs: 3600,
            upload_max_bytes: 8 << 30,
            callback_attempts: 6,
            text_track_max_bytes: 8 << 20,
            archive_max_bytes: 8 << 30,
            archive_max_file_bytes: 4 << 30,
            archive_max_entries: 100_000,
            keep_done_days: 7.0,
            retention_days: None,
            keep_failed_days: 30.0,
            store: None,
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_virtual_hosted: false,
            object_playback: "redirect".to_owned(),
            presign_ttl_secs: 3600,
        }
    }
}

/// How callbacks to front-ends are relayed (see docs/callbacks.md).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CallbackSettings {
    /// Switchboard's URL as BBB servers reach it (their callbacks go
    /// there); default: `public_url`.
    pub url: Option<String>,
    /// Hours a delivery is attempted before it is given up.
    pub retry_hours: f64,
    /// Seconds before the second attempt (doubling after).
    pub first_retry_secs: f64,
    /// Longest wait between attempts, seconds.
    pub max_retry_secs: f64,
    /// Milliseconds between looks at the outbox for due deliveries.
    pub poll_interval_ms: u64,
    /// Deliveries attempted at once per process.
    pub concurrency: usize,
    /// Seconds the end callbacks owed when polling finds a run gone (its
    /// server never called) wait for the server's own late call.
    pub fallback_grace_secs: f64,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        Self {
            url: None,
            retry_hours: 24.0,
            first_retry_secs: 30.0,
            max_retry_secs: 3600.0,
            poll_interval_ms: 250,
            concurrency: 16,
            fallback_grace_secs: 30.0,
        }
    }
}

/// How node agents' heartbeats are judged (see ops/deploy/agent.md).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSection {
    /// Heartbeat intervals a server's agent may miss before the server
    /// counts as offline.
    pub missed_heartbeats: u32,
    /// Whether servers with an agent are still polled (then only to
    /// reconcile their meetings; health, load, CPU and memory come from the
    /// agent). Unpolled, they are reconciled from the agent's heartbeats.
    pub poll: bool,
    /// Milliseconds between writes of the heartbeats taken (batched).
    pub flush_interval_ms: u64,
    /// Milliseconds between looks for agents that went silent.
    pub watch_interval_ms: u64,
}

impl Default for AgentSection {
    fn default() -> Self {
        Self {
            missed_heartbeats: 3,
            poll: false,
            flush_interval_ms: 200,
            watch_interval_ms: 500,
        }
    }
}

/// How meetings are created and listed beyond placement: voice bridges,
/// passwords, tenant metadata and the calls an operator may switch off
/// (Scalelite's settings of the same names in brackets).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MeetingsSection {
    /// Hand each meeting a voiceBridge unique across the pool (Scalelite
    /// always does); false leaves voice bridges to the servers.
    pub unique_voice_bridges: bool,
    /// Digits of an allocated voice bridge (`VOICE_BRIDGE_LEN`): 5 as BBB,
    /// up to 9 as Scalelite's default.
    pub voice_bridge_length: u32,
    /// Keep a front-end's own voiceBridge when it is free, refusing the
    /// create with `nonUniqueVoiceBridge` when another meeting holds it
    /// (`USE_EXTERNAL_VOICE_BRIDGE`); false always allocates.
    pub keep_requested_voice_bridge: bool,
    /// Fill a missing moderatorPW/attendeePW of a new meeting with an
    /// 8-character password derived from a stored key (every instance and
    /// server agrees on it), as Scalelite fills them.
    pub fill_passwords: bool,
    /// Add `meta_tenant-id` and `meta_tenant-name` to a tenant's creates.
    pub tenant_metadata: bool,
    /// Answer getMeetings (`GET_MEETINGS_API_DISABLED` is the opposite):
    /// false answers every getMeetings with no meetings.
    pub get_meetings: bool,
    /// Refuse getRecordings without meetingID or recordID
    /// (`GET_RECORDINGS_API_FILTERED`), with `missingParameters`.
    pub get_recordings_filtered: bool,
}

impl Default for MeetingsSection {
    fn default() -> Self {
        Self {
            unique_voice_bridges: true,
            voice_bridge_length: 5,
            keep_requested_voice_bridge: true,
            fill_passwords: true,
            tenant_metadata: false,
            get_meetings: true,
            get_recordings_filtered: false,
        }
    }
}

/// Parameter rules for every create and join (Scalelite's
/// `DEFAULT_`/`OVERRIDE_CREATE_PARAMS`, `CREATE_EXCLUDE_PARAMS`,
/// `MAX_MEETING_DURATION` and the join ones), with Scalelite's precedence:
/// a tenant's overrides, these overrides, the front-end's values, a
/// tenant's defaults, these defaults.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PolicySection {
    /// Rules for create, in order.
    pub create: Vec<switchboard_domain::tenant::ParamRule>,
    /// Rules for join, in order.
    pub join: Vec<switchboard_domain::tenant::ParamRule>,
}

/// Scalelite's admin API (`/scalelite/api/`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ScaleliteSection {
    /// Serve Scalelite's admin API. Off by default: it is signed with the
    /// BBB secret, which every front-end's administrator can read, and it
    /// manages servers and tenants (and shows their secrets, as
    /// Scalelite's does). `import-scalelite-env` switches it on.
    pub admin_api: bool,
}

/// The operator console (`/console`; docs/console.md).
#[derive(Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSection {
    /// Serve the console on `serve`'s listener (default true;
    /// `SWITCHBOARD_CONSOLE`).
    pub enabled: bool,
    /// Serve it on `worker`'s listener too (default false;
    /// `SWITCHBOARD_WORKER_CONSOLE`).
    pub on_worker: bool,
    /// Where browsers reach it when a reverse proxy serves it on another
    /// path (`SWITCHBOARD_CONSOLE_PATH`, e.g. `/lb/console`); links and the
    /// cookie's path use it. Default `/console`; an `X-Forwarded-Prefix`
    /// header is put in front of it.
    pub public_path: String,
    /// Hours of polled figures the charts keep (`server_series`, one point
    /// per server and minute; `SWITCHBOARD_CONSOLE_HISTORY_HOURS`, 0: none).
    pub history_hours: u64,
    /// Hours a console sign-in lasts (default 12, at most 720).
    pub session_hours: u64,
    /// The key console sessions are signed with
    /// (`SWITCHBOARD_CONSOLE_KEY`, at least 32 characters): the same on
    /// every instance of a pool, so a session holds whichever instance
    /// answers. Unset: a random key per process (sessions end when it
    /// restarts and hold only on the instance that opened them).
    pub session_key: Option<String>,
}

impl fmt::Debug for ConsoleSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleSection")
            .field("enabled", &self.enabled)
            .field("on_worker", &self.on_worker)
            .field("public_path", &self.public_path)
            .field("history_hours", &self.history_hours)
            .field("session_hours", &self.session_hours)
            .field(
                "session_key",
                &self.session_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Default for ConsoleSection {
    fn default() -> Self {
        Self {
            enabled: true,
            on_worker: false,
            public_path: "/console".to_owned(),
            history_hours: 24,
            session_hours: 12,
            session_key: None,
        }
    }
}

/// Scalelite's FreeSWITCH dial-plan endpoint (`POST /fsapi`).
#[derive(Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FsapiSection {
    /// Answer `/fsapi` at all (default true, as Scalelite).
    pub enabled: bool,
    /// HTTP basic password of user `fsapi` (`FSAPI_PASSWORD`); absent or
    /// empty: the first BBB secret (there is always one).
    pub password: Option<String>,
    /// Minutes a bridged call may last (`FSAPI_MAX_DURATION`); 0: no limit.
    pub max_duration_minutes: u64,
}

impl Default for FsapiSection {
    fn default() -> Self {
        Self {
            enabled: true,
            password: None,
            max_duration_minutes: 0,
        }
    }
}

impl fmt::Debug for FsapiSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsapiSection")
            .field("enabled", &self.enabled)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("max_duration_minutes", &self.max_duration_minutes)
            .finish()
    }
}

/// Everything Switchboard can be told.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Database URL; default: SQLite in `data_dir`.
    pub database: Option<String>,
    /// Folder for the embedded database and other local state.
    pub data_dir: PathBuf,
    /// Redis for the job queue (scale-out); default: the SQL database.
    pub redis_url: Option<String>,
    /// Prefix of the job queues' names, so several clusters can share one Redis.
    pub job_namespace: String,
    /// The BBB API secret front-ends sign with.
    pub secret: Option<String>,
    /// Further accepted secrets (rotation).
    pub secrets: Vec<String>,
    /// Checksum algorithms accepted from front-ends.
    pub checksum_algorithms: Vec<ChecksumAlgorithm>,
    /// Checksum algorithm for calls to servers without their own setting.
    pub backend_checksum: ChecksumAlgorithm,
    /// Timeout of calls to a server on the request path, milliseconds.
    pub backend_timeout_ms: u64,
    /// Timeout of one server's answer while merging getMeetings, milliseconds.
    pub get_meetings_timeout_ms: u64,
    /// How many servers a create tries before giving up.
    pub create_attempts: usize,
    /// Largest query string plus body accepted on the BBB API, bytes.
    pub max_request_bytes: usize,
    /// A connection with no traffic for this many seconds (idle between
    /// requests, or stalled half-way through sending one) is closed.
    pub idle_timeout_secs: f64,
    /// Client connections open at once, at most; further ones wait until
    /// one closes.
    pub max_connections: usize,
    /// How often the routing view checks the log for foreign changes, ms.
    pub refresh_interval_ms: u64,
    /// Health polling.
    pub health: HealthSettings,
    /// Load formula weights.
    pub load: LoadWeights,
    /// `text` or `json` logs.
    pub log_format: String,
    /// The URL front-ends and viewers reach Switchboard at (playback links
    /// are built on it); default `http://<listen>`.
    pub public_url: Option<String>,
    /// Recordings.
    pub recordings: RecordingSettings,
    /// Callbacks relayed to front-ends.
    pub callbacks: CallbackSettings,
    /// Node agents on BBB servers.
    pub agent: AgentSection,
    /// Voice bridges, passwords, tenant metadata, switched-off calls.
    pub meetings: MeetingsSection,
    /// Parameter rules for every create and join.
    pub policy: PolicySection,
    /// The FreeSWITCH dial-plan endpoint.
    pub fsapi: FsapiSection,
    /// Scalelite's admin API.
    pub scalelite: ScaleliteSection,
    /// The operator console.
    pub console: ConsoleSection,
    /// Address ranges (`10.0.0.0/8`, `127.0.0.1`, `fd00::/8`) callbacks and
    /// other URLs front-ends supply may reach although they are private,
    /// loopback or link-local; empty: public addresses only.
    pub outbound_allow: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            database: None,
            data_dir: PathBuf::from("data"),
            redis_url: None,
            job_namespace: "switchboard".to_owned(),
            secret: None,
            secrets: Vec::new(),
            checksum_algorithms: ChecksumAlgorithm::ALL.to_vec(),
            backend_checksum: ChecksumAlgorithm::Sha256,
            backend_timeout_ms: 10_000,
            get_meetings_timeout_ms: 2_000,
            create_attempts: 3,
            max_request_bytes: 256 * 1024,
            idle_timeout_secs: 60.0,
            max_connections: 10_000,
            refresh_interval_ms: 250,
            health: HealthSettings::default(),
            load: LoadWeights::default(),
            log_format: "text".to_owned(),
            public_url: None,
            recordings: RecordingSettings::default(),
            callbacks: CallbackSettings::default(),
            agent: AgentSection::default(),
            meetings: MeetingsSection::default(),
            policy: PolicySection::default(),
            fsapi: FsapiSection::default(),
            scalelite: ScaleliteSection::default(),
            console: ConsoleSection::default(),
            outbound_allow: Vec::new(),
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("database", &self.database.as_deref().map(redact_url))
            .field("data_dir", &self.data_dir)
            .field("redis_url", &self.redis_url.as_deref().map(redact_url))
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("secrets", &format!("<{} redacted>", self.secrets.len()))
            .field("checksum_algorithms", &self.checksum_algorithms)
            .field("backend_checksum", &self.backend_checksum)
            .field("health", &self.health)
            .field("load", &self.load)
            .field("public_url", &self.public_url)
            .field("recordings", &self.recordings)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// What the meeting use cases are told.
    pub fn meeting_settings(&self) -> switchboard_app::meetings::MeetingSettings {
        let meetings = &self.meetings;
        switchboard_app::meetings::MeetingSettings {
            create_attempts: self.create_attempts,
            voice_bridges: meetings.unique_voice_bridges.then_some(
                switchboard_app::meetings::VoiceBridgePolicy {
                    length: meetings.voice_bridge_length,
                    keep_requested: meetings.keep_requested_voice_bridge,
                },
            ),
            fill_passwords: meetings.fill_passwords,
            tenant_metadata: meetings.tenant_metadata,
        }
    }
}

/// A database URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A number of days as a duration (negative or not finite: none).
fn days(days: f64) -> std::time::Duration {
    std::time::Duration::try_from_secs_f64(days * 86_400.0).unwrap_or_default()
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--database`.
    pub database: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
}

fn invalid(key: &str, reason: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.to_string(),
    }
}

fn parse_algorithms(key: &str, text: &str) -> Result<Vec<ChecksumAlgorithm>, ConfigError> {
    text.split(',')
        .filter(|name| !name.trim().is_empty())
        .map(|name| {
            ChecksumAlgorithm::parse(name).ok_or_else(|| {
                invalid(
                    key,
                    format!("unknown algorithm `{name}` (sha1, sha256, sha384, sha512)"),
                )
            })
        })
        .collect()
}

fn parse_number<T: std::str::FromStr>(key: &str, text: &str) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    text.trim().parse().map_err(|err| invalid(key, err))
}

impl Settings {
    /// Reads the settings: defaults, then the TOML file (`config_file`, or
    /// `SWITCHBOARD_CONFIG`), then the environment, then `overrides`.
    pub fn load(
        config_file: Option<&Path>,
        env: &dyn EnvSource,
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let file = config_file
            .map(Path::to_path_buf)
            .or_else(|| env.var("SWITCHBOARD_CONFIG").map(PathBuf::from));
        let mut settings = match file {
            Some(path) => Self::from_file(&path)?,
            None => Self::default(),
        };
        settings.apply_env(env)?;
        if let Some(listen) = overrides.listen {
            settings.listen = listen;
        }
        if let Some(database) = &overrides.database {
            settings.database = Some(database.clone());
        }
        if let Some(dir) = &overrides.data_dir {
            settings.data_dir = dir.clone();
        }
        settings.validate()?;
        Ok(settings)
    }

    fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::File {
            path: path.to_owned(),
            reason: err.to_string(),
        })?;
        toml::from_str(&text).map_err(|err| ConfigError::File {
            path: path.to_owned(),
            reason: err.to_string(),
        })
    }

    fn apply_env(&mut self, env: &dyn EnvSource) -> Result<(), ConfigError> {
        let get = |key: &str| env.var(key).filter(|value| !value.trim().is_empty());
        if let Some(value) = get("SWITCHBOARD_LISTEN") {
            self.listen = parse_number("SWITCHBOARD_LISTEN", &value)?;
        }
        if let Some(value) = get("SWITCHBOARD_DATABASE").or_else(|| get("SWITCHBOARD_DATABASE_URL"))
        {
            self.database = Some(value);
        }
        if let Some(value) = get("SWITCHBOARD_REDIS_URL") {
            self.redis_url = Some(value);
        }
        if let Some(value) = get("SWITCHBOARD_JOB_NAMESPACE") {
            self.job_namespace = value;
        }
        if let Some(value) = get("SWITCHBOARD_DATA_DIR") {
            self.data_dir = PathBuf::from(value);
        }
        if let Some(value) = get("SWITCHBOARD_SECRET") {
            self.secret = Some(value.trim().to_owned());
        }
        if let Some(value) = get("SWITCHBOARD_SECRETS") {
            self.secrets = value
                .split(',')
                .map(str::trim)
                .filter(|secret| !secret.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(value) = get("SWITCHBOARD_CHECKSUM_ALGORITHMS") {
            self.checksum_algorithms = parse_algorithms("SWITCHBOARD_CHECKSUM_ALGORITHMS", &value)?;
        }
        if let Some(value) = get("SWITCHBOARD_BACKEND_CHECKSUM") {
            self.backend_checksum = ChecksumAlgorithm::parse(&value).ok_or_else(|| {
                invalid(
                    "SWITCHBOARD_BACKEND_CHECKSUM",
                    "use sha1, sha256, sha384 or sha512",
                )
            })?;
        }
        if let Some(value) = get("SWITCHBOARD_MAX_CONNECTIONS") {
            self.max_connections = parse_number("SWITCHBOARD_MAX_CONNECTIONS", &value)?;
        }
        if let Some(value) = get("SWITCHBOARD_IDLE_TIMEOUT_SECS") {
            self.idle_timeout_secs = parse_number("SWITCHBOARD_IDLE_TIMEOUT_SECS", &value)?;
        }
        if let Some(value) = get("SWITCHBOARD_BACKEND_TIMEOUT_MS") {
            self.backend_timeout_ms = parse_number("SWITCHBOARD_BACKEND_TIMEOUT_MS", &value)?;
        }
        if let Some(value) = get("SWITCHBOARD_GET_MEETINGS_TIMEOUT_MS") {
            self.get_meetings_timeout_ms =
                parse_number("SWITCHBOARD_GET_MEETINGS_TIMEOUT_MS", &value)?;
        }
        if let Some(value) = get("SWITCHBOARD_HEALTH_INTERVAL_SECS") {
            self.health.interval_secs = parse_number("SWITCHBOARD_HEALTH_INTERVAL_SECS", &value)?;
        }
        if let Some(value) = get("SWITCHBOARD_PUBLIC_URL") {
            self.public_url = Some(value.trim().trim_end_matches('/').to_owned());
        }
        if let Some(value) = get("SWITCHBOARD_CALLBACK_URL") {
            self.callbacks.url = Some(value.trim().trim_end_matches('/').to_owned());
        }
        if let Some(value) = get("SWITCHBOARD_CALLBACK_RETRY_HOURS") {
            self.callbacks.retry_hours = parse_number("SWITCHBOARD_CALLBACK_RETRY_HOURS", &value)?;
        }
        if let Some(value) = get("SWITCHBOARD_CALLBACK_FIRST_RETRY_SECS") {
            self.callbacks.first_retry_secs =
                parse_number("SWITCHBOARD_CALLBACK_FIRST_RETRY_SECS", &value)?;
        }
        if let Some(value) = get("SWITCHBOARD_RECORDINGS_DIR") {
            self.recordings.dir = Some(PathBuf::from(value));
        }
        if let Some(value) = get("SWITCHBOARD_RECORDINGS_RETENTION_DAYS") {
            self.recordings.retention_days = if value.trim().eq_ignore_ascii_case("none") {
                None
            } else {
                Some(parse_number(
                    "SWITCHBOARD_RECORDINGS_RETENTION_DAYS",
                    &value,
                )?)
            };
        }
        if let Some(value) = get("SWITCHBOARD_RECORDINGS_STORE") {
            let value = value.trim();
            self.recordings.store = (!value.is_empty()).then(|| value.to_owned());
        }
        if let Some(value) = get("SWITCHBOARD_S3_ENDPOINT") {
            let value = value.trim();
            self.recordings.s3_endpoint = (!value.is_empty()).then(|| value.to_owned());
        }
        if let Some(value) = get("SWITCHBOARD_S3_VIRTUAL_HOSTED") {
            self.recordings.s3_virtual_hosted =
                parse_number("SWITCHBOARD_S3_VIRTUAL_HOSTED", &value)?;
        }
        if let Some(value) = get("SWITCHBOARD_RECORDINGS_OBJECT_PLAYBACK") {
            self.recordings.object_playback = value.trim().to_owned();
        }
        if let Some(value) = get("SWITCHBOARD_SPOOL_DIR") {
            self.recordings.spool_dir = Some(PathBuf::from(value));
        }
        if let Some(value) = get("SWITCHBOARD_PLAYBACK") {
            self.recordings.playback = value.trim().to_owned();
        }
        if let Some(value) = get("SWITCHBOARD_OUTBOUND_ALLOW") {
            self.outbound_allow = value
                .split(',')
                .map(str::trim)
                .filter(|range| !range.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(value) = get("SWITCHBOARD_VOICE_BRIDGE_LENGTH") {
            self.meetings.voice_bridge_length =
                parse_number("SWITCHBOARD_VOICE_BRIDGE_LENGTH", &value)?;
        }
        if let Some(value) = get("SWITCHBOARD_FSAPI_PASSWORD") {
            self.fsapi.password = Some(value);
        }
        if let Some(value) = get("SWITCHBOARD_LOG_FORMAT") {
            self.log_format = value;
        }
        if let Some(value) = get("SWITCHBOARD_CONSOLE") {
            self.console.enabled = parse_number("SWITCHBOARD_CONSOLE", &value)?;
        }
        if let Some(value) = get("SWITCHBOARD_WORKER_CONSOLE") {
            self.console.on_worker = parse_number("SWITCHBOARD_WORKER_CONSOLE", &value)?;
        }
        if let Some(value) = get("SWITCHBOARD_CONSOLE_PATH") {
            self.console.public_path = value.trim().to_owned();
        }
        if let Some(value) = get("SWITCHBOARD_CONSOLE_KEY") {
            self.console.session_key = Some(value.trim().to_owned());
        }
        if let Some(value) = get("SWITCHBOARD_CONSOLE_HISTORY_HOURS") {
            self.console.history_hours = parse_number("SWITCHBOARD_CONSOLE_HISTORY_HOURS", &value)?;
        }
        Ok(())
    }

    /// Where outbound requests to supplied URLs may go.
    pub fn address_policy(&self) -> switchboard_workers::outbound::AddressPolicy {
        switchboard_workers::outbound::AddressPolicy::new(&self.outbound_allow).unwrap_or_default()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Err(bad) = switchboard_workers::outbound::AddressPolicy::new(&self.outbound_allow) {
            return Err(invalid("outbound_allow (SWITCHBOARD_OUTBOUND_ALLOW)", bad));
        }
        if self.checksum_algorithms.is_empty() {
            return Err(invalid(
                "checksum_algorithms",
                "at least one algorithm must be accepted",
            ));
        }
        if self.recordings.retention_days == Some(0) {
            return Err(invalid(
                "recordings.retention_days (SWITCHBOARD_RECORDINGS_RETENTION_DAYS)",
                "recordings are kept at least one day: use a number of days from 1, or `none`",
            ));
        }
        if let Some(store) = &self.recordings.store {
            let location = switchboard_recordings::StoreLocation::parse(store).map_err(|err| {
                invalid(
                    "recordings.store (SWITCHBOARD_RECORDINGS_STORE)",
                    err.to_string(),
                )
            })?;
            if location.is_object_store() && self.recordings.playback == "x-accel-redirect" {
                return Err(invalid(
                    "recordings.playback (SWITCHBOARD_PLAYBACK)",
                    "x-accel-redirect serves files from disk; recordings in an object store are played back with recordings.object_playback = redirect or stream",
                ));
            }
        }
        if !matches!(
            self.recordings.object_playback.as_str(),
            "redirect" | "stream"
        ) {
            return Err(invalid(
                "recordings.object_playback (SWITCHBOARD_RECORDINGS_OBJECT_PLAYBACK)",
                "use `redirect` (to a presigned URL) or `stream`",
            ));
        }
        if self
            .recordings
            .s3_endpoint
            .as_ref()
            .is_some_and(|url| !(url.starts_with("http://") || url.starts_with("https://")))
        {
            return Err(invalid(
                "recordings.s3_endpoint (SWITCHBOARD_S3_ENDPOINT)",
                "write the endpoint as http://host:port or https://host",
            ));
        }
        if self
            .console
            .session_key
            .as_ref()
            .is_some_and(|key| key.chars().count() < 32)
        {
            return Err(invalid(
                "console.session_key (SWITCHBOARD_CONSOLE_KEY)",
                "use at least 32 characters, e.g. `openssl rand -hex 32`",
            ));
        }
        let weak = |secret: &String| !switchboard_domain::tenant::is_strong_secret(secret);
        let min = switchboard_domain::tenant::MIN_SECRET_LEN;
        if self.secret.as_ref().is_some_and(weak) {
            return Err(invalid(
                "secret",
                format!(
                    "the secret (SWITCHBOARD_SECRET or `secret` in the file) must have at least \
                     {min} characters and no whitespace: anyone could sign calls with a short \
                     one; set a long random one (`openssl rand -hex 20`)"
                ),
            ));
        }
        if let Some(position) = self.secrets.iter().position(weak) {
            return Err(invalid(
                "secrets",
                format!(
                    "extra secret number {} (SWITCHBOARD_SECRETS or `secrets` in the file) is \
                     empty, has whitespace or has less than {min} characters (at least {min} \
                     characters are needed): remove it or replace it with a long random one",
                    position + 1
                ),
            ));
        }
        if !(self.health.interval_secs.is_finite() && self.health.interval_secs > 0.0) {
            return Err(invalid(
                "health.interval_secs",
                "must be a positive number of seconds",
            ));
        }
        if self.health.offline_after == 0 || self.health.online_after == 0 {
            return Err(invalid(
                "health",
                "offline_after and online_after must be at least 1",
            ));
        }
        if !matches!(self.health.offline_meetings.as_str(), "keep" | "forget") {
            return Err(invalid("health.offline_meetings", "use `keep` or `forget`"));
        }
        if !(self.health.offline_grace_secs.is_finite() && self.health.offline_grace_secs >= 0.0) {
            return Err(invalid(
                "health.offline_grace_secs",
                "must be zero or more seconds",
            ));
        }
        if !(self.health.metrics_window_secs.is_finite() && self.health.metrics_window_secs > 0.0) {
            return Err(invalid(
                "health.metrics_window_secs",
                "must be a positive number of seconds",
            ));
        }
        self.validate_load()?;
        self.validate_meetings()?;
        if self.create_attempts == 0 {
            return Err(invalid("create_attempts", "must be at least 1"));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid("public_url", "must start with http:// or https://"));
        }
        if !matches!(
            self.recordings.playback.as_str(),
            "serve" | "x-accel-redirect"
        ) {
            return Err(invalid(
                "recordings.playback",
                "use `serve` or `x-accel-redirect`",
            ));
        }
        if !self.recordings.x_accel_prefix.starts_with('/') {
            return Err(invalid("recordings.x_accel_prefix", "must start with `/`"));
        }
        if self.recordings.import_attempts == 0 || self.recordings.callback_attempts == 0 {
            return Err(invalid(
                "recordings",
                "import_attempts and callback_attempts must be at least 1",
            ));
        }
        let callbacks = &self.callbacks;
        for (key, value) in [
            ("callbacks.retry_hours", callbacks.retry_hours),
            ("callbacks.first_retry_secs", callbacks.first_retry_secs),
            ("callbacks.max_retry_secs", callbacks.max_retry_secs),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(invalid(key, "must be a positive number"));
            }
        }
        if let Some(url) = &callbacks.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid(
                "callbacks.url (SWITCHBOARD_CALLBACK_URL)",
                "must start with http:// or https://",
            ));
        }
        if self.agent.missed_heartbeats == 0 {
            return Err(invalid("agent.missed_heartbeats", "must be at least 1"));
        }
        if self.agent.flush_interval_ms == 0 || self.agent.watch_interval_ms == 0 {
            return Err(invalid(
                "agent",
                "flush_interval_ms and watch_interval_ms must be at least 1",
            ));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(invalid("log_format", "use `text` or `json`"));
        }
        Ok(())
    }

    fn validate_meetings(&self) -> Result<(), ConfigError> {
        if !(4..=9).contains(&self.meetings.voice_bridge_length) {
            return Err(invalid(
                "meetings.voice_bridge_length (SWITCHBOARD_VOICE_BRIDGE_LENGTH)",
                "must be from 4 to 9 digits (BBB uses 5, Scalelite 9)",
            ));
        }
        let policy = switchboard_domain::tenant::TenantPolicy {
            create: self.policy.create.clone(),
            join: self.policy.join.clone(),
            ..Default::default()
        };
        policy
            .validate()
            .map_err(|err| invalid("policy", err.to_string()))
    }

    fn validate_load(&self) -> Result<(), ConfigError> {
        let load = &self.load;
        for (key, weight) in [("load.cpu", load.cpu), ("load.memory", load.memory)] {
            if !(weight.is_finite() && weight >= 0.0) {
                return Err(invalid(key, "must be zero or a positive number"));
            }
        }
        if !(load.cpu_exponent.is_finite() && load.cpu_exponent > 0.0) {
            return Err(invalid("load.cpu_exponent", "must be a positive number"));
        }
        for (key, limit) in [
            ("load.cpu_limit", load.cpu_limit),
            ("load.memory_limit", load.memory_limit),
        ] {
            if limit.is_some_and(|limit| !(0.0..=100.0).contains(&limit)) {
                return Err(invalid(key, "must be a percentage from 0 to 100"));
            }
        }
        Ok(())
    }

    /// The database URL: the configured one or SQLite in the data folder.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("switchboard.db").display()
            ),
        }
    }

    /// Whether the database is the embedded SQLite file in the data folder.
    pub fn uses_embedded_database(&self) -> bool {
        self.database.is_none()
    }

    /// Timeout for calls to servers on the request path.
    pub fn backend_timeout(&self) -> Duration {
        Duration::from_millis(self.backend_timeout_ms)
    }

    /// The recording tree's root.
    pub fn recordings_dir(&self) -> PathBuf {
        self.recordings
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("recordings"))
    }

    /// The spool directory.
    pub fn spool_dir(&self) -> PathBuf {
        self.recordings
            .spool_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("spool"))
    }

    /// What the recording use cases are told (the tree and spool resolved
    /// against the data folder; playback and upload settings stay with the
    /// HTTP side).
    pub fn recording_settings(&self) -> switchboard_app::recordings::RecordingSettings {
        let recordings = &self.recordings;
        switchboard_app::recordings::RecordingSettings {
            dir: self.recordings_dir(),
            spool_dir: self.spool_dir(),
            public_url: self.public_url.clone(),
            spool_settle_secs: recordings.spool_settle_secs,
            rescan_interval_secs: recordings.rescan_interval_secs,
            import_attempts: recordings.import_attempts,
            retry_base_ms: recordings.retry_base_ms,
            keep_done: recordings.keep_done,
            link_ttl_secs: recordings.link_ttl_secs,
            callback_retry_for: self.callback_settings().retry_for,
            archive_limits: switchboard_recordings::ArchiveLimits {
                max_total_bytes: recordings.archive_max_bytes,
                max_entries: recordings.archive_max_entries,
                max_file_bytes: recordings.archive_max_file_bytes,
            },
            retention: switchboard_recordings::spool::Retention {
                done: days(recordings.keep_done_days),
                failed: days(recordings.keep_failed_days),
                leftovers: days(1.0),
            },
            retention_days: recordings.retention_days,
            store: recordings.store.clone(),
            s3: switchboard_recordings::S3Settings {
                endpoint: recordings.s3_endpoint.clone(),
                region: recordings.s3_region.clone(),
                access_key_id: recordings.s3_access_key_id.clone(),
                secret_access_key: recordings
                    .s3_secret_access_key
                    .as_ref()
                    .map(|s| s.0.clone()),
                virtual_hosted: recordings.s3_virtual_hosted,
            },
        }
    }

    /// The public URL, given the address actually listened on.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let host = if bound.ip().is_unspecified() {
                    SocketAddr::from(([127, 0, 0, 1], bound.port()))
                } else {
                    bound
                };
                format!("http://{host}")
            }
        }
    }

    /// How heartbeats are judged.
    pub fn agent_settings(&self) -> switchboard_app::agent::AgentSettings {
        switchboard_app::agent::AgentSettings {
            missed_heartbeats: self.agent.missed_heartbeats.max(1),
            poll: self.agent.poll,
            weights: self.load,
            metrics_window: Duration::from_secs_f64(self.health.metrics_window_secs.max(0.0)),
        }
    }

    /// How deliveries to front-ends are retried.
    pub fn callback_settings(&self) -> switchboard_app::callbacks::CallbackSettings {
        let callbacks = &self.callbacks;
        let secs = |value: f64| Duration::try_from_secs_f64(value).unwrap_or(Duration::ZERO);
        switchboard_app::callbacks::CallbackSettings {
            retry_for: secs(callbacks.retry_hours * 3600.0),
            first_retry: secs(callbacks.first_retry_secs),
            max_retry: secs(callbacks.max_retry_secs.max(callbacks.first_retry_secs)),
            ..Default::default()
        }
    }

    /// Per-server timeout while merging getMeetings.
    pub fn get_meetings_timeout(&self) -> Duration {
        Duration::from_millis(self.get_meetings_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn callback_settings_come_from_the_environment_and_are_checked() {
        let settings = Settings::load(
            None,
            &env(&[
                ("SWITCHBOARD_CALLBACK_URL", "https://lb.internal.example/"),
                ("SWITCHBOARD_CALLBACK_RETRY_HOURS", "2"),
                ("SWITCHBOARD_CALLBACK_FIRST_RETRY_SECS", "5"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(
            settings.callbacks.url.as_deref(),
            Some("https://lb.internal.example")
        );
        let retry = settings.callback_settings();
        assert_eq!(retry.retry_for, Duration::from_secs(7200));
        assert_eq!(retry.first_retry, Duration::from_secs(5));
        assert_eq!(retry.max_retry, Duration::from_secs(3600));
        for (key, value) in [
            ("SWITCHBOARD_CALLBACK_URL", "lb.example"),
            ("SWITCHBOARD_CALLBACK_RETRY_HOURS", "0"),
            ("SWITCHBOARD_CALLBACK_FIRST_RETRY_SECS", "-1"),
        ] {
            let err = Settings::load(None, &env(&[(key, value)]), &Overrides::default());
            assert!(err.is_err(), "{key}={value}");
        }
    }

    #[test]
    fn console_settings_come_from_the_environment_and_the_key_is_checked() {
        let key = "k".repeat(32);
        let settings = Settings::load(
            None,
            &env(&[
                ("SWITCHBOARD_CONSOLE", "false"),
                ("SWITCHBOARD_WORKER_CONSOLE", "true"),
                ("SWITCHBOARD_CONSOLE_PATH", "/lb/console"),
                ("SWITCHBOARD_CONSOLE_HISTORY_HOURS", "48"),
                ("SWITCHBOARD_CONSOLE_KEY", &key),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        let console = &settings.console;
        assert!(!console.enabled && console.on_worker);
        assert_eq!(console.public_path, "/lb/console");
        assert_eq!(console.history_hours, 48);
        assert_eq!(console.session_key.as_deref(), Some(key.as_str()));
        assert!(
            !format!("{console:?}").contains(&key),
            "the key is never printed"
        );
        let short = Settings::load(
            None,
            &env(&[("SWITCHBOARD_CONSOLE_KEY", "too-short")]),
            &Overrides::default(),
        );
        assert!(short.unwrap_err().to_string().contains("32 characters"));
    }

    #[test]
    fn defaults_just_work() {
        let settings = Settings::load(None, &env(&[]), &Overrides::default()).unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8090");
        assert_eq!(
            settings.database_url(),
            "sqlite://data/switchboard.db?mode=rwc"
        );
        assert_eq!(settings.checksum_algorithms.len(), 4);
    }

    #[test]
    fn environment_then_flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("sb-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("switchboard.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\nsecret = \"from-file\"\n[health]\noffline_after = 5\n",
        )
        .unwrap();
        let vars = env(&[
            ("SWITCHBOARD_SECRET", "from-env-secret"),
            ("SWITCHBOARD_SECRETS", "old-secret-01, old-secret-02,"),
            ("SWITCHBOARD_CHECKSUM_ALGORITHMS", "sha256,sha512"),
        ]);
        let overrides = Overrides {
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            ..Overrides::default()
        };
        let settings = Settings::load(Some(&file), &vars, &overrides).unwrap();
        assert_eq!(settings.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(settings.secret.as_deref(), Some("from-env-secret"));
        assert_eq!(settings.secrets, vec!["old-secret-01", "old-secret-02"]);
        assert_eq!(settings.health.offline_after, 5);
        assert_eq!(
            settings.checksum_algorithms,
            vec![ChecksumAlgorithm::Sha256, ChecksumAlgorithm::Sha512]
        );
    }

    /// Issue 15.A4: an empty or short secret anywhere in the settings stops
    /// the start with a message naming it.
    #[test]
    fn empty_or_short_secrets_are_refused_with_what_to_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("switchboard.toml");
        let cases = [
            ("secrets = [\"\"]\n", "secrets"),
            ("secret = \"\"\n", "secret"),
            ("secret = \"short-one\"\n", "secret"),
            (
                "secret = \"long-enough-secret\"\nsecrets = [\"a-long-old-secret\", \"x\"]\n",
                "secrets",
            ),
        ];
        for (text, key) in cases {
            std::fs::write(&file, text).unwrap();
            let error = Settings::load(Some(&file), &env(&[]), &Overrides::default())
                .expect_err(text)
                .to_string();
            assert!(
                error.contains(key) && error.contains("12 characters"),
                "{text}: {error}"
            );
        }
        let error = Settings::load(
            None,
            &env(&[("SWITCHBOARD_SECRET", "abc")]),
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("SWITCHBOARD_SECRET"), "{error}");
        std::fs::write(&file, "secret = \"long-enough-secret\"\n").unwrap();
        Settings::load(Some(&file), &env(&[]), &Overrides::default()).unwrap();
    }

    #[test]
    fn public_url_and_recording_settings_from_env() {
        let settings = Settings::load(
            None,
            &env(&[
                ("SWITCHBOARD_PUBLIC_URL", "https://lb.example.org/"),
                ("SWITCHBOARD_PLAYBACK", "x-accel-redirect"),
                ("SWITCHBOARD_SPOOL_DIR", "/srv/spool"),
            ]),
            &Overrides::default(),
        )
        .unwrap();
        let bound = "0.0.0.0:9000".parse().unwrap();
        assert_eq!(settings.public_url_for(bound), "https://lb.example.org");
        assert_eq!(settings.recordings.playback, "x-accel-redirect");
        assert_eq!(settings.spool_dir(), PathBuf::from("/srv/spool"));
        assert_eq!(settings.recordings_dir(), PathBuf::from("data/recordings"));
        let default = Settings::default();
        assert_eq!(default.public_url_for(bound), "http://127.0.0.1:9000");
        assert!(
            Settings::load(
                None,
                &env(&[("SWITCHBOARD_PLAYBACK", "nginx")]),
                &Overrides::default()
            )
            .is_err()
        );
    }

    #[test]
    fn the_example_config_in_ops_is_valid() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/switchboard.example.toml");
        let settings = Settings::load(Some(&file), &env(&[]), &Overrides::default()).unwrap();
        assert_eq!(settings.health.offline_after, 3);
    }

    #[test]
    fn bad_values_say_what_is_wrong() {
        let err = Settings::load(
            None,
            &env(&[("SWITCHBOARD_CHECKSUM_ALGORITHMS", "md5")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("md5"), "{err}");
        let err = Settings::load(
            None,
            &env(&[("SWITCHBOARD_LISTEN", "nowhere")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("SWITCHBOARD_LISTEN"), "{err}");
    }

    #[test]
    fn debug_output_hides_secrets_and_passwords() {
        let settings = Settings {
            secret: Some("topsecret".into()),
            database: Some("postgres://sb:hunter2@db/sb".into()),
            ..Settings::default()
        };
        let text = format!("{settings:?}");
        assert!(
            !text.contains("topsecret") && !text.contains("hunter2"),
            "{text}"
        );
    }

    #[test]
    fn metrics_weights_limits_and_window_are_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("sb-config-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("switchboard.toml");
        let write_and_load = |text: &str| {
            std::fs::write(&file, text).unwrap();
            Settings::load(Some(&file), &env(&[]), &Overrides::default())
        };
        let settings = write_and_load(
            "[health]\nmetrics_window_secs = 60\n[load]\ncpu = 8.0\ncpu_exponent = 2.0\n\
             memory = 2.0\ncpu_limit = 85\nmemory_limit = 90\n",
        )
        .unwrap();
        assert_eq!(settings.health.metrics_window_secs, 60.0);
        assert_eq!(settings.load.cpu, 8.0);
        assert_eq!(settings.load.cpu_exponent, 2.0);
        assert_eq!(settings.load.cpu_limit, Some(85.0));
        assert_eq!(settings.load.memory_limit, Some(90.0));
        assert_eq!(
            settings.load.meeting, 1.0,
            "the other weights keep their defaults"
        );
        let defaults = Settings::default();
        assert_eq!(
            (
                defaults.load.cpu,
                defaults.load.memory,
                defaults.load.cpu_limit
            ),
            (0.0, 0.0, None)
        );
        for (text, key) in [
            ("[load]\ncpu_limit = 120\n", "load.cpu_limit"),
            ("[load]\nmemory = -1.0\n", "load.memory"),
            ("[load]\ncpu_exponent = 0.0\n", "load.cpu_exponent"),
            (
                "[health]\nmetrics_window_secs = 0\n",
                "health.metrics_window_secs",
            ),
        ] {
            let err = write_and_load(text).unwrap_err();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
    }
}
