//! A generated log shaped like a pool's: servers and tenants added once,
//! then meetings created, ended and summarized across recurring rooms
//! (about 1,500 running at a time), recordings imported and published
//! (some unpublished, protected, re-tagged or deleted), servers going
//! offline and back, cordoned and enabled, and agents reporting. Events
//! are half a second apart.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use switchboard_app::records::StoredEvent;
use switchboard_domain::events::{DomainEvent, EventMetadata};
use switchboard_domain::hook::{HookEvent, HookSettings};
use switchboard_domain::ids::{MeetingId, ServerId, StreamId, TenantId};
use switchboard_domain::meeting::{EndReason, MeetingEvent, MeetingRun, RunUsage};
use switchboard_domain::recording::{
    RecordingDetails, RecordingEvent, RecordingFormat, recording_stream,
};
use switchboard_domain::server::{ServerEvent, ServerSettings};
use switchboard_domain::tenant::TenantEvent;
use switchboard_domain::token::{TokenEvent, TokenScope};

/// Servers in the pool.
const SERVERS: usize = 10;
/// Tenants.
const TENANTS: usize = 50;
/// Recurring rooms meetings are created in.
const ROOMS: usize = 20_000;
/// Meetings running at a time, about.
const RUNNING: usize = 1_500;
/// The first event's time (ms since the epoch).
pub const START_MS: i64 = 1_780_000_000_000;
/// Time between events (ms).
pub const STEP_MS: i64 = 500;

/// A run in progress.
struct Running {
    tenant: TenantId,
    room: String,
    internal_id: String,
    server: ServerId,
    started_ms: i64,
    record: bool,
}

/// The log being generated.
struct Log {
    events: Vec<StoredEvent>,
    versions: HashMap<String, i64>,
    rng: StdRng,
}

impl Log {
    fn now_ms(&self) -> i64 {
        START_MS + self.events.len() as i64 * STEP_MS
    }

    fn push(&mut self, stream: StreamId, event: DomainEvent, actor: &str) {
        let version = self.versions.entry(stream.to_string()).or_default();
        *version += 1;
        let version = *version;
        let recorded_at =
            chrono::DateTime::from_timestamp_millis(self.now_ms()).unwrap_or_default();
        self.events.push(StoredEvent {
            position: self.events.len() as i64 + 1,
            stream,
            version,
            event,
            metadata: EventMetadata::actor(actor),
            recorded_at,
        });
    }
}

fn tenant_of(n: usize) -> TenantId {
    TenantId(format!("tenant-{n}"))
}

fn server_settings(n: usize) -> ServerSettings {
    ServerSettings {
        url: format!("https://bbb{n}.example.org/bigbluebutton/"),
        secret: format!("{n:0>40}"),
        tag: None,
        load_multiplier: 1.0,
        checksum: None,
        metrics_url: None,
    }
}

