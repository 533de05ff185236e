//! Scalelite's terms over the in-memory store.

use super::*;
use crate::memory::ScriptedBackend;
use crate::memory::answers;
use crate::testing::World;
use std::sync::Arc;
use switchboard_domain::load::LoadWeights;

fn admin(world: &World, backend: &Arc<ScriptedBackend>) -> AdminService {
    AdminService::new(
        world.store.clone(),
        world.executor.clone(),
        world.backends(backend),
        world.shared_clock(),
        LoadWeights::default(),
        None,
    )
}

fn operator() -> Principal {
    Principal::admin("scalelite-api".into())
}

#[tokio::test]
async fn servers_show_their_secret_api_url_and_load_only_when_they_take_meetings() {
    let world = World::new();
    let id = world.server("one").await;
    let backend = Arc::new(ScriptedBackend::new(|_, call, _| {
        panic!("unexpected call {call}")
    }));
    let admin = admin(&world, &backend);
    let server = admin.scalelite_server(&id.to_string()).await.unwrap();
    assert_eq!(server.url, "https://one.example/bigbluebutton/api");
    assert_eq!(server.secret, crate::testing::secret("one"));
    assert_eq!(server.state, "enabled");
    assert_eq!(server.load, Some(0.0));
    admin
        .set_state(&id.to_string(), ServerCommand::Disable, &operator())
        .await
        .unwrap();
    let all = admin.scalelite_servers().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, "disabled");
    assert_eq!(all[0].load, None, "a disabled server's load is unavailable");
}

#[tokio::test]
async fn a_panic_keeping_state_forgets_the_meetings_and_leaves_the_server_enabled() {
    let world = World::new();
    let id = world.server("one").await;
    world
        .meeting("room", "room-1", id, crate::testing::NOW_MS)
        .await;
    let backend = Arc::new(ScriptedBackend::new(|_, call, _| match call {
        "getMeetingInfo" => answers::create_success("room", "room-1", 0),
        "end" => answers::end_sent(),
        other => panic!("unexpected call {other}"),
    }));
    let admin = admin(&world, &backend);
    let options = ScalelitePanic {
        keep_state: true,
        skip_end_calls: false,
    };
    let server = admin
        .scalelite_panic(&id.to_string(), options, &operator())
        .await
        .unwrap();
    assert_eq!(server.state, "enabled");
    assert!(backend.calls().iter().any(|call| call.call == "end"));
    assert!(
        admin
            .meetings(None, None, None)
            .await
            .unwrap()
            .iter()
            .all(|m| !m.running)
    );
    // Without keep_state and with skip_end_calls: disabled, no end sent.
    world
        .meeting("hall", "hall-1", id, crate::testing::NOW_MS)
        .await;
    let before = backend.calls().len();
    let options = ScalelitePanic {
        keep_state: false,
        skip_end_calls: true,
    };
    let server = admin
        .scalelite_panic(&id.to_string(), options, &operator())
        .await
        .unwrap();
    assert_eq!(server.state, "disabled");
    assert_eq!(backend.calls().len(), before, "no call was sent");
}

#[tokio::test]
async fn tenants_get_a_stable_uuid_and_their_secrets_are_replaced_without_ever_having_none() {
    let world = World::new();
    let admin = admin(
        &world,
        &Arc::new(ScriptedBackend::new(|_, _, _| unreachable!())),
    );
    let secrets = vec![
        "first-secret-0123".to_owned(),
        "second-secret-0123".to_owned(),
    ];
    let tenant = admin
        .scalelite_add_tenant("school", &secrets, &operator())
        .await
        .unwrap();
    assert_eq!(tenant.secrets, secrets);
    assert_eq!(
        tenant.id,
        crate::meetings::create::tenant_uuid("school").to_string()
    );
    assert_eq!(
        admin.scalelite_tenant(&tenant.id).await.unwrap().name,
        "school"
    );
    assert_eq!(
        admin.scalelite_tenant("school").await.unwrap().id,
        tenant.id
    );
    let replaced = vec!["third-secret-01234".to_owned()];
    admin
        .replace_tenant_secrets("school", &replaced, &operator())
        .await
        .unwrap();
    assert_eq!(
        admin.scalelite_tenant("school").await.unwrap().secrets,
        replaced
    );
    let missing = admin.scalelite_tenant("nowhere").await.unwrap_err();
    assert_eq!(missing.to_string(), "Couldn't find Tenant with id=nowhere");
}
