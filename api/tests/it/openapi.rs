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

/// The schemas a request body can reach, by name.
fn request_schemas(spec: &serde_json::Value) -> Vec<String> {
    fn refs(value: &serde_json::Value, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(target) = map.get("$ref").and_then(|r| r.as_str()) {
                    found.push(target.rsplit('/').next().unwrap_or_default().to_owned());
                }
                map.values().for_each(|v| refs(v, found));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
            _ => {}
        }
    }
    let mut todo = Vec::new();
    for operations in spec["paths"].as_object().unwrap().values() {
        for operation in operations.as_object().unwrap().values() {
            refs(&operation["requestBody"], &mut todo);
        }
    }
    let mut seen: Vec<String> = Vec::new();
    while let Some(name) = todo.pop() {
        if seen.contains(&name) {
            continue;
        }
        refs(&spec["components"]["schemas"][&name], &mut todo);
        seen.push(name);
    }
    seen
}

/// The admin API reads `null` in an optional field as "left out", so the spec
/// must say so (`nullable`), or a client generated from it (and schemathesis)
/// takes an accepted request for a schema violation.
#[test]
fn optional_request_fields_are_documented_as_nullable() {
    let spec: serde_json::Value =
        serde_json::from_str(&switchboard_api::admin::spec_json()).unwrap();
    let mut undocumented = Vec::new();
    for name in request_schemas(&spec) {
        let schema = &spec["components"]["schemas"][&name];
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            let optional = !required.contains(&field.as_str()) && property.get("default").is_none();
            if optional && property["nullable"] != true {
                undocumented.push(format!("{name}.{field}"));
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "optional request fields accept null but the spec does not say so \
         (add #[oai(nullable)]): {undocumented:?}"
    );
}
