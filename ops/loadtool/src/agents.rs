//! `switchboard-loadtool agents`: many simulated node agents heartbeating
//! into one `switchboard serve` on PostgreSQL (issue 17's benchmark), beside
//! a plain HTTP echo server taking the same requests at the same rate in the
//! same run. It measures the CPU per heartbeat of each process, the latency,
//! the events appended while nothing changes, and how long a dead agent's
//! server takes to be marked offline; and writes `docs/benchmarks-agent.md`.
//!
//! The agents are simulated by this process: each has its own node token
//! (created through the admin API) and registered server (a URL no one
//! serves: agent servers are not polled), and sends the same small
//! getMeetings answer with CPU counters advancing at a steady rate, so
//! nothing but the heartbeat times changes. Heartbeats are sent open-loop
//! on a fixed schedule (agent `i` at `i * interval / agents` into each
//! interval) over a pool of keep-alive connections.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::report::Machine;
use crate::target::{self, CpuTime, Database, ServeOptions, Switchboard, clock_ticks, random_hex};

/// The getMeetings answer every agent sends: one meeting.
const MEETINGS_XML: &str = "<response><returncode>SUCCESS</returncode><meetings><meeting><meetingName>Bench</meetingName><meetingID>bench-room</meetingID><internalMeetingID>0123456789abcdef0123456789abcdef01234567-1700000000000</internalMeetingID><createTime>1700000000000</createTime><running>true</running><participantCount>12</participantCount><listenerCount>3</listenerCount><voiceParticipantCount>4</voiceParticipantCount><videoCount>2</videoCount><moderatorCount>1</moderatorCount></meeting></meetings></response>";

/// Settings of one agents run.
#[derive(Debug, Clone)]
pub struct AgentsConfig {
    /// The `switchboard` binary.
    pub binary: PathBuf,
    /// Simulated agents.
    pub agents: usize,
    /// Seconds between one agent's heartbeats.
    pub interval_secs: f64,
    /// Seconds of measured heartbeats (after one interval of warm-up).
    pub duration_secs: f64,
    /// Keep-alive connections the heartbeats share.
    pub connections: usize,
    /// Admin URL of the PostgreSQL server.
    pub postgres: String,
    /// Where the report goes.
    pub output: PathBuf,
}

/// What one target (Switchboard or the echo) did under the load.
#[derive(Debug, Clone, Default)]
struct Phase {
    sent: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed_secs: f64,
    cpu_ticks: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed_secs.max(1e-9)
    }

    /// CPU milliseconds per request.
    fn cpu_ms_per_request(&self, ticks_per_second: u64) -> f64 {
        self.cpu_ticks as f64 * 1000.0 / ticks_per_second as f64 / self.sent.max(1) as f64
    }

    /// Share of one core.
    fn core_share(&self, ticks_per_second: u64) -> f64 {
        self.cpu_ticks as f64 / ticks_per_second as f64 / self.elapsed_secs.max(1e-9)
    }
}

/// One simulated agent.
#[derive(Debug, Clone)]
struct SimAgent {
    token: String,
    server: String,
}

fn http_client(connections: usize) -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(10))
        .build()
        .context("cannot build the HTTP client")
}

