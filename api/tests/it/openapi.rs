//! The committed admin API spec in `openapi/` must match the code.

use std::path::PathBuf;

fn committed_spec() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/switchboard-admin.json")
}

#[test]
fn committed_spec_matches_the_code() {
    let current = format!("{}\n", switchboard_api::admin::spec_json());
    let path = committed_spec();
    if std::env::var_os("SWITCHBOARD_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &current).expect("write openapi/switchboard-admin.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == current,
        "openapi/switchboard-admin.json differs from the admin API in the code.\n\
         Regenerate it: SWITCHBOARD_UPDATE_OPENAPI=1 cargo test -p switchboard-api --test it openapi \
         (or `switchboard openapi > openapi/switchboard-admin.json`) and commit the result."
    );
}

#[test]
fn spec_describes_every_admin_route_with_auth() {
    let spec: serde_json::Value =
        serde_json::from_str(&switchboard_api::admin::spec_json()).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    for path in [
        "/servers",
        "/servers/{id}",
        "/servers/{id}/panic",
        "/meetings",
        "/events",
        "/history",
        "/status",
        "/tokens",
    ] {
        assert!(paths.contains_key(path), "missing {path}");
    }
    assert_eq!(spec["servers"][0]["url"], "/api/v1");
    assert!(
        spec["components"]["securitySchemes"]
            .as_object()
            .is_some_and(|s| !s.is_empty())
    );
}