/// A log of `count` events.
pub fn generate(count: usize, seed: u64) -> Vec<StoredEvent> {
    let mut log = Log {
        events: Vec::with_capacity(count),
        versions: HashMap::new(),
        rng: StdRng::seed_from_u64(seed),
    };
    let servers: Vec<ServerId> = (0..SERVERS).map(|_| ServerId::new()).collect();
    for (n, id) in servers.iter().enumerate() {
        let event = ServerEvent::ServerAdded {
            id: *id,
            settings: server_settings(n),
        };
        log.push(id.stream(), DomainEvent::Server(event), "cli");
        log.push(
            id.stream(),
            DomainEvent::Server(ServerEvent::ServerEnabled),
            "cli",
        );
    }
    for n in 0..TENANTS {
        let name = tenant_of(n).0;
        let event = TenantEvent::TenantCreated {
            name: name.clone(),
            secret: format!("secret-of-{name}-0000000000000000"),
        };
        log.push(StreamId::Tenant(name), DomainEvent::Tenant(event), "cli");
    }
    for (n, scope) in [TokenScope::Admin, TokenScope::Read]
        .into_iter()
        .enumerate()
    {
        let name = format!("operator-{n}");
        let event = TokenEvent::TokenCreated {
            name: name.clone(),
            scope,
            hash: format!("{n:0>64}"),
            server: None,
        };
        log.push(StreamId::Token(name), DomainEvent::Token(event), "cli");
    }
    for n in 0..3 {
        let event = HookEvent::HookRegistered {
            hook: HookSettings {
                tenant: tenant_of(n),
                callback_url: format!("https://hooks{n}.example.org/bbb"),
                meeting_id: None,
                event_ids: None,
                get_raw: false,
                algorithm: "sha256".into(),
                signed_with: None,
            },
        };
        log.push(
            StreamId::Hook(format!("hook-{n}")),
            DomainEvent::Hook(event),
            "bbb-api",
        );
    }
    let mut running: Vec<Running> = Vec::new();
    let mut busy_rooms: HashMap<(String, String), ()> = HashMap::new();
    let mut recordings: Vec<String> = Vec::new();
    let mut runs = 0_u64;
    while log.events.len() < count {
        let roll: f64 = log.rng.random();
        if roll < 0.04 {
            server_change(&mut log, &servers);
        } else if roll < 0.12 && !recordings.is_empty() {
            recording_change(&mut log, &recordings);
        } else if running.len() < RUNNING || roll < 0.55 {
            let room_n = log.rng.random_range(0..ROOMS);
            let tenant = tenant_of(room_n % TENANTS);
            let room = format!("room-{room_n}");
            if busy_rooms.contains_key(&(tenant.0.clone(), room.clone())) {
                continue;
            }
            runs += 1;
            let server = servers[log.rng.random_range(0..SERVERS)];
            let started_ms = log.now_ms();
            let meeting_id = MeetingId::parse(&room).unwrap_or_else(|_| unreachable!());
            let internal_id = meeting_id.internal_id(started_ms + runs as i64);
            let record = log.rng.random_bool(0.3);
            let event = MeetingEvent::MeetingCreated {
                tenant: tenant.clone(),
                meeting_id: meeting_id.clone(),
                name: format!("Room {room_n}"),
                run: MeetingRun {
                    internal_id: internal_id.clone(),
                    server_id: server,
                    create_time_ms: started_ms,
                    recording_ready_url: None,
                    callbacks: None,
                },
            };
            let stream = StreamId::Meeting(tenant.clone(), meeting_id);
            log.push(stream, DomainEvent::Meeting(event), "bbb-api");
            busy_rooms.insert((tenant.0.clone(), room.clone()), ());
            running.push(Running {
                tenant,
                room,
                internal_id,
                server,
                started_ms,
                record,
            });
        } else {
            let index = log.rng.random_range(0..running.len());
            let run = running.swap_remove(index);
            busy_rooms.remove(&(run.tenant.0.clone(), run.room.clone()));
            end_run(&mut log, &run, &mut recordings);
        }
    }
    log.events.truncate(count);
    log.events
}

