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
