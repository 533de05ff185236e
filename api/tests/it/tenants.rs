//! Multi-tenancy, rule by rule, against simulated servers on SQLite and
//! PostgreSQL: recognition by path and host, secrets, isolation, policy,
//! limits, server pools, and the admin API and CLI.

use crate::support::*;
use std::collections::HashMap;
use switchboard_api::admin::tenants::{
    LimitsView, NewTenant, PolicyRule, PolicyView, RuleAction, TenantUpdate,
};
use switchboard_app::admin::Principal;
#[allow(unused_imports)]
use switchboard_app::ports::prelude::*;
use switchboard_domain::bbb::checksum::ChecksumAlgorithm;
#[allow(unused_imports)]
use switchboard_store::test_support::StoreCommands as _;

const T1_SECRET: &str = "tenant-one-secret";
const T2_SECRET: &str = "tenant-two-secret";

fn operator() -> Principal {
    Principal::admin("tenant-test".into())
}

pub(crate) async fn add_tenant(harness: &Harness, name: &str, secret: &str) {
    harness
        .state()
        .admin
        .create_tenant(
            NewTenant {
                name: name.into(),
                secret: secret.into(),
                required_tags: None,
                limits: None,
                policy: None,
            },
            &operator(),
        )
        .await
        .unwrap();
}

async fn update(harness: &Harness, name: &str, update: TenantUpdate) {
    harness
        .state()
        .admin
        .update_tenant(name, update, &operator())
        .await
        .unwrap();
}

/// A call of tenant `name` through its path prefix, signed with `secret`.
pub(crate) fn tenant_url(
    harness: &Harness,
    name: &str,
    secret: &str,
    call: &str,
    query: &str,
) -> String {
    let base = format!("http://{}/t/{name}/bigbluebutton/api/", harness.app.addr);
    signed_url(&base, call, query, secret, ChecksumAlgorithm::Sha1)
}

pub(crate) async fn tenant_get(
    harness: &Harness,
    name: &str,
    secret: &str,
    call: &str,
    query: &str,
) -> Reply {
    harness
        .get_raw(&tenant_url(harness, name, secret, call, query))
        .await
}

