//! Recording retention (issue 19.2): rules from the tenant or the global
//! default expire exactly the recordings ended longer ago than their days,
//! never protected or held ones, as `RecordingExpired` events naming the
//! rule, with their files; the CLI sets a tenant's days and lists (or
//! expires) what is due.

use crate::support::*;
use std::collections::BTreeMap;
use switchboard_app::admin::Principal;
use switchboard_app::admin::tenants::{NewTenant, TenantUpdate};
use switchboard_app::ports::prelude::*;
use switchboard_app::records::EventFilter;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::{MeetingId, TenantId};
use switchboard_domain::recording::{RecordingCommand, RecordingDetails, RecordingFormat};
use switchboard_store::Store;
use switchboard_store::test_support::StoreCommands as _;

const DAY_MS: i64 = 86_400_000;

/// Records an imported recording of `tenant` that ended `days_ago`, with
/// `meta` metadata, and puts a file in its tree; returns its record id.
async fn recording(
    store: &Store,
    root: &std::path::Path,
    tenant: &str,
    meeting: &str,
    days_ago: i64,
    meta: &[(&str, &str)],
) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let end = now - days_ago * DAY_MS;
    let record_id = MeetingId::parse(meeting)
        .unwrap()
        .internal_id(end - 3_600_000);
    store
        .execute_recording(
            &record_id,
            &RecordingCommand::Import {
                details: RecordingDetails {
                    tenant: TenantId(tenant.into()),
                    meeting_id: meeting.into(),
                    internal_meeting_id: record_id.clone(),
                    name: meeting.into(),
                    is_breakout: false,
                    published: true,
                    start_time_ms: end - 3_600_000,
                    end_time_ms: end,
                    participants: 2,
                    metadata: meta
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<BTreeMap<_, _>>(),
                    breakout: None,
                    breakout_rooms: Vec::new(),
                },
                formats: vec![RecordingFormat {
                    format: "presentation".into(),
                    url: String::new(),
                    processing_time_ms: 1,
                    length_ms: 3_600_000,
                    bytes: 5_000,
                    images: vec![],
                }],
            },
            &EventMetadata::actor("test"),
        )
        .await
        .unwrap();
    let dir = root.join(format!("published/presentation/{record_id}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("data.bin"), b"x").unwrap();
    record_id
}

#[tokio::test]
async fn retention_expires_exactly_what_its_rules_say() {
    for db in BOTH {
        let harness = Harness::with_tags(db, &[None], |settings| {
            settings.recordings.retention_days = Some(30);
        })
        .await;
        let admin = harness.state().admin.service().clone();
        let ops = Principal::admin("ops".into());
        admin
            .create_tenant(
                NewTenant {
                    name: "school".into(),
                    secret: "school-secret-0123".into(),
                    update: TenantUpdate::default(),
                },
                &ops,
            )
            .await
            .unwrap();
        admin
            .update_tenant(
                "school",
                TenantUpdate {
                    retention_days: Some(Some(7)),
                    ..TenantUpdate::default()
                },
                &ops,
            )
            .await
            .unwrap();
        admin
            .create_tenant(
                NewTenant {
                    name: "archive".into(),
                    secret: "archive-secret-0123".into(),
                    update: TenantUpdate::default(),
                },
                &ops,
            )
            .await
            .unwrap();
        let store = harness.store();
        let root = harness.state().recordings.settings.dir.clone();
        let old_default = recording(store, &root, "default", "lecture-old", 31, &[]).await;
        let young_default = recording(store, &root, "default", "lecture-new", 29, &[]).await;
        let held = recording(store, &root, "default", "held", 90, &[("keep", "true")]).await;
        let protected = recording(store, &root, "default", "protected", 90, &[]).await;
        store
            .execute_recording(
                &protected,
                &RecordingCommand::SetProtected(true),
                &EventMetadata::actor("test"),
            )
            .await
            .unwrap();
        let old_school = recording(store, &root, "school", "class-old", 8, &[]).await;
        let young_school = recording(store, &root, "school", "class-new", 6, &[]).await;
        // No own days: the global 30 apply.
        let old_archive = recording(store, &root, "archive", "talk", 45, &[]).await;

        let service = &harness.state().recordings;
        let now = chrono::Utc::now().timestamp_millis();
        let mut due: Vec<(String, String, u32)> = service
            .expire(now, true)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.record_id, e.rule.source, e.rule.days))
            .collect();
        due.sort();
        let mut expected = vec![
            (old_default.clone(), "global".to_owned(), 30),
            (old_school.clone(), "tenant".to_owned(), 7),
            (old_archive.clone(), "global".to_owned(), 30),
        ];
        expected.sort();
        assert_eq!(due, expected, "{db:?}: the dry run");
        assert!(
            root.join(format!("published/presentation/{old_default}"))
                .exists(),
            "{db:?}: a dry run removes nothing"
        );
        let expired = service.expire(now, false).await.unwrap();
        assert_eq!(expired.len(), 3, "{db:?}");
        assert!(
            service.expire(now, false).await.unwrap().is_empty(),
            "{db:?}: once"
        );
        for id in [&old_default, &old_school, &old_archive] {
            let row = store.recording(id).await.unwrap().unwrap();
            assert_eq!(row.state, "deleted", "{db:?} {id}");
            assert!(!root.join(format!("published/presentation/{id}")).exists());
        }
        for id in [&young_default, &held, &protected, &young_school] {
            let row = store.recording(id).await.unwrap().unwrap();
            assert_eq!(row.state, "published", "{db:?} {id}");
            assert!(root.join(format!("published/presentation/{id}")).exists());
        }
        let events = admin
            .events(EventFilter {
                event_type: Some("RecordingExpired".into()),
                ..EventFilter::default()
            })
            .await
            .unwrap()
            .events;
        assert_eq!(events.len(), 3, "{db:?}");
        let school = events
            .iter()
            .find(|e| e.stream == format!("recording:{old_school}"))
            .unwrap();
        assert_eq!(school.actor, "worker:retention");
        assert_eq!(school.payload["rule"]["source"], "tenant");
        assert_eq!(school.payload["rule"]["days"], 7);
        // getRecordings no longer lists them.
        let listed = harness
            .client
            .get(harness.url("getRecordings", "meetingID=lecture-old,lecture-new"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !listed.contains(&old_default) && listed.contains(&young_default),
            "{listed}"
        );
        // The projections a replay rebuilds agree.
        let check = store
            .rebuild(switchboard_store::RebuildMode::Check, &mut |_| {})
            .await
            .unwrap();
        assert!(
            check.differences.is_empty(),
            "{db:?}: replay --check: {:?}",
            check.differences
        );
    }
}

