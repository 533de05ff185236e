//! Fault injection on PostgreSQL (issue 15.B2): `serve` killed with SIGKILL
//! during a burst of creates, the database unreachable under load, servers
//! that hang or answer garbage mid-create. Each test runs the real binary
//! or the real HTTP stack against simulated BBB servers.

use crate::support::{Reply, SECRET, client, signed_url};
use bbb_simulator::{FailureMode, Simulator, SimulatorConfig};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
#[allow(unused_imports)]
use switchboard_app::ports::prelude::*;
use switchboard_domain::bbb::checksum::ChecksumAlgorithm;
use switchboard_domain::ids::TenantId;
use switchboard_store::Store;
use switchboard_store::test_support::fresh_postgres;

/// A free local port (bound, then released for the child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `switchboard serve` as a child process on `addr`.
struct Serve {
    child: tokio::process::Child,
    addr: SocketAddr,
}

impl Serve {
    async fn start(database: &str, addr: SocketAddr, data_dir: &std::path::Path) -> Self {
        Self::start_with(database, addr, data_dir, &[]).await
    }

    async fn start_with(
        database: &str,
        addr: SocketAddr,
        data_dir: &std::path::Path,
        extra: &[&str],
    ) -> Self {
        switchboard_workers::backend::install_crypto_provider();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([
                "serve",
                "--listen",
                &addr.to_string(),
                "--database",
                database,
            ])
            .args(extra)
            .arg("--data-dir")
            .arg(data_dir)
            .env("SWITCHBOARD_SECRET", SECRET)
            .env("SWITCHBOARD_HEALTH_INTERVAL_SECS", "1")
            .env_remove("SWITCHBOARD_CONFIG")
            .env_remove("SWITCHBOARD_REDIS_URL")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start switchboard");
        let serve = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("http://{addr}/health")).await.is_err() {
            assert!(Instant::now() < deadline, "serve did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        serve
    }

    fn api(&self) -> String {
        format!("http://{}/bigbluebutton/api/", self.addr)
    }

    async fn kill(mut self) {
        // SIGKILL: no shutdown, no flush.
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
    }
}

async fn pool(store: &Store, count: usize) -> Vec<Simulator> {
    let mut sims = Vec::new();
    for n in 0..count {
        let sim = Simulator::start(SimulatorConfig {
            secret: format!("chaos-sim-secret-{n}"),
            ..SimulatorConfig::default()
        })
        .await
        .unwrap();
        crate::support::add_server(store, &sim, None, true).await;
        sims.push(sim);
    }
    sims
}

/// Creates `ids` through `api` with `concurrency` at once; the ids answered
/// SUCCESS.
async fn create_all(api: &str, ids: &[String], concurrency: usize) -> HashSet<String> {
    use futures::StreamExt;
    let client = client();
    futures::stream::iter(ids.iter().cloned())
        .map(|id| {
            let client = client.clone();
            let url = signed_url(
                api,
                "create",
                &format!("name=Chaos&meetingID={id}"),
                SECRET,
                ChecksumAlgorithm::Sha1,
            );
            async move {
                let answer = client
                    .get(url)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                match answer {
                    Ok(response) => {
                        let reply = Reply::read(response).await;
                        (reply.returncode() == "SUCCESS").then_some(id)
                    }
                    Err(_) => None,
                }
            }
        })
        .buffer_unordered(concurrency)
        .filter_map(|id| async move { id })
        .collect()
        .await
}

/// Which simulators run each meetingID.
fn placements(sims: &[Simulator]) -> HashMap<String, Vec<usize>> {
    let mut placed: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, sim) in sims.iter().enumerate() {
        for id in sim.meeting_ids() {
            placed.entry(id).or_default().push(index);
        }
    }
    placed
}

