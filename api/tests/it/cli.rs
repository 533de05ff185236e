//! The `switchboard` binary as an operator runs it.

use std::process::Command;

fn switchboard(data_dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("SWITCHBOARD_SECRET")
        .env_remove("SWITCHBOARD_DATABASE")
        .env_remove("SWITCHBOARD_CONFIG")
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
    for (command, state) in [
        ("enable", "enabled"),
        ("cordon", "cordoned"),
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
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
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
    (child, banner)
}

fn curl_url(banner: &[String], needle: &str) -> String {
    let line = banner
        .iter()
        .find(|l| l.contains("curl") && l.contains(needle))
        .unwrap();
    line.split('\'').nth(1).unwrap().to_owned()
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
