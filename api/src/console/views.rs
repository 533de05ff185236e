//! The console's view models: what each page shows, made from the admin
//! use cases' views, the polled samples and the time series. Pure, so
//! every figure and label a page shows is unit-tested here.

use serde::Serialize;
use std::collections::HashMap;
use switchboard_app::admin::tenants::TenantView;
use switchboard_app::admin::views::{ClusterAt, ServerView};
use switchboard_app::records::{SeriesPoint, ServerSample};

/// One server as a card of the overview (or of "the pool at").
#[derive(Debug, Clone, PartialEq)]
pub struct ServerCard {
    /// Server id.
    pub id: String,
    /// Its host (from its URL), to tell servers apart at a glance.
    pub host: String,
    /// Its base URL.
    pub url: String,
    /// `enabled`, `cordoned` or `disabled`.
    pub state: String,
    /// Whether health checks reach it.
    pub online: bool,
    /// Since when it is online or offline, when known.
    pub since: Option<String>,
    /// Meetings it runs.
    pub meetings: u64,
    /// Attendees its last poll saw.
    pub attendees: u64,
    /// Video streams its last poll saw (`None`: not known here).
    pub video: Option<u64>,
    /// Effective load, formatted.
    pub load: String,
    /// CPU, percent, formatted (`None`: not known).
    pub cpu: Option<String>,
    /// Memory, percent, formatted (`None`: not known).
    pub memory: Option<String>,
    /// Whether its CPU and memory can be read.
    pub metrics_state: String,
    /// Over its CPU or memory limit: takes no new meetings.
    pub over_limit: bool,
    /// `agent` or `poll`: where its health and load come from.
    pub source: &'static str,
    /// When it was last heard (poll or heartbeat), relative to now.
    pub last_heard: Option<String>,
}

impl ServerCard {
    /// The words of its health, as shown.
    pub fn health(&self) -> &'static str {
        if self.online { "online" } else { "offline" }
    }
}

/// The pool's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolTotals {
    /// Servers.
    pub servers: usize,
    /// Of them, online.
    pub online: usize,
    /// Of them, enabled.
    pub enabled: usize,
    /// Of them, cordoned.
    pub cordoned: usize,
    /// Of them, disabled.
    pub disabled: usize,
    /// Meetings over the pool.
    pub meetings: u64,
    /// Attendees over the pool.
    pub attendees: u64,
    /// Video streams over the pool.
    pub video: u64,
}

/// A tenant's use against its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantGauge {
    /// Tenant name.
    pub name: String,
    /// Meetings it runs.
    pub running: u64,
    /// Its meeting limit, if any.
    pub max_meetings: Option<u64>,
    /// Running against the limit, percent (`None`: no limit).
    pub percent: Option<u64>,
    /// At or over [`NEAR_LIMIT_PERCENT`] of its limit.
    pub near: bool,
}

/// From this share of its limit a tenant shows as near it.
pub const NEAR_LIMIT_PERCENT: u64 = 80;

/// "12 s ago", "5 min ago", "3 h ago", "2 d ago".
pub fn ago(then_ms: i64, now_ms: i64) -> String {
    let seconds = ((now_ms - then_ms).max(0) / 1000) as u64;
    match seconds {
        0..60 => format!("{seconds} s ago"),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86_400 => format!("{} h ago", seconds / 3600),
        _ => format!("{} d ago", seconds / 86_400),
    }
}

/// A moment as the console writes it: `2026-12-06 12:03:04 UTC`.
pub fn moment(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|url| {
            url.host_str().map(|host| match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            })
        })
        .unwrap_or_else(|| url.to_owned())
}

fn percent(value: Option<f64>) -> Option<String> {
    value.map(|v| format!("{v:.0}%"))
}

/// The overview's cards: each server with its last sample (video, poll
/// time) and since when its health is what it is (`since`: ms of each
/// server's last online/offline change, by id).
pub fn server_cards(
    servers: &[ServerView],
    samples: &[ServerSample],
    since: &HashMap<String, i64>,
    now_ms: i64,
) -> Vec<ServerCard> {
    let samples: HashMap<String, &ServerSample> = samples
        .iter()
        .map(|sample| (sample.server_id.to_string(), sample))
        .collect();
    servers
        .iter()
        .map(|server| {
            let sample = samples.get(&server.id);
            let heard_ms = if server.agent {
                server.heard_at_ms
            } else {
                sample.map(|s| s.polled_at_ms).filter(|polled| *polled > 0)
            };
            ServerCard {
                id: server.id.clone(),
                host: host_of(&server.url),
                url: server.url.clone(),
                state: server.state.clone(),
                online: server.online,
                since: since.get(&server.id).map(|at| ago(*at, now_ms)),
                meetings: server.meetings,
                attendees: server.attendees,
                video: sample.map(|s| s.video),
                load: format!("{:.1}", server.load),
                cpu: percent(server.cpu_percent),
                memory: percent(server.memory_percent),
                metrics_state: server.metrics_state.replace('_', " "),
                over_limit: server.over_limit,
                source: if server.agent { "agent" } else { "poll" },
                last_heard: heard_ms.map(|at| ago(at, now_ms)),
            }
        })
        .collect()
}