async fn post_json(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let response = client
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{url}: {status}: {text}");
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Creates an admin token with the CLI on the database.
async fn admin_token(
    binary: &Path,
    database: &Database,
    data_dir: &Path,
) -> anyhow::Result<String> {
    let output = tokio::process::Command::new(binary)
        .args(["--database", &database.url, "--data-dir"])
        .arg(data_dir)
        .args(["tokens", "create", "bench", "--scope", "admin"])
        .env_remove("SWITCHBOARD_URL")
        .env_remove("SWITCHBOARD_TOKEN")
        .output()
        .await?;
    if !output.status.success() {
        bail!(
            "`tokens create` failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// Creates a node token per agent and registers its server.
async fn register_agents(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    count: usize,
    interval_secs: f64,
) -> anyhow::Result<Vec<SimAgent>> {
    let gate = Arc::new(Semaphore::new(32));
    let mut tasks = Vec::with_capacity(count);
    for n in 0..count {
        let (client, base, admin, gate) = (
            client.clone(),
            base.to_owned(),
            admin.to_owned(),
            gate.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            let created = post_json(
                &client,
                &format!("{base}/api/v1/tokens"),
                &admin,
                &json!({"name": format!("agent-{n}"), "scope": "node"}),
            )
            .await?;
            let token = created["token"].as_str().context("no token")?.to_owned();
            let registered = post_json(
                &client,
                &format!("{base}/api/v1/agent/register"),
                &token,
                &json!({
                    "url": format!("http://agent-{n}.bench.invalid/bigbluebutton/api/"),
                    "secret": random_hex(20),
                    "enable": true,
                    "version": "3.0.4",
                    "interval_secs": interval_secs,
                }),
            )
            .await?;
            let server = registered["server"]
                .as_str()
                .context("no server")?
                .to_owned();
            anyhow::Ok(SimAgent { token, server })
        }));
    }
    let mut agents = Vec::with_capacity(count);
    for task in tasks {
        agents.push(task.await??);
    }
    Ok(agents)
}

/// The heartbeat of agent `n` at its `beat`-th interval.
fn heartbeat(agent: &SimAgent, interval_secs: f64, beat: u64) -> Value {
    let total = 1000.0 + beat as f64 * 400.0 * interval_secs;
    json!({
        "server": agent.server,
        "version": "3.0.4",
        "interval_secs": interval_secs,
        "meetings_xml": MEETINGS_XML,
        "listed_ago_ms": 2,
        "cpu": {"busy_seconds": total * 0.3, "total_seconds": total},
        "memory_percent": 42.0,
        "meetings": 1,
        "attendees": 12,
    })
}

/// Sends every agent's heartbeats on schedule for `duration` (after a
/// warm-up interval), measuring `pid`'s CPU over the measured part. The
/// agent `silent` (if any) stops after `silence_at`.
#[allow(clippy::too_many_arguments)]
async fn drive(
    client: &reqwest::Client,
    url: &str,
    agents: &[SimAgent],
    interval_secs: f64,
    duration: Duration,
    connections: usize,
    pid: u32,
    silent: Option<(usize, Arc<AtomicBool>)>,
) -> anyhow::Result<Phase> {
    let interval = Duration::from_secs_f64(interval_secs);
    let gate = Arc::new(Semaphore::new(connections));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<u32>::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let measuring = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let agents = Arc::new(agents.to_vec());
    let start = Instant::now();
    // Two intervals of warm-up: every agent's first heartbeats (a first CPU
    // reading, then a first sample) before the measured part.
    let warmup = interval * 2;
    let total = warmup + duration;
    let slots = agents.len().max(1);
    let mut cpu_start = None;
    let mut measured_from = None;
    let mut k: u64 = 0;
    loop {
        let beat = k / slots as u64;
        let n = (k % slots as u64) as usize;
        let due = Duration::from_secs_f64(
            beat as f64 * interval_secs + n as f64 * interval_secs / slots as f64,
        );
        if due >= total {
            break;
        }
        if due >= warmup && cpu_start.is_none() {
            let now = start.elapsed();
            if now < due {
                tokio::time::sleep(due - now).await;
            }
            cpu_start = Some(CpuTime::of(pid)?);
            measured_from = Some(Instant::now());
            measuring.store(true, Ordering::Release);
        }
        let now = start.elapsed();
        if now < due {
            tokio::time::sleep(due - now).await;
        }
        k += 1;
        if let Some((quiet, stopped)) = &silent
            && *quiet == n
            && stopped.load(Ordering::Acquire)
        {
            continue;
        }
        let permit = gate.clone().acquire_owned().await?;
        let (client, url, agents) = (client.clone(), url.to_owned(), agents.clone());
        let (latencies, errors, first_error, measuring, sent) = (
            latencies.clone(),
            errors.clone(),
            first_error.clone(),
            measuring.clone(),
            sent.clone(),
        );
        tokio::spawn(async move {
            let _permit = permit;
            let agent = &agents[n];
            let body = heartbeat(agent, interval_secs, beat);
            let began = Instant::now();
            let result = post_json(&client, &url, &agent.token, &body).await;
            let took = began.elapsed();
            if !measuring.load(Ordering::Acquire) {
                return;
            }
            sent.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(_) => latencies
                    .lock()
                    .expect("latencies")
                    .push(took.as_micros().min(u32::MAX as u128) as u32),
                Err(err) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    first_error
                        .lock()
                        .expect("first error")
                        .get_or_insert_with(|| err.to_string());
                }
            }
        });
    }
    // Wait for the last requests.
    let _ = gate.acquire_many(connections as u32).await?;
    let elapsed = measured_from.map_or(0.0, |at| at.elapsed().as_secs_f64());
    let cpu = CpuTime::of(pid)?.since(cpu_start.unwrap_or_default());
    let mut latencies = std::mem::take(&mut *latencies.lock().expect("latencies"));
    latencies.sort_unstable();
    let percentile = |p: f64| crate::stats::percentile_ms(&latencies, p);
    Ok(Phase {
        sent: sent.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        first_error: first_error.lock().expect("first error").clone(),
        elapsed_secs: elapsed,
        cpu_ticks: cpu.total(),
        p50_ms: percentile(50.0),
        p99_ms: percentile(99.0),
        max_ms: latencies.last().map_or(0.0, |us| *us as f64 / 1000.0),
    })
}

