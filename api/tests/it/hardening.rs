//! Hardening (issue 15): what a read of the code found, each test failing
//! before its fix.

use crate::support::{BOTH, Harness};
use switchboard_app::ports::Placements as _;
use switchboard_app::records::PendingPlacement;
use switchboard_domain::ids::{MeetingId, TenantId};

fn pending_on(harness: &Harness, sim: usize, meeting: &str, age_ms: i64) -> PendingPlacement {
    PendingPlacement {
        tenant: TenantId::default_tenant(),
        meeting_id: MeetingId::parse(meeting).unwrap(),
        server_id: harness.servers[sim],
        at_ms: chrono::Utc::now().timestamp_millis() - age_ms,
        recording_ready_url: None,
        callbacks: None,
    }
}

/// Issue 15.A1: `serve` stopped between a server's create and the append
/// (simulated: the meeting runs on a server, its pending placement is
/// kept, no run recorded). The front-end's retried create finds the first
/// server's meeting instead of starting a second copy on the less loaded
/// server; without a retry, one reconcile records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_interrupted_by_a_crash_is_never_split() {
    for db in BOTH {
        let harness = Harness::start(db, 2).await;
        harness.create("filler").await.assert_success();
        let busy = harness.sim_with("filler").unwrap();
        // The crashed create went to the busier server.
        harness.sims[busy].create_meeting_directly("retried", "Retried");
        harness
            .store()
            .put_pending_placement(&pending_on(&harness, busy, "retried", 2_000))
            .await
            .unwrap();
        harness.create("retried").await.assert_success();
        assert_eq!(
            harness.sim_with_all("retried"),
            vec![busy],
            "{db:?}: one copy, on the first server"
        );
        let info = harness.get("getMeetingInfo", "meetingID=retried").await;
        info.assert_success();

        // No retry: reconcile records it once the placement has settled.
        harness.sims[busy].create_meeting_directly("orphan", "Orphan");
        harness
            .store()
            .put_pending_placement(&pending_on(&harness, busy, "orphan", 60_000))
            .await
            .unwrap();
        let mut poller = switchboard_app::health::HealthPoller::new(
            harness.state().health_ports(),
            switchboard_app::health::HealthConfig::default(),
            harness.state().observed.clone(),
        );
        let report = poller.poll_once().await.unwrap();
        assert!(
            !report.unknown.contains(&"orphan".to_owned()),
            "{db:?}: {report:?}"
        );
        crate::support::wait_for_refresh(&harness).await;
        harness
            .get("getMeetingInfo", "meetingID=orphan")
            .await
            .assert_success();
        harness.create("orphan").await.assert_success();
        assert_eq!(harness.sim_with_all("orphan"), vec![busy], "{db:?}");
        harness.stop().await;
    }
}