fn meeting_ids(reply: &Reply) -> Vec<String> {
    let mut ids: Vec<String> = reply
        .body
        .split("<meetingID>")
        .skip(1)
        .filter_map(|rest| rest.split("</meetingID>").next())
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_recognised_by_path_or_host_and_only_their_secrets_sign() {
    for db in BOTH {
        let harness = Harness::start(db, 2).await;
        // Without tenants, an unknown tenant path is refused, the global secret works.
        tenant_get(&harness, "t1", SECRET, "getMeetings", "")
            .await
            .assert_failed("checksumError");
        harness.get("getMeetings", "").await.assert_success();
        add_tenant(&harness, "t1", T1_SECRET).await;
        add_tenant(&harness, "t2", T2_SECRET).await;
        tenant_get(&harness, "t1", T1_SECRET, "getMeetings", "")
            .await
            .assert_success();
        for (name, secret) in [("t1", T2_SECRET), ("t1", SECRET), ("nobody", T1_SECRET)] {
            tenant_get(&harness, name, secret, "getMeetings", "")
                .await
                .assert_failed("checksumError");
        }
        // By host: the first label names the tenant.
        let by_host = |secret: &str| {
            let url = signed_url(
                &harness.app.api_url(),
                "create",
                "name=Host&meetingID=by-host",
                secret,
                ChecksumAlgorithm::Sha256,
            );
            let client = harness.client.clone();
            async move {
                let response = client
                    .get(url)
                    .header("host", "t2.lb.example.org")
                    .send()
                    .await
                    .unwrap();
                Reply::read(response).await
            }
        };
        by_host(SECRET).await.assert_failed("checksumError");
        by_host(T2_SECRET).await.assert_success();
        let record = harness
            .store()
            .meeting(
                &switchboard_domain::ids::TenantId("t2".into()),
                &switchboard_domain::ids::MeetingId::parse("by-host").unwrap(),
            )
            .await
            .unwrap();
        assert!(record.is_some_and(|r| r.running), "{db:?}: recorded for t2");
        // The global secret still serves the default tenant.
        harness.create("default-room").await.assert_success();
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_and_control_only_their_own_meetings() {
    for db in BOTH {
        let harness = Harness::start(db, 2).await;
        add_tenant(&harness, "t1", T1_SECRET).await;
        add_tenant(&harness, "t2", T2_SECRET).await;
        let one = tenant_get(
            &harness,
            "t1",
            T1_SECRET,
            "create",
            "name=One&meetingID=room",
        )
        .await;
        one.assert_success();
        let two = tenant_get(
            &harness,
            "t2",
            T2_SECRET,
            "create",
            "name=Two&meetingID=room",
        )
        .await;
        two.assert_success();
        assert_ne!(
            one.field("internalMeetingID"),
            two.field("internalMeetingID"),
            "{db:?}: two meetings"
        );
        let holders = harness.sim_with_all("room");
        assert_eq!(
            holders.len(),
            2,
            "{db:?}: never on the same server: {holders:?}"
        );
        tenant_get(
            &harness,
            "t1",
            T1_SECRET,
            "create",
            "name=Own&meetingID=t1-only",
        )
        .await
        .assert_success();

        // getMeetings: each its own.
        let listed = meeting_ids(&tenant_get(&harness, "t1", T1_SECRET, "getMeetings", "").await);
        assert_eq!(
            listed,
            vec!["room".to_owned(), "t1-only".to_owned()],
            "{db:?}"
        );
        let listed = meeting_ids(&tenant_get(&harness, "t2", T2_SECRET, "getMeetings", "").await);
        assert_eq!(listed, vec!["room".to_owned()]);
        let default = harness.get("getMeetings", "").await;
        assert_eq!(default.message_key(), "noMeetings", "{}", default.body);

        // Joins go to each tenant's own copy; others' meetings are not found.
        let join = |name: &'static str, secret: &'static str, id: &'static str| {
            let harness = &harness;
            async move {
                tenant_get(
                    harness,
                    name,
                    secret,
                    "join",
                    &format!("meetingID={id}&fullName=X&role=VIEWER"),
                )
                .await
            }
        };
        let to_one = join("t1", T1_SECRET, "room").await;
        let to_two = join("t2", T2_SECRET, "room").await;
        assert_eq!((to_one.status, to_two.status), (302, 302));
        assert_ne!(
            to_one
                .location
                .as_deref()
                .unwrap()
                .split("/bigbluebutton")
                .next(),
            to_two
                .location
                .as_deref()
                .unwrap()
                .split("/bigbluebutton")
                .next(),
            "each to its own server"
        );
        join("t2", T2_SECRET, "t1-only")
            .await
            .assert_failed("notFound");
        harness
            .get("getMeetingInfo", "meetingID=t1-only")
            .await
            .assert_failed("notFound");
        let running = tenant_get(
            &harness,
            "t2",
            T2_SECRET,
            "isMeetingRunning",
            "meetingID=t1-only",
        )
        .await;
        assert_eq!(running.field("running").as_deref(), Some("false"));
        tenant_get(&harness, "t2", T2_SECRET, "end", "meetingID=t1-only")
            .await
            .assert_failed("notFound");
        // t2 ends its "room"; t1's goes on.
        tenant_get(&harness, "t2", T2_SECRET, "end", "meetingID=room")
            .await
            .assert_success();
        assert_eq!(harness.sim_with_all("room").len(), 1);
        tenant_get(
            &harness,
            "t1",
            T1_SECRET,
            "getMeetingInfo",
            "meetingID=room",
        )
        .await
        .assert_success();
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_policy_sets_overrides_blocks_caps_and_appends() {
    for db in BOTH {
        let harness = Harness::start(db, 1).await;
        add_tenant(&harness, "t1", T1_SECRET).await;
        let rule = |action, param: &str, value: Option<&str>| PolicyRule {
            action,
            param: param.into(),
            value: value.map(str::to_owned),
        };
        update(
            &harness,
            "t1",
            TenantUpdate {
                policy: Some(PolicyView {
                    create: vec![
                        rule(RuleAction::Default, "welcome", Some("Hello from t1")),
                        rule(RuleAction::Override, "record", Some("false")),
                        rule(RuleAction::Block, "logoutURL", None),
                        rule(RuleAction::Max, "maxParticipants", Some("10")),
                        rule(RuleAction::Append, "disabledFeatures", Some("chat")),
                    ],
                    join: vec![rule(
                        RuleAction::Override,
                        "userdata-bbb_auto_join_audio",
                        Some("false"),
                    )],
                    default_presentation: Some("https://cdn.example.org/welcome.pdf".into()),
                    logo: Some("https://cdn.example.org/logo.png".into()),
                }),
                ..TenantUpdate::default()
            },
        )
        .await;
        tenant_get(
        &harness,
        "t1",
        T1_SECRET,
        "create",
        "name=P&meetingID=policy&record=true&logoutURL=https%3A%2F%2Fx.org&maxParticipants=500&disabledFeatures=polls",
    )
    .await
    .assert_success();
        let params: HashMap<String, String> = harness.sims[0]
            .create_params("policy")
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(
            params.get("welcome").map(String::as_str),
            Some("Hello from t1")
        );
        assert_eq!(params.get("record").map(String::as_str), Some("false"));
        assert_eq!(params.get("logoutURL"), None);
        assert_eq!(
            params.get("maxParticipants").map(String::as_str),
            Some("10")
        );
        assert_eq!(
            params.get("disabledFeatures").map(String::as_str),
            Some("polls,chat")
        );
        assert_eq!(
            params.get("preUploadedPresentation").map(String::as_str),
            Some("https://cdn.example.org/welcome.pdf")
        );
        assert_eq!(
            params.get("logo").map(String::as_str),
            Some("https://cdn.example.org/logo.png")
        );
        // The default tenant's creates are untouched.
        harness
            .get("create", "name=D&meetingID=plain&record=true")
            .await
            .assert_success();
        let plain: HashMap<String, String> = harness.sims[0]
            .create_params("plain")
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(plain.get("record").map(String::as_str), Some("true"));
        assert_eq!(plain.get("welcome"), None);
        // Join policy, followed to the server.
        let join = tenant_get(
            &harness,
            "t1",
            T1_SECRET,
            "join",
            "meetingID=policy&fullName=Ann&role=MODERATOR&userdata-bbb_auto_join_audio=true",
        )
        .await;
        assert_eq!(join.status, 302);
        assert_eq!(
            harness
                .get_raw(join.location.as_deref().unwrap())
                .await
                .status,
            302
        );
        let joined: HashMap<String, String> = harness.sims[0]
            .last_join_params("policy")
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(
            joined
                .get("userdata-bbb_auto_join_audio")
                .map(String::as_str),
            Some("false")
        );
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_limits_refuse_meetings_and_attendees_over_them() {
    for db in BOTH {
        let harness = Harness::start(db, 2).await;
        add_tenant(&harness, "t1", T1_SECRET).await;
        update(
            &harness,
            "t1",
            TenantUpdate {
                limits: Some(LimitsView {
                    max_meetings: Some(2),
                    max_attendees: Some(1),
                }),
                ..TenantUpdate::default()
            },
        )
        .await;
        for n in 0..2 {
            tenant_get(
                &harness,
                "t1",
                T1_SECRET,
                "create",
                &format!("name=L&meetingID=lim-{n}"),
            )
            .await
            .assert_success();
        }
        let over = tenant_get(
            &harness,
            "t1",
            T1_SECRET,
            "create",
            "name=L&meetingID=lim-2",
        )
        .await;
        over.assert_failed("maxMeetingsReached");
        assert!(over.body.contains("(2)"), "{}", over.body);
        // A create of a running meeting is no new meeting.
        tenant_get(
            &harness,
            "t1",
            T1_SECRET,
            "create",
            "name=L&meetingID=lim-0",
        )
        .await
        .assert_success();
        // Other tenants are not limited by t1's limits.
        harness.create("unlimited-0").await.assert_success();
        harness.create("unlimited-1").await.assert_success();
        harness.create("unlimited-2").await.assert_success();
        // Ending one frees a place.
        tenant_get(&harness, "t1", T1_SECRET, "end", "meetingID=lim-1")
            .await
            .assert_success();
        tenant_get(
            &harness,
            "t1",
            T1_SECRET,
            "create",
            "name=L&meetingID=lim-2",
        )
        .await
        .assert_success();
        // Attendees: one join is allowed, the next is over the limit.
        let join = |n: u32| {
            let url = tenant_url(
                &harness,
                "t1",
                T1_SECRET,
                "join",
                &format!("meetingID=lim-0&fullName=U{n}&role=VIEWER"),
            );
            let harness = &harness;
            async move { harness.get_raw(&url).await }
        };
        assert_eq!(join(1).await.status, 302, "{db:?}");
        join(2).await.assert_failed("maxParticipantsReached");
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_pool_keeps_its_meetings_on_its_tagged_servers() {
    for db in BOTH {
        let harness = Harness::with_tags(db, &[Some("gold"), None, Some("silver")], |_| {}).await;
        add_tenant(&harness, "t1", T1_SECRET).await;
        update(
            &harness,
            "t1",
            TenantUpdate {
                required_tags: Some(vec!["gold".into()]),
                ..TenantUpdate::default()
            },
        )
        .await;
        for n in 0..4 {
            tenant_get(
                &harness,
                "t1",
                T1_SECRET,
                "create",
                &format!("name=G&meetingID=gold-{n}"),
            )
            .await
            .assert_success();
        }
        assert_eq!(
            harness.sims[0].meeting_count(),
            4,
            "{db:?}: all on the gold server"
        );
        // meta_server-tag composes: a tag outside the pool is unavailable.
        tenant_get(
            &harness,
            "t1",
            T1_SECRET,
            "create",
            "name=S&meetingID=silver-1&meta_server-tag=silver%21",
        )
        .await
        .assert_failed("serverTagUnavailable");
        // The default tenant still places on untagged servers.
        harness.create("untagged").await.assert_success();
        assert_eq!(harness.sim_with("untagged"), Some(1));
        harness.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_admin_changes_are_events_and_never_show_secrets() {
    for db in BOTH {
        let harness = Harness::start(db, 1).await;
        let admin = &harness.state().admin;
        add_tenant(&harness, "t1", T1_SECRET).await;
        admin
            .add_tenant_secret("t1", "tenant-one-rotated".into(), &operator())
            .await
            .unwrap();
        let view = admin
            .revoke_tenant_secret("t1", T1_SECRET.into(), &operator())
            .await
            .unwrap();
        assert_eq!(
            view.secrets,
            vec![switchboard_app::admin::tenants::fingerprint(
                "tenant-one-rotated"
            )]
        );
        tenant_get(&harness, "t1", T1_SECRET, "getMeetings", "")
            .await
            .assert_failed("checksumError");
        tenant_get(&harness, "t1", "tenant-one-rotated", "getMeetings", "")
            .await
            .assert_success();
        let weak = admin
            .add_tenant_secret("t1", "short".into(), &operator())
            .await
            .unwrap_err();
        assert!(weak.to_string().contains("at least 12"), "{weak}");
        let events = admin
            .events(switchboard_app::records::EventFilter {
                stream: Some("tenant:t1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        let types: Vec<&str> = events
            .events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect();
        assert_eq!(
            types,
            vec!["TenantCreated", "TenantSecretAdded", "TenantSecretRevoked"]
        );
        let shown = serde_json::to_string(&events.events).unwrap();
        assert!(
            !shown.contains(T1_SECRET) && !shown.contains("tenant-one-rotated"),
            "{shown}"
        );
        // Deleting a tenant that runs meetings needs force.
        tenant_get(
            &harness,
            "t1",
            "tenant-one-rotated",
            "create",
            "name=X&meetingID=keep",
        )
        .await
        .assert_success();
        let refused = admin
            .delete_tenant("t1", false, &operator())
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("runs 1 meeting"), "{refused}");
        admin.delete_tenant("t1", true, &operator()).await.unwrap();
        let reused = admin
            .create_tenant(
                NewTenant {
                    name: "t1".into(),
                    secret: "another-secret".into(),
                    required_tags: None,
                    limits: None,
                    policy: None,
                },
                &operator(),
            )
            .await
            .unwrap_err();
        assert!(reused.to_string().contains("deleted tenant"), "{reused}");
        tenant_get(&harness, "t1", "tenant-one-rotated", "getMeetings", "")
            .await
            .assert_failed("checksumError");
        harness.stop().await;
    }
}

/// Issue 14.9 (and the default-tenant leak of issue 15): a breakout room BBB
/// opened from a tenant's meeting is listed to that tenant; a meeting
/// Switchboard did not create is listed to no tenant, the default one
/// included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breakouts_follow_their_parent_and_unknown_meetings_are_nobodys() {
    for db in crate::support::BOTH {
        let harness = Harness::polled(db, 1).await;
        add_tenant(&harness, "acme", "acme-secret-1").await;
        let created = tenant_get(
            &harness,
            "acme",
            "acme-secret-1",
            "create",
            "name=Class&meetingID=class",
        )
        .await;
        created.assert_success();
        let parent = created.field("internalMeetingID").unwrap();
        harness.sims[0].create_breakout_directly("class-room-1", &parent);
        harness.sims[0].create_meeting_directly("stranger", "Made on the server");
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;

        let acme = tenant_get(&harness, "acme", "acme-secret-1", "getMeetings", "").await;
        let mut listed = meeting_ids(&acme);
        listed.sort();
        assert_eq!(
            listed,
            vec!["class", "class-room-1"],
            "{db:?}: {}",
            acme.body
        );
        let default = harness.get("getMeetings", "").await;
        assert!(
            meeting_ids(&default).is_empty(),
            "{db:?}: the default tenant sees none of them: {}",
            default.body
        );
        harness.stop().await;
    }
}

#[tokio::test]
async fn a_tenant_reads_its_own_stats_and_metrics_with_its_stats_token_only() {
    for db in BOTH {
        let harness = Harness::polled(db, 1).await;
        add_tenant(&harness, "school", T1_SECRET).await;
        add_tenant(&harness, "college", T2_SECRET).await;
        wait_for_refresh(&harness).await;
        for (tenant, secret) in [("school", T1_SECRET), ("college", T2_SECRET)] {
            let url = tenant_url(
                &harness,
                tenant,
                secret,
                "create",
                &format!("meetingID={tenant}-room&name=Room"),
            );
            harness.get_raw(&url).await.assert_success();
        }
        let token = harness
            .state()
            .admin
            .issue_stats_token("school", &operator())
            .await
            .unwrap();
        assert!(token.starts_with("sbs_"));
        // Operators see who has one, never the token.
        let admin = harness.state().admin.service().clone();
        let views = admin.tenants().await.unwrap();
        let has_token: Vec<(String, bool)> = views
            .iter()
            .map(|view| (view.name.clone(), view.stats_token))
            .collect();
        assert!(
            has_token.contains(&("school".to_owned(), true)),
            "{db:?}: {has_token:?}"
        );
        assert!(
            has_token.contains(&("college".to_owned(), false)),
            "{db:?}: {has_token:?}"
        );
        let base = format!("http://{}", harness.app.addr);
        let get = |path: String, bearer: Option<String>, host: Option<&str>| {
            let mut request = harness.client.get(format!("{base}{path}"));
            if let Some(token) = bearer {
                request = request.bearer_auth(token);
            }
            if let Some(host) = host {
                request = request.header("host", host);
            }
            request.send()
        };
        let refused = get("/t/school/stats".into(), None, None).await.unwrap();
        assert_eq!(refused.status(), 401);
        assert!(
            refused.headers()["content-type"]
                .to_str()
                .unwrap()
                .contains("problem+json")
        );
        let wrong = get("/t/college/stats".into(), Some(token.clone()), None)
            .await
            .unwrap();
        assert_eq!(
            wrong.status(),
            401,
            "{db:?}: a token opens its own tenant only"
        );
        let stats: serde_json::Value = get("/t/school/stats".into(), Some(token.clone()), None)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["tenant"], "school");
        assert_eq!(stats["meetings"]["running"], 1, "{db:?}: {stats}");
        assert_eq!(stats["running_meetings"][0]["meeting_id"], "school-room");
        let by_query = get(format!("/t/school/metrics?token={token}"), None, None)
            .await
            .unwrap();
        assert_eq!(by_query.status(), 200);
        let text = by_query.text().await.unwrap();
        assert!(
            text.contains("switchboard_tenant_meetings{tenant=\"school\"} 1"),
            "{text}"
        );
        assert!(!text.contains("college"));
        let on_host = get(
            "/stats".into(),
            Some(token.clone()),
            Some("school.lb.example.org"),
        )
        .await
        .unwrap();
        assert_eq!(on_host.status(), 200);
        // A new token replaces the old one.
        let newer = harness
            .state()
            .admin
            .issue_stats_token("school", &operator())
            .await
            .unwrap();
        wait_for_refresh(&harness).await;
        let old = get("/t/school/stats".into(), Some(token), None)
            .await
            .unwrap();
        assert_eq!(old.status(), 401);
        let new = get("/t/school/stats".into(), Some(newer), None)
            .await
            .unwrap();
        assert_eq!(new.status(), 200);
        // The log keeps the hash, never the token.
        let events = harness.state().db.events_after(0, 10_000).await.unwrap();
        let payloads = format!("{:?}", events);
        assert!(payloads.contains("TenantStatsTokenSet"));
        assert!(!payloads.contains("sbs_"));
        harness.stop().await;
    }
}
