//! Voice bridges and generated passwords, driven through create over the
//! in-memory store.

use super::*;
use crate::meetings::MeetingSettings;
use crate::memory::ScriptedBackend;
use crate::memory::answers::{self, Reply};
use crate::ports::Placements as _;
use crate::testing::{NOW_MS, World, asked, ended, meeting_id, request};
use std::sync::Arc;
use switchboard_domain::bbb::params::Params;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::meeting_stream;
use switchboard_domain::meeting::EndReason;

fn settings() -> MeetingSettings {
    MeetingSettings {
        voice_bridges: Some(VoicePolicy::default()),
        fill_passwords: true,
        ..MeetingSettings::new(3)
    }
}

type VoicePolicy = VoiceBridgePolicy;

/// A backend whose creates succeed, runs named `<meetingID>-<n>`.
fn accepting() -> Arc<ScriptedBackend> {
    let count = std::sync::atomic::AtomicU64::new(0);
    Arc::new(ScriptedBackend::new(move |_, call, query| -> Reply {
        assert_eq!(call, "create", "only creates are expected");
        let params = Params::parse(query).unwrap();
        let id = params.get("meetingID").unwrap().to_owned();
        let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        answers::create_success(&id, &format!("{id}-{n}"), NOW_MS)
    }))
}

/// The parameters of the `n`-th call the backend got.
fn sent(backend: &ScriptedBackend, n: usize) -> Params {
    Params::parse(&backend.calls()[n].query).unwrap()
}

async fn end(world: &World, id: &str, internal_id: &str, version: i64) {
    world
        .store
        .append_raw(
            &meeting_stream(&TenantId::default_tenant(), &meeting_id(id)),
            version,
            &[ended(internal_id, EndReason::EndCalled, NOW_MS)],
            &EventMetadata::actor("test:given"),
        )
        .expect("meeting ended");
}

#[tokio::test]
async fn a_new_meeting_gets_a_number_derived_from_its_meeting_id_and_keeps_it_when_created_again() {
    let world = World::new();
    world.server("one").await;
    let backend = accepting();
    let meetings = world.meetings_with(&backend, settings()).await;
    meetings
        .create(&request("create", "meetingID=room&name=room"), &asked())
        .await
        .unwrap();
    let first = sent(&backend, 0).get("voiceBridge").unwrap().to_owned();
    assert_eq!(first, derived_number(&meeting_id("room"), 0, 5));
    assert_eq!(first.len(), 5);
    assert!(!first.starts_with('0'));
    end(&world, "room", "room-0", 1).await;
    world.clock.advance_ms(CLAIM_GRACE_MS * 10);
    meetings
        .create(&request("create", "meetingID=room&name=room"), &asked())
        .await
        .unwrap();
    assert_eq!(sent(&backend, 1).get("voiceBridge"), Some(first.as_str()));
}

#[tokio::test]
async fn a_front_ends_free_number_is_kept_and_one_another_meeting_holds_is_refused_with_bbbs_error()
{
    let world = World::new();
    world.server("one").await;
    let backend = accepting();
    let meetings = world.meetings_with(&backend, settings()).await;
    meetings
        .create(
            &request("create", "meetingID=first&name=a&voiceBridge=71234"),
            &asked(),
        )
        .await
        .unwrap();
    assert_eq!(sent(&backend, 0).get("voiceBridge"), Some("71234"));
    let refused = meetings
        .create(
            &request("create", "meetingID=second&name=b&voiceBridge=71234"),
            &asked(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, CallError::VoiceBridgeInUse),
        "{refused:?}"
    );
    assert_eq!(
        backend.calls().len(),
        1,
        "a refused create reaches no server"
    );
    // The holder's own create again keeps its number.
    meetings
        .create(
            &request("create", "meetingID=first&name=a&voiceBridge=71234"),
            &asked(),
        )
        .await
        .unwrap();
    assert_eq!(sent(&backend, 1).get("voiceBridge"), Some("71234"));
}