/// The cards of the pool as it was at a moment: state and health from the
/// log, meetings counted from the runs then running (load, attendees and
/// metrics are not in the log).
pub fn cards_at(cluster: &ClusterAt) -> Vec<ServerCard> {
    let mut running: HashMap<&str, u64> = HashMap::new();
    for meeting in cluster.meetings.iter().filter(|m| m.running) {
        if let Some(server) = &meeting.server_id {
            *running.entry(server.as_str()).or_default() += 1;
        }
    }
    cluster
        .servers
        .iter()
        .filter(|server| !server.removed)
        .map(|server| ServerCard {
            id: server.id.clone(),
            host: host_of(&server.url),
            url: server.url.clone(),
            state: server.state.clone(),
            online: server.online,
            since: None,
            meetings: running.get(server.id.as_str()).copied().unwrap_or(0),
            attendees: 0,
            video: None,
            load: "-".to_owned(),
            cpu: None,
            memory: None,
            metrics_state: "not in the log".to_owned(),
            over_limit: false,
            source: "log",
            last_heard: None,
        })
        .collect()
}

/// The pool's totals over its cards.
pub fn totals(cards: &[ServerCard]) -> PoolTotals {
    let mut totals = PoolTotals {
        servers: cards.len(),
        ..PoolTotals::default()
    };
    for card in cards {
        totals.online += usize::from(card.online);
        match card.state.as_str() {
            "enabled" => totals.enabled += 1,
            "cordoned" => totals.cordoned += 1,
            _ => totals.disabled += 1,
        }
        totals.meetings += card.meetings;
        totals.attendees += card.attendees;
        totals.video += card.video.unwrap_or(0);
    }
    totals
}

/// Every tenant's running meetings against its limit, fullest first.
pub fn tenant_gauges(tenants: &[TenantView]) -> Vec<TenantGauge> {
    let mut gauges: Vec<TenantGauge> = tenants
        .iter()
        .map(|tenant| {
            let max = tenant.limits.max_meetings;
            // A limit of 0 allows nothing: full.
            let percent = max.map(|max| {
                tenant
                    .running_meetings
                    .saturating_mul(100)
                    .checked_div(max)
                    .unwrap_or(100)
            });
            TenantGauge {
                name: tenant.name.clone(),
                running: tenant.running_meetings,
                max_meetings: max,
                percent,
                near: percent.is_some_and(|p| p >= NEAR_LIMIT_PERCENT),
            }
        })
        .collect();
    gauges.sort_by(|a, b| {
        b.percent
            .unwrap_or(0)
            .cmp(&a.percent.unwrap_or(0))
            .then_with(|| a.name.cmp(&b.name))
    });
    gauges
}

/// One attendee of a meeting as its server last listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendee {
    /// fullName.
    pub name: String,
    /// MODERATOR or VIEWER.
    pub role: String,
    /// Whether they share video.
    pub video: bool,
    /// Whether they only listen.
    pub listening_only: bool,
}

