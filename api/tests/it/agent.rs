//! Node agents (issue 17) over real HTTP: `switchboard agent` processes
//! against simulated BBB servers register them, push their CPU and memory
//! to placement, are noticed dead within the heartbeat bound, and node
//! tokens reach nothing else.

use crate::support::{BOTH, Db, Harness, client};
use bbb_simulator::{Simulator, SimulatorConfig};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchboard_api::admin::model::{NewToken, Scope, ServerView};
use switchboard_app::admin::Principal;

/// Heartbeat interval of the test agents (s) and heartbeats they may miss.
const INTERVAL: f64 = 0.5;
const MISSED: u32 = 3;

/// A fake `/proc` whose CPU counters advance at `busy_percent`.
struct FakeProc {
    dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl FakeProc {
    fn start(busy_percent: f64, memory_percent: f64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let available = 1_000_000.0 * (1.0 - memory_percent / 100.0);
        std::fs::write(
            root.join("meminfo"),
            format!("MemTotal: 1000000 kB\nMemAvailable: {available:.0} kB\n"),
        )
        .unwrap();
        let write = move |root: &Path, tick: f64| {
            let busy = tick * busy_percent;
            let idle = tick * (100.0 - busy_percent);
            let text = format!("cpu  {busy:.0} 0 0 {idle:.0} 0 0 0 0 0 0\n");
            let temp = root.join("stat.new");
            std::fs::write(&temp, text).unwrap();
            std::fs::rename(temp, root.join("stat")).unwrap();
        };
        write(&root, 1.0);
        let task = tokio::spawn(async move {
            let mut tick = 1.0;
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                tick += 1.0;
                write(&root, tick);
            }
        });
        Self { dir, task }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for FakeProc {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// BBB's settings file of a simulator.
fn properties(dir: &Path, sim: &Simulator) -> PathBuf {
    let file = dir.join(format!("bbb-{}.properties", sim.addr().port()));
    let server_url = sim.url().trim_end_matches("/bigbluebutton/").to_owned();
    std::fs::write(
        &file,
        format!(
            "# bbb-web\nsecuritySalt={}\nbigbluebutton.web.serverURL={server_url}\nsupportedChecksumAlgorithms=sha1,sha256\n",
            sim.secret()
        ),
    )
    .unwrap();
    file
}

/// Starts `switchboard agent` for a simulator.
fn agent(harness: &Harness, props: &Path, token: &str, proc_root: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["agent", "--register", "--enable", "--interval"])
        .arg(INTERVAL.to_string())
        .arg("--bbb-properties")
        .arg(props)
        .arg("--url")
        .arg(format!("http://{}", harness.app.addr))
        .arg("--proc")
        .arg(proc_root)
        .env("SWITCHBOARD_TOKEN", token)
        .env_remove("SWITCHBOARD_URL")
        .env("SWITCHBOARD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the agent")
}

async fn node_token(harness: &Harness, name: &str) -> String {
    harness
        .state()
        .admin
        .create_token(
            NewToken {
                name: name.into(),
                scope: Scope::Node,
                server: None,
            },
            &Principal::admin("test".into()),
        )
        .await
        .unwrap()
        .token
}

async fn servers(harness: &Harness) -> Vec<ServerView> {
    harness.state().admin.servers().await.unwrap()
}

/// Waits until `check` holds on the servers, at most `within`.
async fn wait_for(
    harness: &Harness,
    within: Duration,
    what: &str,
    check: impl Fn(&[ServerView]) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let now = servers(harness).await;
        if check(&now) {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "{what}: {now:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn by_url<'a>(servers: &'a [ServerView], sim: &Simulator) -> Option<&'a ServerView> {
    servers.iter().find(|server| server.url == sim.url())
}

async fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_built_by_agents_places_by_their_cpu_and_notices_a_dead_agent() {
    for db in BOTH {
        let harness = Harness::polled_with(db, 0, |settings| {
            settings.load.cpu = 10.0;
            settings.agent.missed_heartbeats = MISSED;
            settings.agent.watch_interval_ms = 100;
            settings.agent.flush_interval_ms = 50;
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let busy_sim = Simulator::start(SimulatorConfig {
            secret: "busy-secret".into(),
            ..SimulatorConfig::default()
        })
        .await
        .unwrap();
        let idle_sim = Simulator::start(SimulatorConfig {
            secret: "idle-secret".into(),
            ..SimulatorConfig::default()
        })
        .await
        .unwrap();
        let (busy_proc, idle_proc) = (FakeProc::start(90.0, 50.0), FakeProc::start(10.0, 20.0));
        let busy_props = properties(dir.path(), &busy_sim);
        let idle_props = properties(dir.path(), &idle_sim);
        let busy_token = node_token(&harness, "bbb-busy").await;
        let idle_token = node_token(&harness, "bbb-idle").await;
        let mut busy_agent = agent(&harness, &busy_props, &busy_token, busy_proc.path());
        let mut idle_agent = agent(&harness, &idle_props, &idle_token, idle_proc.path());

        // No `servers add`: both register themselves, enabled, and report
        // their CPU and memory.
        wait_for(
            &harness,
            Duration::from_secs(15),
            "agents register and report",
            |now| {
                now.len() == 2
                    && now.iter().all(|server| {
                        server.agent
                            && server.online
                            && server.state == "enabled"
                            && server.cpu_percent.is_some()
                            && server.heard_at_ms.is_some()
                            && server.agent_version.as_deref() == Some("3.0.0")
                    })
            },
        )
        .await;
        let now = servers(&harness).await;
        let busy = by_url(&now, &busy_sim).unwrap().clone();
        let idle = by_url(&now, &idle_sim).unwrap().clone();
        assert!((busy.cpu_percent.unwrap() - 90.0).abs() < 5.0, "{busy:?}");
        assert!(
            (idle.memory_percent.unwrap() - 20.0).abs() < 1.0,
            "{idle:?}"
        );

        // Placement uses the pushed CPU: the idle server takes the meetings.
        for n in 0..3 {
            harness
                .create(&format!("agent-room-{n}"))
                .await
                .assert_success();
        }
        assert_eq!(idle_sim.meeting_count(), 3, "{db:?}");
        assert_eq!(busy_sim.meeting_count(), 0);
        // The heartbeats carry the meetings: attendees reach the admin view.
        wait_for(
            &harness,
            Duration::from_secs(5),
            "meetings reported",
            |now| by_url(now, &idle_sim).is_some_and(|server| server.meetings == 3),
        )
        .await;

        // A meeting ended on its server without a callback is found gone
        // from the heartbeats (agent servers are not polled).
        idle_sim.set_callbacks_enabled(false);
        assert!(idle_sim.end_meeting_directly("agent-room-0"));
        let started = Instant::now();
        loop {
            let running = harness
                .get("isMeetingRunning", "meetingID=agent-room-0")
                .await;
            if running.field("running").as_deref() == Some("false") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{}",
                running.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // SIGKILL: no goodbye; offline within missed x interval + 2 s.
        busy_agent.kill().unwrap();
        busy_agent.wait().unwrap();
        let took = wait_for(
            &harness,
            Duration::from_secs_f64(MISSED as f64 * INTERVAL + 2.0),
            "a dead agent's server goes offline",
            |now| by_url(now, &busy_sim).is_some_and(|server| !server.online),
        )
        .await;
        eprintln!("{db:?}: offline {took:?} after SIGKILL");
        assert!(by_url(&servers(&harness).await, &idle_sim).unwrap().online);

        // A restart brings it back (found by URL, not added twice).
        let mut busy_again = agent(&harness, &busy_props, &busy_token, busy_proc.path());
        wait_for(&harness, Duration::from_secs(10), "back online", |now| {
            now.len() == 2 && by_url(now, &busy_sim).is_some_and(|server| server.online)
        })
        .await;

        // SIGTERM: the agent says goodbye; the server is drained, not failed.
        signal(&idle_agent, "TERM").await;
        assert!(idle_agent.wait().unwrap().success());
        wait_for(
            &harness,
            Duration::from_secs(5),
            "away after SIGTERM",
            |now| by_url(now, &idle_sim).is_some_and(|server| server.agent_away),
        )
        .await;
        tokio::time::sleep(Duration::from_secs_f64(MISSED as f64 * INTERVAL + 0.5)).await;
        let now = servers(&harness).await;
        let idle_now = by_url(&now, &idle_sim).unwrap();
        assert!(idle_now.online, "drained, not offline: {idle_now:?}");
        harness.create("after-goodbye").await.assert_success();
        assert_eq!(
            busy_sim.meeting_count(),
            1,
            "no new meetings on the drained server"
        );

        busy_again.kill().unwrap();
        busy_again.wait().unwrap();
        busy_sim.shutdown().await;
        idle_sim.shutdown().await;
        harness.stop().await;
    }
}

#[tokio::test]
async fn a_node_token_reads_nothing_and_touches_no_other_server() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let token = node_token(&harness, "bbb-x").await;
    let base = format!("http://{}/api/v1", harness.app.addr);
    let http = client();
    let sim = Simulator::start(SimulatorConfig::default()).await.unwrap();
    let registered: serde_json::Value = http
        .post(format!("{base}/agent/register"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"url": sim.url(), "secret": sim.secret()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let own = registered["server"].as_str().unwrap().to_owned();
    let other = harness.servers[0].to_string();
    let heartbeat = |server: &str| {
        serde_json::json!({
            "server": server,
            "interval_secs": 5,
            "meetings_xml": "<response><returncode>SUCCESS</returncode><meetings/></response>"
        })
    };
    let status = |response: reqwest::Response| response.status().as_u16();
    let own_beat = http
        .post(format!("{base}/agent/heartbeat"))
        .bearer_auth(&token)
        .json(&heartbeat(&own))
        .send()
        .await
        .unwrap();
    assert_eq!(status(own_beat), 200);
    for (method, path, body) in [
        ("GET", "/servers".to_owned(), None),
        ("GET", format!("/servers/{own}"), None),
        ("GET", "/events".to_owned(), None),
        ("GET", "/tokens".to_owned(), None),
        ("POST", format!("/servers/{other}/disable"), None),
        (
            "POST",
            "/agent/heartbeat".to_owned(),
            Some(heartbeat(&other)),
        ),
        (
            "POST",
            "/agent/leave".to_owned(),
            Some(serde_json::json!({"server": other})),
        ),
        (
            "POST",
            "/agent/register".to_owned(),
            Some(
                serde_json::json!({"url": "https://elsewhere.example/bigbluebutton/", "secret": "x"}),
            ),
        ),
    ] {
        let request = match method {
            "GET" => http.get(format!("{base}{path}")),
            _ => http.post(format!("{base}{path}")),
        };
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let response = request.bearer_auth(&token).send().await.unwrap();
        assert_eq!(status(response), 403, "{method} {path}");
    }
    sim.shutdown().await;
    harness.stop().await;
}

#[test]
fn a_wrong_or_incomplete_properties_file_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let run = |file: &Path| {
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["agent", "--url", "http://127.0.0.1:9", "--token", "t"])
            .arg("--bbb-properties")
            .arg(file)
            .env_remove("SWITCHBOARD_URL")
            .env_remove("SWITCHBOARD_TOKEN")
            .output()
            .unwrap()
    };
    let missing = dir.path().join("missing.properties");
    let output = run(&missing);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(err.contains(&missing.display().to_string()), "{err}");

    let partial = dir.path().join("bbb-web.properties");
    std::fs::write(
        &partial,
        "bigbluebutton.web.serverURL=https://bbb.example.org\n",
    )
    .unwrap();
    let output = run(&partial);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        err.contains("securitySalt") && err.contains(&partial.display().to_string()),
        "{err}"
    );
}