#[tokio::test]
async fn an_ended_meetings_number_is_free_only_after_the_grace() {
    let world = World::new();
    world.server("one").await;
    let backend = accepting();
    let meetings = world.meetings_with(&backend, settings()).await;
    let ask = |id: &str| {
        request(
            "create",
            &format!("meetingID={id}&name=x&voiceBridge=70001"),
        )
    };
    meetings.create(&ask("first"), &asked()).await.unwrap();
    end(&world, "first", "first-0", 1).await;
    let early = meetings.create(&ask("second"), &asked()).await;
    assert!(matches!(early, Err(CallError::VoiceBridgeInUse)));
    world.clock.advance_ms(CLAIM_GRACE_MS + 1);
    meetings.create(&ask("second"), &asked()).await.unwrap();
    let holder = world
        .store
        .voice_bridge_holder("70001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(holder.meeting_id, meeting_id("second"));
}

#[tokio::test]
async fn a_taken_derived_number_moves_on_to_the_next_and_the_test_number_is_never_given() {
    let world = World::new();
    world.server("one").await;
    let taken = derived_number(&meeting_id("room"), 0, 5);
    let claim = VoiceBridgeClaim {
        number: taken.clone(),
        tenant: TenantId("other".into()),
        meeting_id: meeting_id("elsewhere"),
        at_ms: NOW_MS,
    };
    assert!(world.store.claim_voice_bridge(&claim, 0).await.unwrap());
    let backend = accepting();
    let meetings = world.meetings_with(&backend, settings()).await;
    meetings
        .create(&request("create", "meetingID=room&name=room"), &asked())
        .await
        .unwrap();
    let given = sent(&backend, 0).get("voiceBridge").unwrap().to_owned();
    assert_ne!(given, taken);
    assert_eq!(given, derived_number(&meeting_id("room"), 1, 5));
    for attempt in 0..1000 {
        let number = derived_number(&meeting_id(&format!("m{attempt}")), 0, 9);
        assert_eq!(number.len(), 9);
        assert!(!number.starts_with('0') && number.bytes().all(|b| b.is_ascii_digit()));
    }
}

#[tokio::test]
async fn a_tenants_creates_carry_its_id_and_name_when_asked() {
    let world = World::new();
    world.server("one").await;
    let backend = accepting();
    let meetings = world
        .meetings_with(
            &backend,
            MeetingSettings {
                tenant_metadata: true,
                ..MeetingSettings::new(3)
            },
        )
        .await;
    let mut create = request("create", "meetingID=room&name=room&meta_tenant-id=forged");
    create.tenant = TenantId("school".into());
    create.tenant_config = Some(Arc::new(switchboard_domain::tenant::TenantConfig {
        name: "school".into(),
        secrets: vec!["school-secret-0123".into()],
        policy: Default::default(),
        limits: Default::default(),
        required_tags: Vec::new(),
    }));
    meetings.create(&create, &asked()).await.unwrap();
    let params = sent(&backend, 0);
    let id = crate::meetings::create::tenant_uuid("school").to_string();
    assert_eq!(params.get("meta_tenant-id"), Some(id.as_str()));
    assert_eq!(params.get("meta_tenant-name"), Some("school"));
    assert_ne!(
        id,
        crate::meetings::create::tenant_uuid("college").to_string()
    );
}

#[tokio::test]
async fn without_keeping_requested_numbers_the_front_ends_number_is_replaced() {
    let world = World::new();
    world.server("one").await;
    let backend = accepting();
    let policy = VoicePolicy {
        length: 9,
        keep_requested: false,
    };
    let meetings = world
        .meetings_with(
            &backend,
            MeetingSettings {
                voice_bridges: Some(policy),
                ..MeetingSettings::new(3)
            },
        )
        .await;
    meetings
        .create(
            &request("create", "meetingID=room&name=room&voiceBridge=71234"),
            &asked(),
        )
        .await
        .unwrap();
    let given = sent(&backend, 0).get("voiceBridge").unwrap().to_owned();
    assert_eq!(given, derived_number(&meeting_id("room"), 0, 9));
    assert_eq!(given.len(), 9);
}

#[tokio::test]
async fn left_to_servers_nothing_is_added() {
    let world = World::new();
    world.server("one").await;
    let backend = accepting();
    let meetings = world.meetings(&backend).await;
    meetings
        .create(&request("create", "meetingID=room&name=room"), &asked())
        .await
        .unwrap();
    let params = sent(&backend, 0);
    for key in ["voiceBridge", "moderatorPW", "attendeePW"] {
        assert_eq!(params.get(key), None, "{key}");
    }
}

#[tokio::test]
async fn missing_passwords_are_filled_for_a_new_run_alike_on_every_instance_and_never_for_a_running_one()
 {
    let world = World::new();
    world.server("one").await;
    let backend = accepting();
    let meetings = world.meetings_with(&backend, settings()).await;
    meetings
        .create(
            &request("create", "meetingID=room&name=room&attendeePW=mine"),
            &asked(),
        )
        .await
        .unwrap();
    let params = sent(&backend, 0);
    assert_eq!(
        params.get("attendeePW"),
        Some("mine"),
        "the front-end's is kept"
    );
    let moderator = params.get("moderatorPW").unwrap().to_owned();
    assert_eq!(moderator.len(), 8);
    assert!(moderator.chars().all(|c| c.is_ascii_alphanumeric()));
    // Another instance over the same store derives the same password.
    let other = world.meetings_with(&accepting(), settings()).await;
    let tenant = TenantId::default_tenant();
    assert_eq!(
        other
            .generated_password(&tenant, &meeting_id("room"), "moderatorPW")
            .await
            .unwrap(),
        moderator
    );
    assert_ne!(
        other
            .generated_password(&tenant, &meeting_id("room"), "attendeePW")
            .await
            .unwrap(),
        moderator
    );
    assert_ne!(
        other
            .generated_password(&tenant, &meeting_id("other"), "moderatorPW")
            .await
            .unwrap(),
        moderator
    );
    // The running meeting's create again: BBB's duplicateWarning needs the
    // passwords it was given or none.
    meetings
        .create(&request("create", "meetingID=room&name=room"), &asked())
        .await
        .unwrap();
    assert_eq!(sent(&backend, 1).get("moderatorPW"), None);
}
