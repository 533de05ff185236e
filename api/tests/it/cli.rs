//! The `switchboard` binary as an operator runs it.

use std::process::Command;
#[allow(unused_imports)]
use switchboard_app::ports::prelude::*;
#[allow(unused_imports)]
use switchboard_store::test_support::StoreCommands as _;

fn switchboard(data_dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("SWITCHBOARD_SECRET")
        .env_remove("SWITCHBOARD_DATABASE")
        .env_remove("SWITCHBOARD_CONFIG")
        .env_remove("SWITCHBOARD_URL")
        .env_remove("SWITCHBOARD_TOKEN")
        .output()
        .expect("run switchboard");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn servers_commands_manage_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = switchboard(dir.path(), &["migrate"]);
    assert!(ok, "{err}");
    let (ok, id, err) = switchboard(
        dir.path(),
        &[
            "servers",
            "add",
            "https://bbb1.example.org/bigbluebutton/api",
            "s3cret",
            "--tag",
            "big",
            "--load-multiplier",
            "2",
        ],
    );
    assert!(ok, "{err}");
    let id = id.trim().to_owned();
    assert!(id.parse::<uuid::Uuid>().is_ok(), "prints the id: {id}");
    let (ok, list, _) = switchboard(dir.path(), &["servers", "list"]);
    assert!(ok);
    assert!(
        list.contains(&id)
            && list.contains("disabled")
            && list.contains("https://bbb1.example.org/bigbluebutton/")
    );
    assert!(!list.contains("s3cret"), "secrets are not printed");
    // Cordoning a server without running meetings drains it at once.
    for (command, state) in [
        ("enable", "enabled"),
        ("cordon", "disabled"),
        ("enable", "enabled"),
        ("disable", "disabled"),
    ] {
        let (ok, _, err) = switchboard(dir.path(), &["servers", command, &id]);
        assert!(ok, "{command}: {err}");
        let (_, json, _) = switchboard(dir.path(), &["servers", "list", "--json"]);
        let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(rows[0]["state"], state);
        assert_eq!(rows[0]["tag"], "big");
    }
    let (ok, _, err) = switchboard(dir.path(), &["servers", "remove", &id]);
    assert!(ok, "{err}");
    let (_, list, _) = switchboard(dir.path(), &["servers", "list", "--json"]);
    assert_eq!(list.trim(), "[]");
    let (ok, _, _) = switchboard(dir.path(), &["replay"]);
    assert!(ok);
}