/// The log position Switchboard reports.
async fn position(client: &reqwest::Client, base: &str, admin: &str) -> anyhow::Result<i64> {
    let status: Value = client
        .get(format!("{base}/api/v1/status"))
        .bearer_auth(admin)
        .send()
        .await?
        .json()
        .await?;
    status["position"]
        .as_i64()
        .context("no position in /status")
}

/// Whether a server is online, as the admin API says.
async fn online(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    id: &str,
) -> anyhow::Result<bool> {
    let server: Value = client
        .get(format!("{base}/api/v1/servers/{id}"))
        .bearer_auth(admin)
        .send()
        .await?
        .json()
        .await?;
    server["online"]
        .as_bool()
        .context("no online in the server view")
}

/// Runs the benchmark and writes the report.
pub async fn run(config: AgentsConfig) -> anyhow::Result<()> {
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let machine = Machine::detect();
    let ticks = clock_ticks();
    let client = http_client(config.connections)?;
    let duration = Duration::from_secs_f64(config.duration_secs);

    // The echo baseline first: the same load against a plain HTTP server.
    let echo_addr = target::free_port()?;
    let mut echo = tokio::process::Command::new(std::env::current_exe()?)
        .args(["echo", "--listen", &echo_addr.to_string()])
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the echo server")?;
    let echo_pid = echo.id().context("echo exited")?;
    wait_listening(echo_addr).await?;
    let fake: Vec<SimAgent> = (0..config.agents)
        .map(|n| SimAgent {
            token: format!("sbt_{n:040}"),
            server: format!("00000000-0000-7000-8000-{n:012x}"),
        })
        .collect();
    eprintln!(
        "echo: {} agents every {} s",
        config.agents, config.interval_secs
    );
    let echo_phase = drive(
        &client,
        &format!("http://{echo_addr}/api/v1/agent/heartbeat"),
        &fake,
        config.interval_secs,
        duration,
        config.connections,
        echo_pid,
        None,
    )
    .await?;
    let _ = echo.kill().await;

    // Switchboard on a fresh PostgreSQL database.
    let data_dir = std::env::temp_dir().join(format!("switchboard-agents-{}", random_hex(4)));
    std::fs::create_dir_all(&data_dir)?;
    let database = Database::postgres(&config.postgres).await?;
    let outcome = async {
        let admin = admin_token(&config.binary, &database, &data_dir).await?;
        let switchboard = Switchboard::start_with(
            &config.binary,
            &database,
            &data_dir,
            &random_hex(20),
            &[],
            &ServeOptions {
                health_interval_secs: Some(5.0),
                ..ServeOptions::default()
            },
        )
        .await?;
        let base = format!("http://{}", switchboard.addr);
        eprintln!("registering {} agents", config.agents);
        let registered_at = Instant::now();
        let agents =
            register_agents(&client, &base, &admin, config.agents, config.interval_secs).await?;
        let registration_secs = registered_at.elapsed().as_secs_f64();
        eprintln!(
            "switchboard: {} agents every {} s",
            config.agents, config.interval_secs
        );
        let before = position(&client, &base, &admin).await?;
        // The first interval (warm-up) records each agent's first report;
        // the measured part must append nothing.
        let silent = Arc::new(AtomicBool::new(false));
        let url = format!("{base}/api/v1/agent/heartbeat");
        let phase_task = {
            let (client, agents, silent) = (client.clone(), agents.clone(), silent.clone());
            let (interval, connections, pid) =
                (config.interval_secs, config.connections, switchboard.pid);
            tokio::spawn(async move {
                drive(
                    &client,
                    &url,
                    &agents,
                    interval,
                    duration,
                    connections,
                    pid,
                    Some((0, silent)),
                )
                .await
            })
        };
        // Positions after the warm-up (plus a flush) and at the end.
        tokio::time::sleep(Duration::from_secs_f64(2.0 * config.interval_secs + 0.5)).await;
        let measured_from = position(&client, &base, &admin).await?;
        // The death test: agent 0 goes silent as the measured part starts
        // (the others keep beating until it ends, so `duration` must exceed
        // the offline bound).
        silent.store(true, Ordering::Release);
        let silenced = Instant::now();
        let mut offline_after = None;
        while silenced.elapsed() < Duration::from_secs(60) {
            if !online(&client, &base, &admin, &agents[0].server).await? {
                offline_after = Some(silenced.elapsed().as_secs_f64());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let phase = phase_task.await??;
        let after = position(&client, &base, &admin).await?;
        let appended: Value = client
            .get(format!(
                "{base}/api/v1/events?after={measured_from}&limit=1000"
            ))
            .bearer_auth(&admin)
            .send()
            .await?
            .json()
            .await?;
        let mut kinds = std::collections::BTreeMap::<String, usize>::new();
        for event in appended
            .as_array()
            .or(appended["events"].as_array())
            .into_iter()
            .flatten()
        {
            let kind = format!(
                "{} by {}",
                event["event_type"].as_str().unwrap_or("?"),
                event["actor"].as_str().unwrap_or("?")
            );
            *kinds.entry(kind).or_default() += 1;
        }
        eprintln!("events appended while measuring: {kinds:?}");
        let memory = switchboard.memory()?;
        let log = switchboard.log_tail();
        if let Ok(path) = std::env::var("AGENTS_KEEP_LOG") {
            let _ = std::fs::copy(data_dir.join("switchboard.log"), path);
        }
        switchboard.stop().await;
        anyhow::Ok((
            phase,
            before,
            measured_from,
            after,
            offline_after,
            registration_secs,
            memory,
            log,
        ))
    }
    .await;
    let _ = database.drop_created().await;
    let _ = std::fs::remove_dir_all(&data_dir);
    let (phase, before, measured_from, after, offline_after, registration_secs, memory, log) =
        outcome?;
    if phase.errors > 0 || measured_from + 1 < after {
        eprintln!("switchboard log tail:\n{log}");
    }
    let report = render(&Rendered {
        date,
        machine,
        config: &config,
        ticks,
        echo: &echo_phase,
        switchboard: &phase,
        warmup_events: measured_from - before,
        measured_events: after - measured_from,
        offline_after,
        registration_secs,
        peak_rss_mb: target::kib_to_mb(memory.hwm_kib),
    });
    print!("{report}");
    std::fs::write(&config.output, report)
        .with_context(|| format!("cannot write {}", config.output.display()))?;
    eprintln!("wrote {}", config.output.display());
    Ok(())
}

async fn wait_listening(addr: SocketAddr) -> anyhow::Result<()> {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            bail!("the echo server did not listen on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// What the report shows.
struct Rendered<'a> {
    date: String,
    machine: Machine,
    config: &'a AgentsConfig,
    ticks: u64,
    echo: &'a Phase,
    switchboard: &'a Phase,
    warmup_events: i64,
    measured_events: i64,
    offline_after: Option<f64>,
    registration_secs: f64,
    peak_rss_mb: f64,
}

fn render(r: &Rendered<'_>) -> String {
    let config = r.config;
    let (echo, sb) = (r.echo, r.switchboard);
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmark: node agents' heartbeats\n");
    let _ = writeln!(
        out,
        "Generated by `switchboard-loadtool agents` on {}. Machine: {}.\n",
        r.date,
        r.machine.describe()
    );
    let _ = writeln!(
        out,
        "{} simulated agents, each with its own node token and registered server, send a heartbeat every {} s ({:.0} heartbeats/s) over {} keep-alive connections, open-loop on a fixed schedule, for {} s after two intervals of warm-up. Agents register with their version and interval (recorded then, so heartbeats need not). Each heartbeat carries a one-meeting getMeetings answer and CPU counters advancing at a steady 30%, so nothing but the heartbeat time changes. `switchboard serve` runs on a fresh PostgreSQL database with its workers (health poller, agent watch). The baseline is a plain HTTP server (hyper, in its own process) that reads the same requests and answers a fixed JSON body, under the same load in the same run. CPU is each server process's user+system time over the measured part (the load generator and PostgreSQL are not counted).\n",
        config.agents,
        config.interval_secs,
        config.agents as f64 / config.interval_secs,
        config.connections,
        config.duration_secs,
    );
    let _ = writeln!(
        out,
        "| | requests | rate/s | errors | p50 ms | p99 ms | max ms | CPU ms per heartbeat | share of one core |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, phase) in [("HTTP echo (baseline)", echo), ("Switchboard", sb)] {
        let _ = writeln!(
            out,
            "| {name} | {} | {:.0} | {} | {:.2} | {:.2} | {:.1} | {:.3} | {:.1}% |",
            phase.sent,
            phase.rate(),
            phase.errors,
            phase.p50_ms,
            phase.p99_ms,
            phase.max_ms,
            phase.cpu_ms_per_request(r.ticks),
            phase.core_share(r.ticks) * 100.0
        );
    }
    let ratio = sb.cpu_ms_per_request(r.ticks) / echo.cpu_ms_per_request(r.ticks).max(1e-9);
    let share = sb.core_share(r.ticks);
    let target_rate = 2000.0;
    let at_target = sb.cpu_ms_per_request(r.ticks) * target_rate / 1000.0;
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "- Switchboard's CPU per heartbeat is {ratio:.1}x the echo's. At the measured rate it used {:.1}% of one core; at 2,000 heartbeats/s that is {:.1}% (target: under 25%): **{}**.",
        share * 100.0,
        at_target * 100.0,
        if at_target < 0.25 { "PASS" } else { "MISS" }
    );
    let _ = writeln!(
        out,
        "- Events appended: {} during the warm-up (two intervals), {} during the measured part (target 0 while nothing changes, but for the one server marked offline below).",
        r.warmup_events, r.measured_events
    );
    match r.offline_after {
        Some(secs) => {
            let bound = 3.0 * config.interval_secs;
            let _ = writeln!(
                out,
                "- One agent went silent as the measured part began: its server was marked offline {secs:.2} s after it fell silent (its last heartbeat was up to one interval earlier; bound from the last heartbeat: 3 missed x {} s + 2 s = {:.0} s): **{}**.",
                config.interval_secs,
                bound + 2.0,
                if secs <= bound + 2.0 { "PASS" } else { "MISS" }
            );
        }
        None => {
            let _ = writeln!(
                out,
                "- The silent agent's server was not marked offline within 60 s: **MISS**."
            );
        }
    }
    let _ = writeln!(
        out,
        "- Registering {} agents (a node token each, then a registration) took {:.1} s; Switchboard's peak RSS was {:.0} MB.",
        config.agents, r.registration_secs, r.peak_rss_mb
    );
    if let Some(error) = &sb.first_error {
        let _ = writeln!(out, "- First Switchboard error: `{error}`");
    }
    let _ = writeln!(
        out,
        "\nWhat limits the figures: both servers share the machine's cores with the load generator (this process) and, for Switchboard, PostgreSQL (heartbeat times are written in batches every 200 ms; samples only when their content changes or once a minute). Reproduce with `cargo build --release -p switchboard-api -p switchboard-loadtool && target/release/switchboard-loadtool agents`."
    );
    out
}

/// `switchboard-loadtool echo`: answers every request with a small JSON
/// body after reading it (the baseline).
pub async fn echo(listen: SocketAddr) -> anyhow::Result<()> {
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = service_fn(
                |request: hyper::Request<hyper::body::Incoming>| async move {
                    let _ = request.into_body().collect().await;
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(bytes::Bytes::from_static(
                                b"{\"online\":true,\"events\":0}",
                            )))
                            .expect("response"),
                    )
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