/// `serve` killed (SIGKILL) during a burst of creates and restarted; the
/// front-end retries the creates it got no answer for (same meetingIDs).
/// Every create answered SUCCESS is in the log and on exactly one server,
/// no meeting is split, and no server holds a meeting the log does not
/// know.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_during_a_create_burst_splits_and_loses_nothing() {
    let database = fresh_postgres().await;
    let store = Store::connect(&database).await.unwrap();
    store.migrate().await.unwrap();
    let sims = pool(&store, 3).await;
    let data_dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let ids: Vec<String> = (0..300).map(|n| format!("burst-{n}")).collect();

    let serve = Serve::start(&database, addr, data_dir.path()).await;
    let api = serve.api();
    let burst = tokio::spawn({
        let ids = ids.clone();
        async move { create_all(&api, &ids, 16).await }
    });
    // Kill once part of the burst is through.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sims.iter().map(Simulator::meeting_count).sum::<usize>() < 60 {
        assert!(Instant::now() < deadline, "the burst did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    serve.kill().await;
    let answered = burst.await.unwrap();
    assert!(
        answered.len() < ids.len(),
        "the kill came before the end of the burst ({} answered)",
        answered.len()
    );

    let serve = Serve::start(&database, addr, data_dir.path()).await;
    let unanswered: Vec<String> = ids
        .iter()
        .filter(|id| !answered.contains(*id))
        .cloned()
        .collect();
    let retried = create_all(&serve.api(), &unanswered, 16).await;
    assert_eq!(
        retried.len(),
        unanswered.len(),
        "every retry answered SUCCESS"
    );

    let placed = placements(&sims);
    let split: Vec<_> = placed.iter().filter(|(_, on)| on.len() > 1).collect();
    assert!(split.is_empty(), "split meetings: {split:?}");
    let tenant = TenantId::default_tenant();
    let servers: Vec<_> = store.servers().await.unwrap();
    let index_of = |server| {
        servers
            .iter()
            .find(|s| s.id == server)
            .and_then(|s| sims.iter().position(|sim| sim.url() == s.settings.url))
    };
    for id in &ids {
        let meeting_id = switchboard_domain::ids::MeetingId::parse(id).unwrap();
        let record = store
            .meeting(&tenant, &meeting_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id} answered SUCCESS but is not in the log"));
        assert!(record.running, "{id}");
        assert_eq!(
            placed.get(id).cloned().unwrap_or_default(),
            vec![index_of(record.run.server_id).unwrap()],
            "{id}: on exactly the server the log says"
        );
    }
    let unknown: Vec<_> = placed.keys().filter(|id| !ids.contains(id)).collect();
    assert!(
        unknown.is_empty(),
        "meetings the log does not know: {unknown:?}"
    );
    serve.kill().await;
    for sim in sims {
        sim.shutdown().await;
    }
}

/// Servers that hang, answer garbage or fail mid-create: the create goes to
/// a server that works (or fails cleanly when none does), within the
/// timeouts, and nothing is left locked: the same meeting can be created
/// again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_failing_mid_create_leave_no_split_and_no_stuck_lock() {
    for failure in [
        FailureMode::Timeout,
        FailureMode::Garbage,
        FailureMode::Http500,
        FailureMode::RefuseCreate,
    ] {
        let harness = crate::support::Harness::with_tags(
            crate::support::Db::Postgres,
            &[None, None],
            |settings| settings.backend_timeout_ms = 500,
        )
        .await;
        harness.sims[0].set_failure(failure);
        let started = Instant::now();
        harness.create("mid-create").await.assert_success();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{failure:?}: answered within the timeouts"
        );
        assert_eq!(harness.sim_with_all("mid-create"), vec![1], "{failure:?}");
        harness.create("mid-create").await.assert_success();
        harness.sims[1].set_failure(failure);
        let both = harness.create("nowhere").await;
        assert_eq!(both.returncode(), "FAILED", "{failure:?}: {}", both.body);
        assert!(harness.sim_with("nowhere").is_none(), "{failure:?}");
        harness.stop().await;
    }
}

/// A TCP proxy in front of PostgreSQL that can cut every connection and
/// refuse new ones (the database gone), then let them through again.
struct Proxy {
    addr: SocketAddr,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (accept_up, accept_generation) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let born = accept_generation.load(Ordering::SeqCst);
                let generation = accept_generation.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
                    let cut = async {
                        while generation.load(Ordering::SeqCst) == born {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = copy => {}
                        _ = cut => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            generation,
        }
    }

