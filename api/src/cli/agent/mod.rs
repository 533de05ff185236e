//! `switchboard agent`: runs on a BBB server, registers it with Switchboard
//! and pushes a heartbeat every interval: the server's own getMeetings
//! answer (signed with its secret), BBB's version, CPU counters and memory
//! from `/proc`. On SIGTERM or SIGINT it says it is going away (the server
//! is drained, not failed) and stops. Neither the secret nor the token is
//! ever logged.

pub mod procfs;
pub mod properties;

use crate::admin::model::{
    AgentAck, AgentCpu, AgentHeartbeat, AgentLeave, AgentRegistered, AgentRegistration,
};
use anyhow::{Context, bail};
use properties::BbbSettings;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use switchboard_app::backend::BackendTarget;
use switchboard_domain::bbb::xml::read_meetings;
use switchboard_workers::backend::HttpBackendClient;
use tokio::sync::watch;

/// `switchboard agent` options.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// BBB's settings file (repeat to overlay; default: bbb-web's
    /// bigbluebutton.properties overlaid by /etc/bigbluebutton/bbb-web.properties).
    #[arg(long = "bbb-properties", value_name = "FILE")]
    pub properties: Vec<PathBuf>,
    /// Switchboard's URL, e.g. https://lb.example.org.
    #[arg(long, env = "SWITCHBOARD_URL", value_name = "URL")]
    pub url: Option<String>,
    /// A node token (`switchboard tokens create NAME --scope node`).
    #[arg(
        long,
        env = "SWITCHBOARD_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Add the server to the pool if Switchboard does not know its URL.
    #[arg(long)]
    pub register: bool,
    /// Tag given to the server when it is added.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
    /// Load multiplier given to the server when it is added.
    #[arg(long, value_name = "X")]
    pub load_multiplier: Option<f64>,
    /// Add the server enabled (it starts disabled otherwise, as with `servers add`).
    #[arg(long)]
    pub enable: bool,
    /// Seconds between heartbeats.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub interval: f64,
    /// Where to read CPU and memory (`stat`, `meminfo`).
    #[arg(long = "proc", value_name = "DIR", default_value = "/proc")]
    pub proc_root: PathBuf,
}

/// The longest wait between attempts while Switchboard cannot be reached.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// BBB's version is asked again this often.
const VERSION_EVERY: Duration = Duration::from_secs(60);

/// Why a call to Switchboard failed.
#[derive(Debug)]
enum CallError {
    /// Not reachable, or it failed (5xx): try again later.
    Unreachable(String),
    /// It refused (4xx), with its problem's words.
    Refused(u16, String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(why) => write!(f, "Switchboard cannot be reached: {why}"),
            Self::Refused(status, detail) => write!(f, "Switchboard refused ({status}): {detail}"),
        }
    }
}

/// One running agent.
struct Agent {
    args: AgentArgs,
    bbb: BbbSettings,
    base_url: String,
    token: String,
    client: reqwest::Client,
    backend: HttpBackendClient,
    version: String,
    version_read: Option<Instant>,
}

/// The exit status when Switchboard refuses the agent's token or request:
/// restarting cannot help (the systemd unit does not restart on it).
pub const EXIT_REFUSED: i32 = 3;

/// Switchboard refused (401, 403, 400): not retried.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Runs the agent until SIGTERM or SIGINT; exits with [`EXIT_REFUSED`]
/// when Switchboard refuses it.
pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    match run_agent(args).await {
        Err(err) if err.downcast_ref::<Refused>().is_some() => {
            eprintln!("error: {err:#}");
            std::process::exit(EXIT_REFUSED);
        }
        other => other,
    }
}

async fn run_agent(args: AgentArgs) -> anyhow::Result<()> {
    let explicit = !args.properties.is_empty();
    let files = if explicit {
        args.properties.clone()
    } else {
        properties::default_files()
    };
    let bbb = properties::load(&files, explicit)?;
    let base_url = args
        .url
        .as_deref()
        .map(|url| url.trim().trim_end_matches('/').to_owned())
        .filter(|url| !url.is_empty())
        .context("--url (or SWITCHBOARD_URL) must name Switchboard, e.g. https://lb.example.org")?;
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        bail!("--url must start with http:// or https://");
    }
    let token = args
        .token
        .as_deref()
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .context("--token (or SWITCHBOARD_TOKEN) must be a node token: create one with `switchboard tokens create NAME --scope node`")?
        .to_owned();
    if !(args.interval.is_finite() && (0.5..=3600.0).contains(&args.interval)) {
        bail!("--interval must be between 0.5 and 3600 seconds");
    }
    switchboard_workers::backend::install_crypto_provider();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("switchboard-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")?;
    let mut agent = Agent {
        base_url,
        token,
        client,
        backend: HttpBackendClient::new(),
        version: String::new(),
        version_read: None,
        bbb,
        args,
    };
    tracing::info!(
        api = %agent.bbb.api_url,
        files = ?agent.bbb.files,
        switchboard = %agent.base_url,
        "agent starting"
    );
    let mut stop = stop_signal();
    agent.bbb_version().await;
    let Some(server) = agent.register(&mut stop).await? else {
        return Ok(());
    };
    agent.beat_until_stopped(server, &mut stop).await
}