#[test]
fn the_cli_sets_a_tenants_retention_and_lists_what_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("SWITCHBOARD_SECRET")
            .env_remove("SWITCHBOARD_DATABASE")
            .env_remove("SWITCHBOARD_CONFIG")
            .env_remove("SWITCHBOARD_URL")
            .env_remove("SWITCHBOARD_TOKEN")
            .env("SWITCHBOARD_RECORDINGS_RETENTION_DAYS", "30")
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, _, err) = run(&[
        "tenants",
        "create",
        "school",
        "--secret",
        "school-secret-0123",
    ]);
    assert!(ok, "{err}");
    let (ok, shown, err) = run(&["tenants", "retention", "school", "--days", "7"]);
    assert!(ok, "{err}");
    assert!(shown.contains("retention:       7 days"), "{shown}");
    let (ok, _, err) = run(&["tenants", "retention", "school", "--days", "0"]);
    assert!(!ok && err.contains("at least one day"), "{err}");
    let (ok, _, err) = run(&["tenants", "retention", "school", "--days", "soon"]);
    assert!(!ok && err.contains("--days"), "{err}");
    let (_, json, _) = run(&["tenants", "show", "school", "--json"]);
    assert!(json.contains("\"retention_days\": 7"), "{json}");
    let (ok, listed, err) = run(&["recordings", "expire", "--dry-run"]);
    assert!(ok, "{err}");
    assert!(listed.contains("would expire 0 recordings"), "{listed}");
    let (ok, shown, err) = run(&["tenants", "retention", "school", "--days", "none"]);
    assert!(ok, "{err}");
    assert!(
        shown.contains("retention:       (global default)"),
        "{shown}"
    );
}

#[tokio::test]
async fn the_admin_api_sets_and_clears_a_tenants_retention() {
    use serde_json::json;
    let harness = Harness::start(Db::Sqlite, 1).await;
    let admin = crate::admin::admin(&harness).await;
    let (status, created) = admin
        .post(
            "/tenants",
            json!({"name": "school", "secret": "school-secret-0123"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(
        created.get("retention_days").is_none(),
        "absent, never null (the spec says integer): {created}"
    );
    let (status, set) = admin
        .patch("/tenants/school", json!({"retention": {"days": 30}}))
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["retention_days"], 30);
    let (status, refused) = admin
        .patch("/tenants/school", json!({"retention": {"days": 0}}))
        .await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("at least one day")
    );
    let (status, cleared) = admin
        .patch("/tenants/school", json!({"retention": {}}))
        .await;
    assert_eq!(status, 200, "{cleared}");
    assert!(cleared.get("retention_days").is_none(), "{cleared}");
    let (_, listed) = admin.get("/tenants").await;
    assert!(listed[0].get("retention_days").is_none(), "{listed}");
}