/// The attendees of run `internal_id` in a sample's `<meeting>` elements
/// (empty when it is not listed or cannot be read: the XML is a server's
/// answer, so untrusted).
pub fn attendees_in(meetings_xml: &str, internal_id: &str) -> Vec<Attendee> {
    use quick_xml::Reader;
    use quick_xml::events::Event;
    let mut reader = Reader::from_str(meetings_xml);
    let mut path: Vec<String> = Vec::new();
    let mut in_meeting: Option<String> = None;
    let mut current: Option<Attendee> = None;
    let mut found: Vec<(String, Attendee)> = Vec::new();
    let mut text = String::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(start)) => {
                let name: String = start.name().as_ref().to_owned();
                if name == "meeting" && path.is_empty() {
                    in_meeting = Some(String::new());
                }
                if name == "attendee" && path.last().is_some_and(|p| p == "attendees") {
                    current = Some(Attendee {
                        name: String::new(),
                        role: String::new(),
                        video: false,
                        listening_only: false,
                    });
                }
                path.push(name);
                text.clear();
            }
            Ok(Event::Text(t)) => text.push_str(&t.xml10_content()),
            Ok(Event::GeneralRef(r)) => {
                let name = r.into_inner();
                text.push_str(
                    &quick_xml::escape::unescape(&format!("&{name};"))
                        .map(|t| t.into_owned())
                        .unwrap_or_default(),
                );
            }
            Ok(Event::CData(c)) => text.push_str(c.as_ref()),
            Ok(Event::End(_)) => {
                let Some(name) = path.pop() else { break };
                let value = std::mem::take(&mut text);
                let parent = path.last().map(String::as_str);
                match (name.as_str(), parent) {
                    ("internalMeetingID", Some("meeting")) => {
                        in_meeting = Some(value.trim().to_owned());
                    }
                    ("fullName", Some("attendee")) => {
                        if let Some(a) = current.as_mut() {
                            a.name = value;
                        }
                    }
                    ("role", Some("attendee")) => {
                        if let Some(a) = current.as_mut() {
                            a.role = value.trim().to_owned();
                        }
                    }
                    ("hasVideo", Some("attendee")) => {
                        if let Some(a) = current.as_mut() {
                            a.video = value.trim() == "true";
                        }
                    }
                    ("isListeningOnly", Some("attendee")) => {
                        if let Some(a) = current.as_mut() {
                            a.listening_only = value.trim() == "true";
                        }
                    }
                    ("attendee", _) => {
                        if let (Some(a), Some(meeting)) = (current.take(), in_meeting.as_ref()) {
                            found.push((meeting.clone(), a));
                        }
                    }
                    ("meeting", None) => {
                        let id = in_meeting.take().unwrap_or_default();
                        // Attendees listed before the internal id was read.
                        for (meeting, _) in found.iter_mut().filter(|(m, _)| m.is_empty()) {
                            *meeting = id.clone();
                        }
                    }
                    _ => {}
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    found
        .into_iter()
        .filter(|(meeting, _)| meeting == internal_id)
        .map(|(_, attendee)| attendee)
        .collect()
}

/// The charts' data, as uPlot takes it: shared timestamps (seconds) and,
/// per server, one series per figure (`null` where the server has no point
/// in that minute).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartData {
    /// Minute starts, seconds since the epoch.
    pub times: Vec<i64>,
    /// The servers, in the order of their series.
    pub servers: Vec<ChartServer>,
}

/// One server's series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartServer {
    /// Its label (host).
    pub label: String,
    /// Meetings per minute.
    pub meetings: Vec<Option<u64>>,
    /// Attendees per minute.
    pub attendees: Vec<Option<u64>>,
    /// Effective load per minute.
    pub load: Vec<Option<f64>>,
}