#[test]
fn bad_operator_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["servers", "add", "ftp://x", "s"], "invalid server URL"),
        (
            &["servers", "add", "http://x/bigbluebutton/", " "],
            "secret must not be empty",
        ),
        (
            &[
                "servers",
                "add",
                "http://x/bigbluebutton/",
                "s",
                "--load-multiplier",
                "-1",
            ],
            "load multiplier",
        ),
        (&["servers", "enable", "not-a-uuid"], "not a server id"),
        (
            &["servers", "enable", "0192f0c4-7b1e-7cc0-8000-000000000001"],
            "no such server",
        ),
    ];
    for (args, expected) in cases {
        let (ok, _, err) = switchboard(dir.path(), args);
        assert!(!ok, "{args:?} must fail");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

/// Starts `switchboard serve --demo 2` and reads its banner.
async fn start_demo(data_dir: &std::path::Path) -> (tokio::process::Child, Vec<String>) {
    start_demo_with(data_dir, None).await
}

/// As [`start_demo`], with `MIMALLOC_PURGE_DELAY` set to `purge_delay` (or
/// unset).
async fn start_demo_with(
    data_dir: &std::path::Path,
    purge_delay: Option<&str>,
) -> (tokio::process::Child, Vec<String>) {
    use tokio::io::AsyncBufReadExt;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    match purge_delay {
        Some(value) => command.env("MIMALLOC_PURGE_DELAY", value),
        None => command.env_remove("MIMALLOC_PURGE_DELAY"),
    };
    let mut child = command
        .args([
            "serve",
            "--demo",
            "2",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .env_remove("SWITCHBOARD_SECRET")
        .env_remove("SWITCHBOARD_DATABASE")
        .env_remove("SWITCHBOARD_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start switchboard");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains("getMeetings");
            banner.push(line);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), read)
        .await
        .expect("demo banner within 30 s");
    // Keep reading: the server's stdout stays open as under a supervisor.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, banner)
}

fn curl_url(banner: &[String], needle: &str) -> String {
    let line = banner
        .iter()
        .find(|l| l.contains("curl") && l.contains(needle))
        .unwrap();
    line.split('\'').nth(1).unwrap().to_owned()
}

/// Issue 22: `serve` runs with freed memory returned at once
/// (`MIMALLOC_PURGE_DELAY=0`, set by starting itself again in the same
/// process) unless the environment sets the delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_returns_freed_memory_at_once_unless_told_otherwise() {
    for (given, expected) in [(None, "0"), (Some("250"), "250")] {
        let dir = tempfile::tempdir().unwrap();
        let (mut child, banner) = start_demo_with(dir.path(), given).await;
        assert!(!banner.is_empty(), "serve answered after starting again");
        let pid = child.id().expect("serve runs");
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let purge: Vec<&[u8]> = environ
            .split(|byte| *byte == 0)
            .filter(|entry| entry.starts_with(b"MIMALLOC_PURGE_DELAY="))
            .collect();
        assert_eq!(
            purge,
            vec![format!("MIMALLOC_PURGE_DELAY={expected}").as_bytes()],
            "{given:?}"
        );
        child.kill().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_mode_works_from_the_printed_examples() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, banner) = start_demo(dir.path()).await;
    let text = banner.join("\n");
    assert!(text.contains("Generated a BBB API secret"), "{text}");
    let secret_line = banner
        .iter()
        .find(|l| l.trim_start().starts_with("Secret:"))
        .unwrap();
    let secret = secret_line.split_whitespace().last().unwrap().to_owned();
    let client = crate::support::client();
    let create = crate::support::Reply::read(
        client
            .get(curl_url(&banner, "/create?"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    create.assert_success();
    let join = client
        .get(curl_url(&banner, "/join?"))
        .send()
        .await
        .unwrap();
    assert_eq!(join.status().as_u16(), 302);
    let location = join.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        client
            .get(&location)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        302,
        "the simulated server accepts the join"
    );
    let list = crate::support::Reply::read(
        client
            .get(curl_url(&banner, "getMeetings"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    list.assert_success();
    assert!(list.body.contains("<meetingID>demo-room</meetingID>"));
    child.kill().await.unwrap();

    // A restart keeps the stored secret and replaces the old demo servers.
    let (mut child, banner) = start_demo(dir.path()).await;
    let text = banner.join("\n");
    assert!(!text.contains("Generated"), "{text}");
    assert!(text.contains(&secret), "same secret after restart");
    child.kill().await.unwrap();
    let (ok, json, _) = switchboard(dir.path(), &["servers", "list", "--json"]);
    assert!(ok);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        rows.as_array().unwrap().len(),
        2,
        "old demo servers removed: {json}"
    );
}

// ---------------------------------------------------------------------------
// Operator commands: tokens, servers, meetings, events, status, sync/export,
// and the remote mode through the admin API.

use crate::support::{Db, Harness};
use switchboard_api::admin::model::{NewToken, Scope};
use switchboard_app::admin::Principal;
use switchboard_app::records::EventFilter;

/// Runs the binary with `args` as given (no `--data-dir` added).
async fn run_async(args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env_remove("SWITCHBOARD_SECRET")
        .env_remove("SWITCHBOARD_DATABASE")
        .env_remove("SWITCHBOARD_CONFIG")
        .env_remove("SWITCHBOARD_URL")
        .env_remove("SWITCHBOARD_TOKEN")
        .output()
        .await
        .expect("run switchboard");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs a command that must succeed; returns its stdout.
fn ok(dir: &std::path::Path, args: &[&str]) -> String {
    let (ok, out, err) = switchboard(dir, args);
    assert!(ok, "{args:?} failed: {err}");
    out
}

/// Runs a command that must fail; returns its stderr.
fn fails(dir: &std::path::Path, args: &[&str]) -> String {
    let (ok, out, err) = switchboard(dir, args);
    assert!(!ok, "{args:?} must fail: {out}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    err
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"))
}

fn add(dir: &std::path::Path, url: &str, secret: &str, extra: &[&str]) -> String {
    let mut args = vec!["servers", "add", url, secret];
    args.extend_from_slice(extra);
    ok(dir, &args).trim().to_owned()
}

fn position(dir: &std::path::Path) -> i64 {
    json(&ok(dir, &["status", "--json"]))["position"]
        .as_i64()
        .unwrap()
}

fn servers_json(dir: &std::path::Path) -> Vec<serde_json::Value> {
    json(&ok(dir, &["servers", "list", "--json"]))
        .as_array()
        .unwrap()
        .clone()
}

fn by_url<'a>(servers: &'a [serde_json::Value], url: &str) -> Option<&'a serde_json::Value> {
    servers.iter().find(|s| s["url"] == url)
}

#[test]
fn tokens_are_created_listed_and_revoked_locally() {
    let dir = tempfile::tempdir().unwrap();
    let (ok_, token, hint) =
        switchboard(dir.path(), &["tokens", "create", "ci", "--scope", "read"]);
    assert!(ok_, "{hint}");
    let token = token.trim();
    assert!(
        token.starts_with("sbt_") && !token.contains(' '),
        "only the token on stdout: {token}"
    );
    assert!(hint.contains("not shown again"), "{hint}");
    let created = json(&ok(
        dir.path(),
        &["tokens", "create", "ops", "--scope", "admin", "--json"],
    ));
    assert_eq!(created["name"], "ops");
    assert_eq!(created["scope"], "admin");
    assert!(created["token"].as_str().unwrap().starts_with("sbt_"));

    let list = ok(dir.path(), &["tokens", "list"]);
    assert!(
        list.contains("NAME") && list.contains("ci") && list.contains("read"),
        "{list}"
    );
    assert!(!list.contains(token), "tokens are never listed");
    let rows = json(&ok(dir.path(), &["tokens", "list", "--json"]));
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert!(rows[0].get("token").is_none() && rows[0].get("hash").is_none());

    let err = fails(dir.path(), &["tokens", "create", "ci", "--scope", "admin"]);
    assert!(err.contains("exists"), "{err}");
    let err = fails(
        dir.path(),
        &["tokens", "create", "bad name", "--scope", "admin"],
    );
    assert!(err.contains("token names"), "{err}");

    assert!(ok(dir.path(), &["tokens", "revoke", "ci"]).contains("revoked"));
    let rows = json(&ok(dir.path(), &["tokens", "list", "--json"]));
    assert_eq!(rows.as_array().unwrap().len(), 1);
    let err = fails(dir.path(), &["tokens", "revoke", "ci"]);
    assert!(err.contains("no token named `ci`"), "{err}");

    let events = ok(dir.path(), &["events", "list", "--actor", "cli"]);
    assert!(
        events.contains("TokenCreated") && events.contains("TokenRevoked"),
        "{events}"
    );
}

#[test]
fn every_servers_command_works_locally() {
    let dir = tempfile::tempdir().unwrap();
    let id = add(
        dir.path(),
        "https://bbb1.example.org/bigbluebutton/api",
        "first-s3cret",
        &["--tag", "big", "--enable"],
    );
    let show = ok(dir.path(), &["servers", "show", &id]);
    assert!(show.contains("https://bbb1.example.org/bigbluebutton/") && show.contains("enabled"));
    assert!(
        !show.contains("first-s3cret"),
        "secrets are not printed: {show}"
    );
    let view = json(&ok(dir.path(), &["servers", "show", &id, "--json"]));
    assert_eq!(view["tag"], "big");
    assert!(view.get("secret").is_none());

    let out = ok(
        dir.path(),
        &[
            "servers",
            "update",
            &id,
            "--url",
            "https://bbb2.example.org/bigbluebutton/",
            "--secret",
            "second-s3cret",
            "--load-multiplier",
            "3",
            "--checksum",
            "sha1",
        ],
    );
    assert!(
        out.contains("updated") && !out.contains("second-s3cret"),
        "{out}"
    );
    let view = json(&ok(
        dir.path(),
        &["servers", "update", &id, "--tag", "", "--json"],
    ));
    assert_eq!(view["url"], "https://bbb2.example.org/bigbluebutton/");
    assert_eq!(view["load_multiplier"], 3.0);
    assert_eq!(view["checksum"], "sha1");
    assert!(view["tag"].is_null(), "an empty tag clears it: {view}");
    let err = fails(dir.path(), &["servers", "update", &id]);
    assert!(err.contains("nothing to change"), "{err}");
    let err = fails(
        dir.path(),
        &["servers", "update", &id, "--load-multiplier", "0"],
    );
    assert!(err.contains("load multiplier"), "{err}");

    let out = ok(dir.path(), &["servers", "cordon", &id]);
    assert!(out.contains("disabled") && out.contains("drained"), "{out}");
    ok(dir.path(), &["servers", "enable", &id]);
    let out = ok(dir.path(), &["servers", "panic", &id]);
    assert!(
        out.contains("disabled") && out.contains("forgot 0 meeting(s)"),
        "{out}"
    );
    let report = json(&ok(dir.path(), &["servers", "panic", &id, "--json"]));
    assert_eq!(report["server"]["state"], "disabled");
    assert_eq!(report["forgotten"], serde_json::json!([]));

    let list = ok(dir.path(), &["servers", "list"]);
    let header = list.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("STATE") && header.ends_with("URL"),
        "{list}"
    );
    let status = ok(dir.path(), &["status"]);
    assert!(
        status.contains("bbb2.example.org") && status.contains("HOSTNAME"),
        "{status}"
    );
    assert!(status.contains("1 server(s), 0 meeting(s)"), "{status}");
    let status = json(&ok(dir.path(), &["status", "--json"]));
    assert_eq!(status["servers"][0]["id"], id.as_str());

    assert_eq!(
        json(&ok(dir.path(), &["meetings", "list", "--json"])),
        serde_json::json!([])
    );
    assert!(ok(dir.path(), &["meetings", "list", "--state", "running"]).contains("No meetings"));
    let err = fails(dir.path(), &["meetings", "show", "default", "nope"]);
    assert!(err.contains("no meeting `nope`"), "{err}");
    let err = fails(dir.path(), &["meetings", "end", "default", "nope"]);
    assert!(err.contains("no meeting `nope`"), "{err}");

    // The log: every change above, by `cli`, secrets redacted.
    let events = ok(dir.path(), &["events", "list", "--actor", "cli"]);
    for kind in [
        "ServerAdded",
        "ServerUpdated",
        "ServerCordoned",
        "ServerDisabled",
        "ServerEnabled",
    ] {
        assert!(events.contains(kind), "{kind} missing: {events}");
    }
    assert!(!events.contains("s3cret"), "secrets are redacted: {events}");
    let page = json(&ok(
        dir.path(),
        &["events", "list", "--type", "ServerAdded", "--json"],
    ));
    assert_eq!(page["events"].as_array().unwrap().len(), 1);
    assert_eq!(page["events"][0]["actor"], "cli");
    let page = json(&ok(
        dir.path(),
        &["events", "list", "--limit", "2", "--json"],
    ));
    assert_eq!(page["next_after"], 2);
    assert!(ok(dir.path(), &["events", "list", "--limit", "2"]).contains("--after 2"));
    let err = fails(dir.path(), &["events", "list", "--limit", "0"]);
    assert!(err.contains("limit"), "{err}");
    let future = json(&ok(
        dir.path(),
        &["events", "list", "--from", "2999-01-01T00:00:00Z", "--json"],
    ));
    assert_eq!(future["events"], serde_json::json!([]));
    let (ok_, _, err) = switchboard(dir.path(), &["events", "list", "--from", "yesterday"]);
    assert!(!ok_ && err.contains("RFC 3339"), "{err}");

    // History: before anything the pool was empty; now it has the server.
    let then = json(&ok(
        dir.path(),
        &["events", "at", "2000-01-01T00:00:00Z", "--json"],
    ));
    assert_eq!(then["servers"], serde_json::json!([]));
    let now = chrono::Utc::now().to_rfc3339();
    let at = json(&ok(dir.path(), &["events", "at", &now, "--json"]));
    assert_eq!(at["servers"][0]["id"], id.as_str());
    assert_eq!(at["servers"][0]["state"], "disabled");
    assert!(ok(dir.path(), &["events", "at", &now]).contains(&id));

    let err = fails(
        dir.path(),
        &["servers", "remove", "0192f0c4-7b1e-7cc0-8000-000000000001"],
    );
    assert!(err.contains("no server"), "{err}");
    assert!(ok(dir.path(), &["servers", "remove", &id]).contains("removed"));
    assert!(ok(dir.path(), &["servers", "list"]).contains("No servers"));

    let spec = json(&ok(dir.path(), &["openapi"]));
    assert!(spec["paths"]["/servers"].is_object());
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn servers_sync_follows_the_file_in_each_mode() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let a = add(
        dir.path(),
        "https://a.example.org/bigbluebutton/",
        "sa",
        &["--enable"],
    );
    let b = add(
        dir.path(),
        "https://b.example.org/bigbluebutton/",
        "sb",
        &["--enable"],
    );
    add(
        dir.path(),
        "https://c.example.org/bigbluebutton/",
        "sc",
        &[],
    );
    let first = write(
        files.path(),
        "first.yml",
        "servers:\n  a.example.org:\n    url: https://a.example.org/bigbluebutton/api\n    secret: sa2\n    load_multiplier: 2.0\n    tag: big\n  d.example.org:\n    secret: sd\n",
    );

    // A dry run prints the plan and changes nothing.
    let before = servers_json(dir.path());
    let start = position(dir.path());
    let plan = ok(
        dir.path(),
        &["servers", "sync", &first, "--mode", "force", "--dry-run"],
    );
    assert!(plan.contains("Dry run"), "{plan}");
    assert!(
        plan.contains("update") && plan.contains("secret, tag, load_multiplier"),
        "{plan}"
    );
    assert!(
        plan.contains("add") && plan.contains("https://d.example.org/bigbluebutton/"),
        "{plan}"
    );
    assert_eq!(plan.matches("remove").count(), 2, "{plan}");
    assert!(
        !plan.contains("sa2") && !plan.contains("sd"),
        "no secrets in the plan: {plan}"
    );
    assert_eq!(servers_json(dir.path()), before);
    assert_eq!(position(dir.path()), start, "a dry run records nothing");

    // keep: A is updated, D added (enabled by default), B and C stay.
    let out = ok(dir.path(), &["servers", "sync", &first, "--mode", "keep"]);
    assert!(out.contains("keep"), "{out}");
    let servers = servers_json(dir.path());
    assert_eq!(servers.len(), 4, "{servers:?}");
    let server_a = by_url(&servers, "https://a.example.org/bigbluebutton/").unwrap();
    assert_eq!(server_a["id"], a.as_str());
    assert_eq!(server_a["load_multiplier"], 2.0);
    assert_eq!(server_a["tag"], "big");
    let server_d = by_url(&servers, "https://d.example.org/bigbluebutton/").unwrap();
    assert_eq!(server_d["state"], "enabled");
    let again = ok(dir.path(), &["servers", "sync", &first, "--mode", "keep"]);
    assert!(
        again.contains("0 change(s)"),
        "a second sync changes nothing: {again}"
    );

    // cordon: B (in the file, enabled: false) is cordoned, and being empty
    // drains to disabled; C (not in the file, empty) is removed.
    let second = write(
        files.path(),
        "second.yml",
        &format!(
            "servers:\n  {a}:\n    url: https://a.example.org/bigbluebutton/api\n    secret: sa2\n    load_multiplier: 2.0\n    tag: big\n  d.example.org:\n    secret: sd\n  b.example.org:\n    secret: sb\n    enabled: false\n"
        ),
    );
    ok(dir.path(), &["servers", "sync", &second]);
    let servers = servers_json(dir.path());
    assert_eq!(servers.len(), 3, "{servers:?}");
    let server_b = by_url(&servers, "https://b.example.org/bigbluebutton/").unwrap();
    assert_eq!(server_b["id"], b.as_str());
    assert_eq!(server_b["state"], "disabled");
    assert!(by_url(&servers, "https://c.example.org/bigbluebutton/").is_none());

    // force: only A stays.
    let third = write(
        files.path(),
        "third.yml",
        "servers:\n  a.example.org:\n    url: https://a.example.org/bigbluebutton/api\n    secret: sa2\n    load_multiplier: 2.0\n    tag: big\n",
    );
    ok(dir.path(), &["servers", "sync", &third, "--mode", "force"]);
    let servers = servers_json(dir.path());
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0]["id"], a.as_str());

    let events = json(&ok(
        dir.path(),
        &["events", "list", "--type", "ServerRemoved", "--json"],
    ));
    let actors: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, ["cli", "cli", "cli"]);

    let bad = write(
        files.path(),
        "bad.yml",
        "servers:\n  x.example.org:\n    url: https://x/\n",
    );
    let err = fails(dir.path(), &["servers", "sync", &bad]);
    assert!(err.contains("has no secret"), "{err}");
    let err = fails(dir.path(), &["servers", "sync", "/nonexistent/servers.yml"]);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn export_and_sync_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    add(
        dir.path(),
        "https://a.example.org/bigbluebutton/",
        "123456",
        &[
            "--enable",
            "--tag",
            "big",
            "--load-multiplier",
            "2.5",
            "--checksum",
            "sha1",
        ],
    );
    let cordoned = add(
        dir.path(),
        "https://b.example.org/bigbluebutton/",
        "secret-b",
        &["--enable"],
    );
    ok(dir.path(), &["servers", "cordon", &cordoned]);
    add(
        dir.path(),
        "http://c.example.org/bigbluebutton/",
        "secret-c",
        &[],
    );

    let yaml = ok(dir.path(), &["servers", "export"]);
    assert!(yaml.contains("servers:"), "{yaml}");
    assert!(
        yaml.contains("url: https://a.example.org/bigbluebutton/api"),
        "Scalelite's API URLs: {yaml}"
    );
    assert!(
        yaml.contains("secret-b") && yaml.contains("'123456'"),
        "exports hold secrets: {yaml}"
    );
    let path = files.path().join("servers.yml");
    let path = path.to_str().unwrap();
    let (ok_, out, err) = switchboard(dir.path(), &["servers", "export", path]);
    assert!(
        ok_ && out.is_empty() && err.contains("keep it private"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(path).unwrap(), yaml);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "exports are private");
    }

    let before = servers_json(dir.path());
    let start = position(dir.path());
    let out = ok(dir.path(), &["servers", "sync", path, "--mode", "force"]);
    assert!(
        out.contains("0 change(s)") && out.contains("unchanged"),
        "{out}"
    );
    assert_eq!(
        position(dir.path()),
        start,
        "syncing an export changes nothing"
    );
    assert_eq!(servers_json(dir.path()), before);

    // Into a fresh instance: the same servers, with new ids.
    let other = tempfile::tempdir().unwrap();
    ok(other.path(), &["servers", "sync", path]);
    let copied = servers_json(other.path());
    assert_eq!(copied.len(), 3);
    for server in &before {
        let copy = by_url(&copied, server["url"].as_str().unwrap()).unwrap();
        for field in ["tag", "load_multiplier", "checksum"] {
            assert_eq!(copy[field], server[field], "{field}");
        }
        let enabled = server["state"] == "enabled";
        assert_eq!(copy["state"] == "enabled", enabled);
    }
    assert_eq!(
        ok(other.path(), &["servers", "export"])
            .matches("secret-b")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_cordons_then_evicts_servers_with_meetings() {
    let harness = Harness::start(Db::Sqlite, 2).await;
    harness.create("busy-room").await.assert_success();
    let busy = harness.sim_with("busy-room").unwrap();
    let idle = 1 - busy;
    let files = tempfile::tempdir().unwrap();
    let file = write(
        files.path(),
        "pool.yml",
        &format!(
            "servers:\n  idle:\n    url: {}\n    secret: {}\n",
            harness.sims[idle].url(),
            harness.sims[idle].secret()
        ),
    );
    let db = harness.database_url.clone();
    let busy_id = harness.servers[busy];

    let (ok_, out, err) = run_async(&["servers", "sync", &file, "--database", &db]).await;
    assert!(ok_, "{err}");
    assert!(
        out.contains("cordon") && out.contains("1 meeting(s) still run"),
        "{out}"
    );
    let record = harness.store().server(busy_id).await.unwrap().unwrap();
    assert_eq!(
        record.state.as_str(),
        "cordoned",
        "kept while its meeting runs"
    );
    assert_eq!(harness.sims[busy].meeting_count(), 1);

    let (ok_, out, err) = run_async(&[
        "servers",
        "sync",
        &file,
        "--mode",
        "force",
        "--database",
        &db,
    ])
    .await;
    assert!(ok_, "{err}");
    assert!(out.contains("ending its 1 meeting(s) first"), "{out}");
    assert!(
        harness.store().server(busy_id).await.unwrap().is_none(),
        "removed"
    );
    assert_eq!(
        harness.sims[busy].meeting_count(),
        0,
        "its meeting was ended"
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_mode_acts_through_the_admin_api() {
    let harness = Harness::start(Db::Sqlite, 1).await;
    let admin = &harness.state().admin;
    let creator = Principal::admin("test".into());
    let token = |name: &str, scope| {
        let new = NewToken {
            name: name.into(),
            scope,
            server: None,
        };
        let creator = creator.clone();
        async move { admin.create_token(new, &creator).await.unwrap().token }
    };
    let ops = token("ops", Scope::Admin).await;
    let viewer = token("viewer", Scope::Read).await;
    let url = format!("http://{}", harness.app.addr);
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap().to_owned();
    let remote = |token: &str, args: &[&str]| {
        let mut all: Vec<String> =
            vec!["--url".into(), url.clone(), "--token".into(), token.into()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all.extend(["--data-dir".to_owned(), data_dir.clone()]);
        async move {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            run_async(&refs).await
        }
    };

    let (ok_, out, err) = remote(&ops, &["servers", "list", "--json"]).await;
    assert!(ok_, "{err}");
    let rows = json(&out);
    assert_eq!(rows[0]["id"], harness.servers[0].to_string());

    let (ok_, out, err) = remote(
        &ops,
        &[
            "servers",
            "add",
            "https://bbb9.example.org/bigbluebutton/api",
            "s9",
            "--enable",
        ],
    )
    .await;
    assert!(ok_, "{err}");
    let id: switchboard_domain::ids::ServerId = out.trim().parse().expect("prints the id");
    let record = harness.store().server(id).await.unwrap().unwrap();
    assert_eq!(record.state.as_str(), "enabled");
    assert_eq!(
        record.settings.url,
        "https://bbb9.example.org/bigbluebutton/"
    );

    let (ok_, out, err) = remote(&ops, &["servers", "disable", &id.to_string()]).await;
    assert!(ok_ && out.contains("disabled"), "{err}");
    let record = harness.store().server(id).await.unwrap().unwrap();
    assert_eq!(record.state.as_str(), "disabled");
    let events = harness
        .store()
        .query_events(&EventFilter {
            actor: Some("ops".into()),
            ..EventFilter::default()
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.event.type_name()).collect();
    assert_eq!(
        kinds,
        ["ServerAdded", "ServerEnabled", "ServerDisabled"],
        "the token's name is the actor"
    );

    for args in [
        &["status", "--json"][..],
        &["tokens", "list"],
        &["meetings", "list", "--json"],
        &["events", "list", "--actor", "ops"],
        &["servers", "show", &id.to_string()],
    ] {
        let (ok_, out, err) = remote(&ops, args).await;
        assert!(ok_, "{args:?}: {err}");
        assert!(!out.is_empty(), "{args:?}");
    }
    let (_, out, _) = remote(&ops, &["events", "list", "--actor", "ops", "--json"]).await;
    assert_eq!(json(&out)["events"].as_array().unwrap().len(), 3);

    // A sync over the API (secrets are sent; unchanged ones record nothing).
    let files = tempfile::tempdir().unwrap();
    let file = write(
        files.path(),
        "pool.yml",
        "servers:\n  bbb10.example.org:\n    secret: s10\n    enabled: false\n",
    );
    let (ok_, out, err) = remote(&ops, &["servers", "sync", &file, "--mode", "keep"]).await;
    assert!(ok_, "{err}");
    assert!(
        out.contains("https://bbb10.example.org/bigbluebutton/"),
        "{out}"
    );
    assert_eq!(harness.store().servers().await.unwrap().len(), 3);
    let (ok_, _, err) = remote(&ops, &["servers", "export"]).await;
    assert!(!ok_ && err.contains("never hands out"), "{err}");

    // A read token reads, but may not change anything.
    let (ok_, _, err) = remote(&viewer, &["servers", "list"]).await;
    assert!(ok_, "{err}");
    let (ok_, _, err) = remote(&viewer, &["servers", "enable", &id.to_string()]).await;
    assert!(!ok_, "a read token cannot enable");
    assert!(
        err.starts_with("error: ") && err.contains("read scope") && err.contains("403"),
        "{err}"
    );

    // An unknown token is refused with a hint.
    let (ok_, _, err) = remote("sbt_wrong", &["servers", "list"]).await;
    assert!(!ok_);
    assert!(
        err.contains("unknown or revoked") && err.contains("401"),
        "{err}"
    );
    let (ok_, _, err) = run_async(&["--url", &url, "servers", "list"]).await;
    assert!(!ok_ && err.contains("--url needs a token"), "{err}");
    let (ok_, _, err) = remote(&ops, &["migrate"]).await;
    assert!(!ok_ && err.contains("drop --url"), "{err}");

    assert!(
        std::fs::read_dir(data.path()).unwrap().next().is_none(),
        "remote commands open no local database"
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_polls_servers_and_serves_health_only() {
    let dir = tempfile::tempdir().unwrap();
    let sim = bbb_simulator::Simulator::start(bbb_simulator::SimulatorConfig::default())
        .await
        .unwrap();
    let (ok, id, err) = switchboard(
        dir.path(),
        &["servers", "add", &sim.url(), sim.secret(), "--enable"],
    );
    assert!(ok, "{err}");
    let id = id.trim().to_owned();
    sim.shutdown().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["worker", "--listen", &listen, "--data-dir"])
        .arg(dir.path())
        .env("SWITCHBOARD_HEALTH_INTERVAL_SECS", "0.2")
        .env_remove("SWITCHBOARD_DATABASE")
        .env_remove("SWITCHBOARD_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = crate::support::client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, json, _) = switchboard(dir.path(), &["servers", "list", "--json"]);
        let rows: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        if rows[0]["online"] == false {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never marked the dead server offline"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let health = client
        .get(format!("http://{listen}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let api = client
        .get(format!("http://{listen}/bigbluebutton/api"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 404, "a worker serves no BBB API");
    child.kill().await.unwrap();
    let (_, events, _) = switchboard(
        dir.path(),
        &[
            "events",
            "list",
            "--stream",
            &format!("server:{id}"),
            "--json",
        ],
    );
    assert!(events.contains("worker:health"), "{events}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _banner) = start_demo(dir.path()).await;
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .expect("serve stops within 10 s of SIGTERM")
        .unwrap();
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
}

#[test]
fn metrics_urls_are_set_shown_redacted_and_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let id = add(
        dir.path(),
        "https://bbb1.example.org/bigbluebutton/",
        "s3cret",
        &[
            "--metrics-url",
            "https://prom:hunter2@bbb1.example.org:9100/metrics",
        ],
    );
    let show = ok(dir.path(), &["servers", "show", &id]);
    assert!(
        show.contains("https://prom:***@bbb1.example.org:9100/metrics"),
        "{show}"
    );
    assert!(show.contains("not_configured"), "not polled yet: {show}");
    assert!(!show.contains("hunter2"), "{show}");
    let status = ok(dir.path(), &["status"]);
    assert!(
        status.contains("CPU") && status.contains("MEMORY") && status.contains("METRICS"),
        "{status}"
    );
    let status = json(&ok(dir.path(), &["status", "--json"]));
    assert_eq!(status["servers"][0]["metrics_state"], "not_configured");
    let events = ok(dir.path(), &["events", "list", "--json"]);
    assert!(!events.contains("hunter2"), "{events}");

    let err = fails(
        dir.path(),
        &["servers", "update", &id, "--metrics-url", "ftp://x"],
    );
    assert!(err.contains("invalid metrics URL"), "{err}");
    let view = json(&ok(
        dir.path(),
        &["servers", "update", &id, "--metrics-url", "", "--json"],
    ));
    assert!(view["metrics_url"].is_null(), "{view}");
}

/// Issue 14.2: cordoning every server of an idle pool (each is disabled at
/// once, being drained), one after another through the CLI while `serve`
/// runs, leaves no server for a new meeting: the create fails and nothing is
/// created anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_server_cordoned_through_the_cli_a_create_fails_and_creates_nothing() {
    for db in crate::support::BOTH {
        let harness = Harness::start(db, 3).await;
        for id in &harness.servers {
            let id = id.to_string();
            let (ok, _, err) = run_async(&[
                "servers",
                "cordon",
                &id,
                "--database",
                &harness.database_url,
            ])
            .await;
            assert!(ok, "{db:?}: cordon {id}: {err}");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        let reply = harness.create("after-cordon").await;
        reply.assert_failed("serverUnavailable");
        assert_eq!(harness.meetings_on_sims(), 0, "{db:?}: nothing created");
        harness.stop().await;
    }
}

/// Issue 14.2 through the admin API of the instance that serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_server_cordoned_through_the_admin_api_a_create_fails() {
    for db in crate::support::BOTH {
        let harness = Harness::start(db, 3).await;
        let principal = Principal::admin("ops".into());
        for id in &harness.servers {
            let view = harness
                .state()
                .admin
                .set_state(
                    &id.to_string(),
                    switchboard_domain::server::ServerCommand::Cordon,
                    &principal,
                )
                .await
                .unwrap();
            assert_eq!(
                view.state, "disabled",
                "{db:?}: an idle cordoned server is drained"
            );
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        harness
            .create("after-cordon")
            .await
            .assert_failed("serverUnavailable");
        assert_eq!(harness.meetings_on_sims(), 0, "{db:?}: nothing created");
        harness.stop().await;
    }
}

/// Issue 15.A4: `serve` refuses to start with an empty or short secret in
/// its file, saying which one to fix.
#[test]
fn serve_refuses_an_empty_or_short_secret() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("switchboard.toml");
    for text in ["secrets = [\"\"]\n", "secret = \"tiny\"\n"] {
        std::fs::write(&config, text).unwrap();
        let (ok, _, err) = switchboard(
            dir.path(),
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--config",
                config.to_str().unwrap(),
            ],
        );
        assert!(!ok, "{text}: refused");
        assert!(err.contains("at least 12 characters"), "{text}: {err}");
    }
}

/// Issue 15.A7: a secret generated by a `serve` whose output is not a
/// terminal (a journal) is not printed there; `switchboard secret` prints it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_secret_stays_out_of_the_journal_and_switchboard_secret_prints_it() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-workers",
            "--data-dir",
        ])
        .arg(dir.path())
        .env_remove("SWITCHBOARD_SECRET")
        .env_remove("SWITCHBOARD_DATABASE")
        .env_remove("SWITCHBOARD_CONFIG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start switchboard");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains("serving the BBB API");
            printed.push(line);
            if done {
                break;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), read)
        .await
        .expect("started within 30 s");
    child.kill().await.unwrap();
    let mut logged = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut logged)
        .await
        .unwrap();
    let printed = printed.join("\n");
    assert!(printed.contains("switchboard secret"), "{printed}");
    let (ok, secret, err) = switchboard(dir.path(), &["secret"]);
    assert!(ok, "{err}");
    let secret = secret.trim();
    assert!(secret.len() >= 12, "{secret}");
    assert!(
        !printed.contains(secret) && !logged.contains(secret),
        "the secret is neither printed nor logged: {printed}\n{logged}"
    );
}

#[test]
fn tenants_stats_token_prints_a_token_only_once_and_keeps_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = switchboard(dir.path(), &["migrate"]);
    assert!(ok, "{err}");
    let (ok, _, err) = switchboard(
        dir.path(),
        &[
            "tenants",
            "create",
            "school",
            "--secret",
            "school-secret-0123",
        ],
    );
    assert!(ok, "{err}");
    let (ok, first, err) = switchboard(dir.path(), &["tenants", "stats-token", "school"]);
    assert!(ok, "{err}");
    let first = first.trim().to_owned();
    assert!(first.starts_with("sbs_") && first.len() > 20, "{first}");
    let (_, second, _) = switchboard(dir.path(), &["tenants", "stats-token", "school"]);
    assert_ne!(first, second.trim());
    let (_, shown, _) = switchboard(dir.path(), &["tenants", "show", "school", "--json"]);
    assert!(!shown.contains(&first), "the token is never shown again");
    let (ok, _, err) = switchboard(dir.path(), &["tenants", "stats-token", "nowhere"]);
    assert!(!ok);
    assert!(err.contains("nowhere"), "{err}");
}

#[test]
fn replay_check_and_events_archive_work_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, id, err) = switchboard(
        dir.path(),
        &[
            "servers",
            "add",
            "https://bbb1.example.org/bigbluebutton/",
            "s3cret",
        ],
    );
    assert!(ok, "{err}");
    let id = id.trim().to_owned();
    let (ok, _, err) = switchboard(dir.path(), &["servers", "enable", &id]);
    assert!(ok, "{err}");
    let (ok, out, err) = switchboard(dir.path(), &["replay", "--check"]);
    assert!(ok, "{err}");
    assert!(out.contains("agree with the log"), "{out}");

    // Everything up to now goes to a file; the server stays as it was.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let before = chrono::Utc::now().to_rfc3339();
    let file = dir.path().join("log-1.jsonl.gz");
    let file_arg = file.to_str().unwrap();
    let (ok, out, err) = switchboard(
        dir.path(),
        &["events", "archive", "--before", &before, "--to", file_arg],
    );
    assert!(ok, "{err}");
    assert!(out.contains("archived 2 events"), "{out}");
    let (ok, out, err) = switchboard(dir.path(), &["events", "verify-archive", file_arg]);
    assert!(ok, "{err}");
    assert!(out.contains("2 events"), "{out}");
    let (ok, _, err) = switchboard(dir.path(), &["servers", "cordon", &id]);
    assert!(ok, "a command on an archived stream: {err}");
    let (_, json, _) = switchboard(dir.path(), &["servers", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        rows[0]["state"], "disabled",
        "cordoned without meetings: drained at once"
    );
    let (ok, out, err) = switchboard(dir.path(), &["replay", "--check"]);
    assert!(ok, "{err}");
    assert!(out.contains("agree with the log"), "{out}");

    // An archive never overwrites a file; a changed file fails its check.
    let (ok, _, err) = switchboard(
        dir.path(),
        &[
            "events",
            "archive",
            "--before",
            "2999-01-01",
            "--to",
            file_arg,
        ],
    );
    assert!(!ok);
    assert!(err.contains("exists"), "{err}");
    std::fs::write(&file, b"not an archive").unwrap();
    let (ok, _, err) = switchboard(dir.path(), &["events", "verify-archive", file_arg]);
    assert!(!ok);
    assert!(err.contains("log-1.jsonl.gz"), "{err}");
}