/// A receiver that turns true on SIGTERM or SIGINT.
fn stop_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        tokio::spawn(async move {
            match (terminate, interrupt) {
                (Ok(mut terminate), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = terminate.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            let _ = tx.send(true);
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = tx.send(true);
    });
    rx
}

/// Sleeps `wait` unless told to stop first; true when stopped.
async fn sleep_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    let stopped = tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = stop.wait_for(|stopped| *stopped) => true,
    };
    stopped || *stop.borrow()
}

fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(MAX_BACKOFF)
}

impl Agent {
    fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.args.interval)
    }

    /// POSTs JSON to an agent route, reading the answer as `T`.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<Option<T>, CallError> {
        let response = self
            .client
            .post(format!("{}/api/v1/agent/{path}", self.base_url))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|err| CallError::Unreachable(err.without_url().to_string()))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(CallError::Unreachable(format!("HTTP status {status}")));
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let detail = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|problem| problem.get("detail")?.as_str().map(str::to_owned))
                .unwrap_or(text);
            return Err(CallError::Refused(status.as_u16(), detail));
        }
        if status == reqwest::StatusCode::NO_CONTENT {
            return Ok(None);
        }
        response
            .json::<T>()
            .await
            .map(Some)
            .map_err(|err| CallError::Unreachable(format!("unreadable answer: {err}")))
    }

    /// Registers (or finds) the server, retrying while Switchboard cannot
    /// be reached; `None` when stopped first.
    async fn register(&self, stop: &mut watch::Receiver<bool>) -> anyhow::Result<Option<String>> {
        let registration = AgentRegistration {
            url: self.bbb.api_url.clone(),
            secret: self.bbb.secret.clone(),
            tag: self.args.tag.clone(),
            load_multiplier: self.args.load_multiplier,
            enable: self.args.enable,
            add: Some(self.args.register),
            version: Some(self.version.clone()),
            interval_secs: Some(self.args.interval),
        };
        let mut backoff = Duration::from_secs(1);
        loop {
            match self
                .post::<AgentRegistered>("register", &registration)
                .await
            {
                Ok(Some(registered)) => {
                    tracing::info!(
                        server = %registered.server,
                        added = registered.added,
                        "agent reports for this server"
                    );
                    return Ok(Some(registered.server));
                }
                Ok(None) => bail!("Switchboard answered registration without a server"),
                Err(CallError::Refused(status, detail)) => {
                    return Err(
                        Refused(format!("registration refused ({status}): {detail}")).into(),
                    );
                }
                Err(err @ CallError::Unreachable(_)) => {
                    tracing::warn!(error = %err, retry_in = ?backoff, "cannot register yet");
                }
            }
            if sleep_or_stop(backoff, stop).await {
                return Ok(None);
            }
            backoff = next_backoff(backoff);
        }
    }

    /// BBB's version from the API index (`<bbbVersion>`, else `<version>`),
    /// asked at most every minute.
    async fn bbb_version(&mut self) -> String {
        if self
            .version_read
            .is_some_and(|at| at.elapsed() < VERSION_EVERY)
        {
            return self.version.clone();
        }
        let answer = async {
            self.client
                .get(&self.bbb.api_url)
                .timeout(Duration::from_secs(3))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()
        }
        .await;
        if let Some(body) = answer {
            let tag = |name: &str| -> Option<String> {
                let start = body.find(&format!("<{name}>"))? + name.len() + 2;
                let end = body[start..].find('<')? + start;
                Some(body[start..end].trim().to_owned())
            };
            if let Some(version) = tag("bbbVersion").or_else(|| tag("version")) {
                self.version = version
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(64)
                    .collect();
            }
            self.version_read = Some(Instant::now());
        }
        self.version.clone()
    }

    /// The heartbeat of this moment.
    async fn heartbeat(&mut self, server: &str) -> AgentHeartbeat {
        let version = self.bbb_version().await;
        let base = self.bbb.api_url.trim_end_matches("api/").to_owned();
        let target = BackendTarget {
            url: &base,
            secret: &self.bbb.secret,
            algorithm: self.bbb.checksum,
        };
        let timeout = self.interval().min(Duration::from_secs(5));
        let asked = Instant::now();
        let answer = self
            .backend
            .get(target, "getMeetings", "", timeout)
            .await
            .map_err(|err| err.to_string())
            .and_then(|response| {
                String::from_utf8(response.body.to_vec())
                    .map_err(|_| "the getMeetings answer is not UTF-8".to_owned())
            });
        let mut beat = AgentHeartbeat {
            server: server.to_owned(),
            version,
            interval_secs: self.args.interval,
            meetings_xml: None,
            api_error: None,
            listed_ago_ms: None,
            cpu: procfs::cpu(&self.args.proc_root).map(|cpu| AgentCpu {
                busy_seconds: cpu.busy_seconds,
                total_seconds: cpu.total_seconds,
            }),
            memory_percent: procfs::memory_percent(&self.args.proc_root),
            meetings: None,
            attendees: None,
            video_streams: None,
            voice_streams: None,
            meeting_ids: None,
        };
        match answer {
            Ok(body) => {
                if let Ok(listed) = read_meetings(&body) {
                    let meetings = &listed.meetings;
                    beat.meetings = Some(meetings.len() as u64);
                    beat.attendees = Some(meetings.iter().map(|m| m.participants).sum());
                    beat.video_streams = Some(meetings.iter().map(|m| m.video).sum());
                    beat.voice_streams = Some(meetings.iter().map(|m| m.voice).sum());
                    beat.meeting_ids =
                        Some(meetings.iter().map(|m| m.meeting_id.clone()).collect());
                }
                beat.meetings_xml = Some(body);
                beat.listed_ago_ms = Some(asked.elapsed().as_millis() as u64);
            }
            Err(why) => beat.api_error = Some(why),
        }
        beat
    }

    /// Sends heartbeats every interval until stopped, then says goodbye.
    async fn beat_until_stopped(
        &mut self,
        mut server: String,
        stop: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let mut backoff = Duration::from_secs(1);
        let mut failing = false;
        loop {
            let started = Instant::now();
            let mut beat = self.heartbeat(&server).await;
            if let Some(why) = &beat.api_error {
                tracing::warn!(error = %why, "BBB's API does not answer");
            }
            // Counted to the moment it is sent.
            if let Some(ago) = beat.listed_ago_ms.as_mut() {
                *ago = (*ago).max(started.elapsed().as_millis() as u64);
            }
            let wait = match self.post::<AgentAck>("heartbeat", &beat).await {
                Ok(ack) => {
                    if failing {
                        tracing::info!("Switchboard reached again");
                        failing = false;
                    }
                    backoff = Duration::from_secs(1);
                    if let Some(ack) = ack {
                        tracing::debug!(online = ack.online, events = ack.events, "heartbeat");
                    }
                    self.interval().saturating_sub(started.elapsed())
                }
                Err(CallError::Refused(404, detail)) if self.args.register => {
                    tracing::warn!(%detail, "the server is unknown to Switchboard now: registering again");
                    match self.register(stop).await? {
                        Some(again) => server = again,
                        None => return Ok(()),
                    }
                    Duration::ZERO
                }
                Err(CallError::Refused(status @ (401 | 403), detail)) => {
                    return Err(Refused(format!("heartbeat refused ({status}): {detail}")).into());
                }
                Err(err) => {
                    tracing::warn!(error = %err, retry_in = ?backoff, "heartbeat not delivered");
                    failing = true;
                    let wait = backoff.min(self.interval());
                    backoff = next_backoff(backoff);
                    wait
                }
            };
            if sleep_or_stop(wait, stop).await {
                break;
            }
        }
        let leave = AgentLeave {
            server: server.clone(),
        };
        match self.post::<serde_json::Value>("leave", &leave).await {
            Ok(_) => {
                tracing::info!(%server, "agent stopped; the server takes no new meetings until it is back")
            }
            Err(err) => tracing::warn!(error = %err, "agent stopped without telling Switchboard"),
        }
        Ok(())
    }
}