fn end_run(log: &mut Log, run: &Running, recordings: &mut Vec<String>) {
    let meeting_id = MeetingId::parse(&run.room).unwrap_or_else(|_| unreachable!());
    let stream = StreamId::Meeting(run.tenant.clone(), meeting_id);
    let ended_ms = log.now_ms();
    let ended = MeetingEvent::MeetingEnded {
        internal_id: run.internal_id.clone(),
        reason: EndReason::GoneFromServer,
        at_ms: ended_ms,
    };
    log.push(stream.clone(), DomainEvent::Meeting(ended), "worker:health");
    let peak = log.rng.random_range(1..80);
    let usage = RunUsage {
        internal_id: run.internal_id.clone(),
        server_id: run.server,
        started_ms: run.started_ms,
        ended_ms,
        peak_attendees: peak,
        attendee_seconds: peak * u64::try_from((ended_ms - run.started_ms) / 2000).unwrap_or(0),
        peak_video: peak / 4,
        recordable: run.record,
    };
    let summarized = MeetingEvent::MeetingUsageSummarized { usage };
    log.push(stream, DomainEvent::Meeting(summarized), "worker:health");
    if !run.record {
        return;
    }
    let record_id = run.internal_id.clone();
    let event = RecordingEvent::RecordingImported {
        record_id: record_id.clone(),
        details: RecordingDetails {
            tenant: run.tenant.clone(),
            meeting_id: run.room.clone(),
            internal_meeting_id: run.internal_id.clone(),
            name: format!("Recording of {}", run.room),
            is_breakout: false,
            published: true,
            start_time_ms: run.started_ms,
            end_time_ms: ended_ms,
            participants: u32::try_from(peak).unwrap_or(0),
            metadata: BTreeMap::from([
                ("bbb-origin".to_owned(), "Greenlight".to_owned()),
                ("bbb-context".to_owned(), run.room.clone()),
                ("isBreakout".to_owned(), "false".to_owned()),
            ]),
            breakout: None,
            breakout_rooms: Vec::new(),
        },
        formats: vec![RecordingFormat {
            format: "presentation".into(),
            url: format!("https://bbb.example.org/playback/presentation/2.3/{record_id}"),
            processing_time_ms: 40_000,
            length_ms: u64::try_from(ended_ms - run.started_ms).unwrap_or(0),
            bytes: 48_000_000,
            images: vec![],
        }],
    };
    log.push(
        recording_stream(&record_id),
        DomainEvent::Recording(event),
        "worker:recordings",
    );
    recordings.push(record_id);
}

fn recording_change(log: &mut Log, recordings: &[String]) {
    let record_id = &recordings[log.rng.random_range(0..recordings.len())];
    let event = match log.rng.random_range(0..10) {
        0..=3 => RecordingEvent::RecordingUnpublished,
        4..=6 => RecordingEvent::RecordingPublished,
        7 => RecordingEvent::RecordingProtected {
            protected: log.rng.random_bool(0.5),
        },
        8 => RecordingEvent::RecordingMetadataUpdated {
            set: BTreeMap::from([("course".to_owned(), "Physics 101".to_owned())]),
            removed: vec!["bbb-context".to_owned()],
        },
        _ => RecordingEvent::RecordingDeleted,
    };
    log.push(
        recording_stream(record_id),
        DomainEvent::Recording(event),
        "operator-0",
    );
}

fn server_change(log: &mut Log, servers: &[ServerId]) {
    let server = servers[log.rng.random_range(0..servers.len())];
    let events: &[ServerEvent] = match log.rng.random_range(0..10) {
        0..=3 => &[
            ServerEvent::ServerWentOffline,
            ServerEvent::ServerWentOnline,
        ],
        4 => &[ServerEvent::ServerCordoned, ServerEvent::ServerEnabled],
        _ => &[ServerEvent::AgentReported {
            version: "3.0.4".into(),
            interval_ms: 5_000,
        }],
    };
    for event in events {
        log.push(
            server.stream(),
            DomainEvent::Server(event.clone()),
            "worker:health",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_log_has_consecutive_versions_and_the_asked_length() {
        let events = generate(20_000, 7);
        assert_eq!(events.len(), 20_000);
        let mut versions: HashMap<String, i64> = HashMap::new();
        for (index, stored) in events.iter().enumerate() {
            assert_eq!(stored.position, index as i64 + 1);
            let version = versions.entry(stored.stream.to_string()).or_default();
            *version += 1;
            assert_eq!(stored.version, *version, "{}", stored.stream);
        }
        let kinds: std::collections::BTreeSet<&str> = events
            .iter()
            .map(|stored| stored.event.type_name())
            .collect();
        for kind in [
            "MeetingCreated",
            "MeetingEnded",
            "MeetingUsageSummarized",
            "RecordingImported",
            "RecordingUnpublished",
            "ServerWentOffline",
            "AgentReported",
        ] {
            assert!(kinds.contains(kind), "{kind} in {kinds:?}");
        }
    }
}