/// The charts' data from the series points (oldest first) and the servers
/// they belong to (labels by id; points of servers not listed are shown by
/// their id).
pub fn chart_data(points: &[SeriesPoint], labels: &HashMap<String, String>) -> ChartData {
    let mut times: Vec<i64> = points.iter().map(|p| p.at_ms).collect();
    times.sort_unstable();
    times.dedup();
    let slot: HashMap<i64, usize> = times.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    let mut order: Vec<String> = Vec::new();
    let mut by_server: HashMap<String, ChartServer> = HashMap::new();
    for point in points {
        let id = point.server_id.to_string();
        let server = by_server.entry(id.clone()).or_insert_with(|| {
            order.push(id.clone());
            ChartServer {
                label: labels.get(&id).cloned().unwrap_or_else(|| id.clone()),
                meetings: vec![None; times.len()],
                attendees: vec![None; times.len()],
                load: vec![None; times.len()],
            }
        });
        // Offline minutes are gaps: an unreachable server's last figures
        // are not what it ran then.
        if !point.online {
            continue;
        }
        let i = slot[&point.at_ms];
        server.meetings[i] = Some(point.meetings);
        server.attendees[i] = Some(point.attendees);
        server.load[i] = Some((point.load * 100.0).round() / 100.0);
    }
    let mut servers: Vec<ChartServer> = order
        .into_iter()
        .filter_map(|id| by_server.remove(&id))
        .collect();
    servers.sort_by(|a, b| a.label.cmp(&b.label));
    ChartData {
        times: times.into_iter().map(|t| t / 1000).collect(),
        servers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_app::admin::views::{MeetingAt, ServerAt};
    use switchboard_domain::ids::ServerId;
    use switchboard_domain::tenant::{TenantLimits, TenantPolicy};

    fn server(id: &str, state: &str, online: bool) -> ServerView {
        ServerView {
            id: id.to_owned(),
            url: format!("http://{id}.example.org:8080/bigbluebutton/"),
            tag: None,
            load_multiplier: 1.0,
            checksum: None,
            state: state.to_owned(),
            online,
            meetings: 2,
            attendees: 7,
            load: 3.25,
            metrics_url: None,
            metrics_state: "not_configured".to_owned(),
            cpu_percent: Some(41.6),
            memory_percent: None,
            metrics_error: None,
            metrics_read_at_ms: None,
            over_limit: false,
            agent: false,
            agent_version: None,
            agent_interval_ms: None,
            agent_away: false,
            heard_at_ms: None,
        }
    }

    #[test]
    fn a_card_shows_the_server_with_its_last_sample_and_health_age() {
        let id = ServerId::new();
        let view = server(&id.to_string(), "cordoned", true);
        let sample = ServerSample {
            video: 4,
            polled_at_ms: 95_000,
            ..ServerSample::new(id)
        };
        let since = HashMap::from([(id.to_string(), 100_000 - 7_200_000)]);
        let cards = server_cards(&[view], &[sample], &since, 100_000);
        let card = &cards[0];
        assert_eq!(card.host, format!("{id}.example.org:8080"));
        assert_eq!(card.health(), "online");
        assert_eq!(card.since.as_deref(), Some("2 h ago"));
        assert_eq!((card.meetings, card.attendees, card.video), (2, 7, Some(4)));
        assert_eq!(card.load, "3.2");
        assert_eq!(card.cpu.as_deref(), Some("42%"));
        assert_eq!(card.memory, None);
        assert_eq!(card.metrics_state, "not configured");
        assert_eq!(card.source, "poll");
        assert_eq!(card.last_heard.as_deref(), Some("5 s ago"));
    }

    #[test]
    fn an_agent_server_is_heard_by_its_heartbeats_and_a_never_polled_one_not_at_all() {
        let mut agent = server("a", "enabled", true);
        agent.agent = true;
        agent.heard_at_ms = Some(40_000);
        let never = server("b", "disabled", false);
        let cards = server_cards(&[agent, never], &[], &HashMap::new(), 100_000);
        assert_eq!(cards[0].source, "agent");
        assert_eq!(cards[0].last_heard.as_deref(), Some("1 min ago"));
        assert_eq!(cards[1].last_heard, None);
        assert_eq!(cards[1].video, None);
        assert_eq!(cards[1].health(), "offline");
    }

    #[test]
    fn totals_count_states_health_and_figures() {
        let cards = server_cards(
            &[
                server("a", "enabled", true),
                server("b", "cordoned", true),
                server("c", "disabled", false),
            ],
            &[],
            &HashMap::new(),
            0,
        );
        assert_eq!(
            totals(&cards),
            PoolTotals {
                servers: 3,
                online: 2,
                enabled: 1,
                cordoned: 1,
                disabled: 1,
                meetings: 6,
                attendees: 21,
                video: 0,
            }
        );
    }

    fn tenant(name: &str, running: u64, max: Option<u64>) -> TenantView {
        TenantView {
            name: name.to_owned(),
            api_path: format!("/t/{name}/bigbluebutton/api"),
            secrets: vec![],
            required_tags: vec![],
            limits: TenantLimits {
                max_meetings: max,
                ..TenantLimits::default()
            },
            policy: TenantPolicy::default(),
            running_meetings: running,
            stats_token: false,
            retention_days: None,
            recordings_store: None,
        }
    }

    #[test]
    fn tenants_at_eighty_percent_of_their_limit_are_near_it_fullest_first() {
        let gauges = tenant_gauges(&[
            tenant("free", 50, None),
            tenant("calm", 7, Some(10)),
            tenant("busy", 8, Some(10)),
            tenant("full", 3, Some(0)),
        ]);
        let shown: Vec<(&str, Option<u64>, bool)> = gauges
            .iter()
            .map(|g| (g.name.as_str(), g.percent, g.near))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("full", Some(100), true),
                ("busy", Some(80), true),
                ("calm", Some(70), false),
                ("free", None, false),
            ]
        );
    }

    #[test]
    fn the_pool_at_a_moment_counts_the_runs_then_running_per_server() {
        let cluster = ClusterAt {
            at: chrono::DateTime::from_timestamp_millis(0).unwrap(),
            position: 9,
            servers: vec![
                ServerAt {
                    id: "a".into(),
                    url: "http://a.example.org/bigbluebutton/".into(),
                    state: "enabled".into(),
                    online: true,
                    removed: false,
                },
                ServerAt {
                    id: "gone".into(),
                    url: "http://gone.example.org/".into(),
                    state: "disabled".into(),
                    online: false,
                    removed: true,
                },
            ],
            meetings: vec![
                MeetingAt {
                    tenant: "default".into(),
                    meeting_id: "m1".into(),
                    server_id: Some("a".into()),
                    running: true,
                },
                MeetingAt {
                    tenant: "default".into(),
                    meeting_id: "m2".into(),
                    server_id: Some("a".into()),
                    running: false,
                },
            ],
        };
        let cards = cards_at(&cluster);
        assert_eq!(cards.len(), 1, "removed servers are not shown");
        assert_eq!(
            (cards[0].host.as_str(), cards[0].meetings),
            ("a.example.org", 1)
        );
    }

    #[test]
    fn attendees_are_read_from_the_listed_meeting_only() {
        let xml = "<meeting><meetingID>x</meetingID><internalMeetingID>run-1</internalMeetingID>\
            <attendees><attendee><fullName>Ann &amp; Bo</fullName><role>MODERATOR</role>\
            <isListeningOnly>false</isListeningOnly><hasVideo>true</hasVideo></attendee>\
            <attendee><fullName>Cy</fullName><role>VIEWER</role><isListeningOnly>true</isListeningOnly>\
            <hasVideo>false</hasVideo></attendee></attendees></meeting>\
            <meeting><attendees><attendee><fullName>Other</fullName></attendee></attendees>\
            <internalMeetingID>run-2</internalMeetingID></meeting>";
        let found = attendees_in(xml, "run-1");
        assert_eq!(
            found,
            vec![
                Attendee {
                    name: "Ann & Bo".into(),
                    role: "MODERATOR".into(),
                    video: true,
                    listening_only: false
                },
                Attendee {
                    name: "Cy".into(),
                    role: "VIEWER".into(),
                    video: false,
                    listening_only: true
                },
            ]
        );
        assert_eq!(attendees_in(xml, "run-2").len(), 1, "listed before its id");
        assert!(attendees_in(xml, "run-3").is_empty());
        assert!(attendees_in("<meeting><attendees><attendee>", "run-1").is_empty());
    }

    #[test]
    fn chart_data_aligns_every_server_on_shared_minutes() {
        let a = ServerId::new();
        let b = ServerId::new();
        let point = |server, at_ms, meetings| SeriesPoint {
            server_id: server,
            at_ms,
            online: true,
            meetings,
            attendees: meetings * 3,
            video: 0,
            load: meetings as f64 / 3.0,
            cpu_percent: None,
            memory_percent: None,
        };
        let labels = HashMap::from([(a.to_string(), "a.example".to_owned())]);
        let offline = SeriesPoint {
            online: false,
            ..point(b, 120_000, 9)
        };
        let data = chart_data(
            &[
                point(a, 60_000, 1),
                point(b, 60_000, 2),
                point(a, 120_000, 3),
                offline,
            ],
            &labels,
        );
        assert_eq!(data.times, vec![60, 120]);
        let labels: Vec<&str> = data.servers.iter().map(|s| s.label.as_str()).collect();
        let mut sorted = labels.clone();
        sorted.sort_unstable();
        assert_eq!(labels, sorted, "servers in the order of their labels");
        let of = |label: &str| data.servers.iter().find(|s| s.label == label).unwrap();
        assert_eq!(of("a.example").meetings, vec![Some(1), Some(3)]);
        assert_eq!(of("a.example").load, vec![Some(0.33), Some(1.0)]);
        let unknown = of(&b.to_string());
        assert_eq!(
            unknown.attendees,
            vec![Some(6), None],
            "unknown servers by id"
        );
    }

    #[test]
    fn times_read_as_people_say_them() {
        assert_eq!(ago(0, 59_999), "59 s ago");
        assert_eq!(ago(0, 60_000), "1 min ago");
        assert_eq!(ago(0, 86_400_000 * 3), "3 d ago");
        assert_eq!(ago(10, 0), "0 s ago", "a clock step back is now");
        assert_eq!(moment(0), "1970-01-01 00:00:00 UTC");
    }
}