    /// Cuts every connection and refuses new ones.
    fn cut(&self) {
        use std::sync::atomic::Ordering;
        self.up.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Lets connections through again.
    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// One signed BBB call through `api`: its HTTP status, returncode and how
/// long it took (`None`: no answer within 15 s).
async fn call(api: &str, call: &str, query: &str) -> Option<(u16, String, Duration)> {
    let started = Instant::now();
    let url = signed_url(api, call, query, SECRET, ChecksumAlgorithm::Sha1);
    let response = client()
        .get(url)
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .ok()?;
    let reply = Reply::read(response).await;
    Some((reply.status, reply.returncode(), started.elapsed()))
}

/// PostgreSQL unreachable under load: every BBB call is answered (BBB XML,
/// never a 5xx, never a hang), Switchboard recovers by itself within 10 s
/// of the database's return, and no create it answered SUCCESS is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_and_back_loses_nothing() {
    let database = fresh_postgres().await;
    let store = Store::connect(&database).await.unwrap();
    store.migrate().await.unwrap();
    let sims = pool(&store, 2).await;
    let proxy = Proxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let proxied = database.replace("127.0.0.1:5432", &proxy.addr.to_string());
    assert_ne!(proxied, database, "the database URL names 127.0.0.1:5432");
    let data_dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let serve = Serve::start(&proxied, addr, data_dir.path()).await;
    let api = serve.api();
    let mut succeeded = Vec::new();
    for n in 0..5 {
        let id = format!("before-{n}");
        let (_, code, _) = call(&api, "create", &format!("name=A&meetingID={id}"))
            .await
            .unwrap();
        assert_eq!(code, "SUCCESS");
        succeeded.push(id);
    }

    proxy.cut();
    let outage = Instant::now();
    let mut n = 0;
    let mut refused = 0;
    while outage.elapsed() < Duration::from_secs(4) {
        n += 1;
        let id = format!("during-{n}");
        for (name, query) in [
            ("create", format!("name=A&meetingID={id}")),
            ("getMeetings", String::new()),
            ("isMeetingRunning", "meetingID=before-1".to_owned()),
            ("getMeetingInfo", "meetingID=before-2".to_owned()),
        ] {
            let answer = call(&api, name, &query).await;
            let (status, code, took) =
                answer.unwrap_or_else(|| panic!("{name} during the outage: no answer in 15 s"));
            assert!(status < 500, "{name} during the outage: HTTP {status}");
            assert!(
                code == "SUCCESS" || code == "FAILED",
                "{name} during the outage: BBB XML, got {code:?}"
            );
            assert!(took < Duration::from_secs(12), "{name} took {took:?}");
            if name == "create" && code == "SUCCESS" {
                succeeded.push(id.clone());
            }
            if name == "create" && code == "FAILED" {
                refused += 1;
            }
        }
    }

    assert!(
        refused > 0,
        "the outage was felt: creates need the database"
    );
    proxy.restore();
    let back = Instant::now();
    loop {
        let id = format!("after-{}", back.elapsed().as_millis());
        let answer = call(&api, "create", &format!("name=A&meetingID={id}")).await;
        if let Some((_, code, _)) = &answer
            && code == "SUCCESS"
        {
            succeeded.push(id);
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "not recovered 10 s after the database returned: {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let tenant = TenantId::default_tenant();
    for id in &succeeded {
        let meeting_id = switchboard_domain::ids::MeetingId::parse(id).unwrap();
        assert!(
            store.meeting(&tenant, &meeting_id).await.unwrap().is_some(),
            "{id} was answered SUCCESS but is not in the log"
        );
    }
    serve.kill().await;
    for sim in sims {
        sim.shutdown().await;
    }
}

/// Redis (the job queue) unreachable: jobs wait instead of being lost, and
/// once it is back the work catches up by itself: an archive that arrived
/// during the outage is imported, a meeting that ended on its server is
/// recorded as ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_and_back_loses_no_job() {
    let database = fresh_postgres().await;
    let store = Store::connect(&database).await.unwrap();
    store.migrate().await.unwrap();
    let sims = pool(&store, 1).await;
    let proxy = Proxy::start("127.0.0.1:6379".parse().unwrap()).await;
    let data_dir = tempfile::tempdir().unwrap();
    let config = data_dir.path().join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "redis_url = \"redis://{}/\"\njob_namespace = \"chaos-{}\"\n\
             [recordings]\nspool_settle_secs = 0.0\nrescan_interval_secs = 0.5\nretry_base_ms = 50\n",
            proxy.addr,
            uuid::Uuid::new_v4().simple()
        ),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let serve = Serve::start_with(
        &database,
        addr,
        data_dir.path(),
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let api = serve.api();
    let created = |id: &'static str| {
        let api = api.clone();
        async move {
            let url = signed_url(
                &api,
                "create",
                &format!("name=A&meetingID={id}"),
                SECRET,
                ChecksumAlgorithm::Sha1,
            );
            let reply = Reply::read(client().get(url).send().await.unwrap()).await;
            assert_eq!(reply.returncode(), "SUCCESS", "{}", reply.body);
            reply.field("internalMeetingID").unwrap()
        }
    };
    let recorded = created("recorded").await;
    created("ends-alone").await;

    proxy.cut();
    let spool = data_dir.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let bytes = crate::recordings::archive(&recorded, &["presentation"], "recorded");
    let temp = spool.join(".incoming.part");
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, spool.join(format!("{recorded}.tar"))).unwrap();
    sims[0].end_meeting_directly("ends-alone");
    tokio::time::sleep(Duration::from_secs(3)).await;

    proxy.restore();
    let back = Instant::now();
    let tenant = TenantId::default_tenant();
    let ended = switchboard_domain::ids::MeetingId::parse("ends-alone").unwrap();
    loop {
        let imported = store.recording(&recorded).await.unwrap().is_some();
        let polled = store
            .meeting(&tenant, &ended)
            .await
            .unwrap()
            .is_some_and(|record| !record.running);
        if imported && polled {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "caught up 15 s after Redis returned: imported {imported}, end recorded {polled}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    serve.kill().await;
    for sim in sims {
        sim.shutdown().await;
    }
}
