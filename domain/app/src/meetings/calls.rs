//! The calls that go to the server of one running meeting: join, end,
//! isMeetingRunning, and those relayed unchanged (getMeetingInfo,
//! sendChatMessage, insertDocument), with the lookups they share.

use super::{ApiRequest, CallError, MeetingService};
use crate::backend::Answer;
use crate::lifecycle::{disable_if_drained, end_run};
use crate::records::{MeetingRecord, ServerRecord};
use crate::routing::JoinKey;
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::ids::{MeetingId, TenantId};
use switchboard_domain::meeting::EndReason;
use switchboard_domain::server::ServerState;

/// Whether a server may serve its existing meetings (joins, end, info):
/// known, online and not disabled. Cordoned servers still serve them.
pub fn serving(server: &Arc<ServerRecord>) -> bool {
    server.online && server.state != ServerState::Disabled
}

/// Where a join goes.
#[derive(Debug)]
pub enum JoinOutcome {
    /// Send the client here (a signed URL of the meeting's server).
    Redirect(String),
    /// The server's XML answer (`redirect=false`).
    Answer(Answer),
}

impl MeetingService {
    /// The running meeting of a tenant, if any.
    pub async fn running_meeting(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<Option<Arc<MeetingRecord>>, CallError> {
        let record = self.routing.meeting(tenant, meeting_id).await?;
        Ok(record.filter(|record| record.running))
    }

    /// The running meeting and its server, or the error for a missing one.
    pub async fn meeting_and_server(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
    ) -> Result<(Arc<MeetingRecord>, Arc<ServerRecord>), CallError> {
        let record = self
            .running_meeting(tenant, meeting_id)
            .await?
            .ok_or(CallError::NotFound)?;
        let server = self
            .routing
            .server(record.run.server_id)
            .filter(serving)
            .ok_or(CallError::ServerUnavailable)?;
        Ok((record, server))
    }

    /// Forwards the call unchanged to the meeting's server (getMeetingInfo,
    /// sendChatMessage, insertDocument).
    pub async fn relay(&self, request: &ApiRequest) -> Result<Answer, CallError> {
        let (_, server) = self
            .meeting_and_server(&request.tenant, &request.meeting_id()?)
            .await?;
        Ok(self
            .backends
            .call_to_relay(
                &server,
                &request.call,
                &request.forwarded_query(),
                request.xml_body.as_ref(),
            )
            .await?)
    }

    /// `isMeetingRunning`: the server's answer, or `None` (not running) for
    /// an unknown meeting or an unreachable server, never an error.
    pub async fn is_meeting_running(
        &self,
        request: &ApiRequest,
    ) -> Result<Option<Answer>, CallError> {
        let meeting_id = request.meeting_id()?;
        let Some(record) = self.running_meeting(&request.tenant, &meeting_id).await? else {
            return Ok(None);
        };
        let Some(server) = self.routing.server(record.run.server_id).filter(serving) else {
            return Ok(None);
        };
        match self
            .backends
            .call_to_relay(
                &server,
                "isMeetingRunning",
                &request.forwarded_query(),
                None,
            )
            .await
        {
            Ok(answer) => Ok(Some(answer)),
            Err(err) => {
                tracing::warn!(server = %server.id, error = %err, "isMeetingRunning: server failed");
                Ok(None)
            }
        }
    }

    /// `end`: forwarded; once the server has ended it (or no longer knows
    /// it), the meeting is recorded as ended.
    pub async fn end(
        &self,
        request: &ApiRequest,
        metadata: &EventMetadata,
    ) -> Result<Answer, CallError> {
        let meeting_id = request.meeting_id()?;
        let record = self
            .running_meeting(&request.tenant, &meeting_id)
            .await?
            .ok_or(CallError::NotFound)?;
        let Some(server) = self.routing.server(record.run.server_id) else {
            // The server left the pool: the meeting is gone with it.
            self.record_ended(&record, EndReason::GoneFromServer, metadata)
                .await?;
            return Err(CallError::NotFound);
        };
        let answer = self
            .backends
            .call_to_relay(&server, "end", &request.forwarded_query(), None)
            .await?;
        let gone = answer.summary.is_success() || answer.summary.message_key() == Some("notFound");
        if gone {
            let reason = if answer.summary.is_success() {
                EndReason::EndCalled
            } else {
                EndReason::GoneFromServer
            };
            self.record_ended(&record, reason, metadata).await?;
        }
        Ok(answer)
    }

    /// Records the end of a meeting's current run; a cordoned server left
    /// without meetings is disabled.
    async fn record_ended(
        &self,
        record: &MeetingRecord,
        reason: EndReason,
        metadata: &EventMetadata,
    ) -> Result<(), CallError> {
        end_run(
            &self.executor,
            record,
            reason,
            self.clock.now_ms(),
            metadata,
        )
        .await
        .map_err(|err| match err {
            crate::executor::CommandError::Store(err) => CallError::Store(err),
            crate::executor::CommandError::Rejected(err) => CallError::Internal(err.to_string()),
        })?;
        disable_if_drained(
            self.store.as_ref(),
            &self.executor,
            record.run.server_id,
            metadata,
        )
        .await?;
        Ok(())
    }

    /// `join`: the signed URL of the meeting's server with every client
    /// parameter forwarded byte for byte (or as the tenant's join policy
    /// rewrote them), or the server's XML with `redirect=false`.
    pub async fn join(&self, request: &ApiRequest) -> Result<JoinOutcome, CallError> {
        let meeting_id = request.meeting_id()?;
        if request.params.non_empty("fullName").is_none() {
            return Err(CallError::MissingParam {
                key: "missingParamFullName",
                message: "You must specify a name for the attendee who will be joining the meeting.",
            });
        }
        let (record, server) = self
            .meeting_and_server(&request.tenant, &meeting_id)
            .await?;
        // Counted only where an attendee limit needs it: not on every join.
        let attendee = request
            .tenant_config
            .as_ref()
            .is_some_and(|tenant| tenant.limits.max_attendees.is_some())
            .then(|| JoinKey::of(&record.run.internal_id, &request.params));
        let query = self.tenant_query(request, attendee.as_ref()).await?;
        // BBB reads `redirect` with Java's Boolean.parseBoolean: any value but
        // `true` asks for the XML answer.
        let wants_xml = request
            .params
            .non_empty("redirect")
            .is_some_and(|value| !value.eq_ignore_ascii_case("true"));
        if wants_xml {
            let answer = self.backends.call(&server, "join", &query, None).await?;
            if let Some(attendee) = &attendee
                && answer.summary.is_success()
            {
                self.routing.note_join(&request.tenant, server.id, attendee);
            }
            return Ok(JoinOutcome::Answer(answer));
        }
        if let Some(attendee) = &attendee {
            self.routing.note_join(&request.tenant, server.id, attendee);
        }
        Ok(JoinOutcome::Redirect(
            self.backends.target(&server).signed_url("join", &query),
        ))
    }

    /// The query to forward: the client's as it came, or rebuilt after the
    /// tenant's join policy changed it; refused when the tenant's meetings
    /// hold as many attendees as it may (`attendee`: who joins, given when
    /// the tenant has an attendee limit).
    async fn tenant_query<'a>(
        &self,
        request: &'a ApiRequest,
        attendee: Option<&JoinKey>,
    ) -> Result<Cow<'a, str>, CallError> {
        let Some(tenant) = &request.tenant_config else {
            if self.policy.join.is_empty() {
                return Ok(Cow::Borrowed(&request.raw_query));
            }
            let mut params = request.params.clone();
            return Ok(if self.policy.apply_join(&mut params) {
                Cow::Owned(params.to_query())
            } else {
                Cow::Borrowed(&request.raw_query)
            });
        };
        // An attendee already counted (a replayed URL, a rejoin) takes no
        // further place.
        if let Some(limit) = tenant.limits.max_attendees
            && let Some(attendee) = attendee
            && !self.routing.join_pending(&request.tenant, attendee)
        {
            let runs: HashSet<String> = self
                .store
                .running_runs_of(&request.tenant)
                .await?
                .into_iter()
                .collect();
            if self.routing.attendees_of_tenant(&request.tenant, &runs) >= limit {
                return Err(CallError::MaxParticipants(limit));
            }
        }
        let mut params = request.params.clone();
        // As for create: tenant defaults, operator rules, tenant rules.
        let defaults = tenant.policy.apply_join_defaults(&mut params);
        let global = self.policy.apply_join(&mut params);
        if tenant.policy.apply_join(&mut params) || global || defaults {
            Ok(Cow::Owned(params.to_query()))
        } else {
            Ok(Cow::Borrowed(&request.raw_query))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::RequestBody;
    use crate::memory::answers::Reply;
    use crate::memory::{BackendCall, ScriptedBackend, answers};
    use crate::ports::prelude::*;
    use crate::records::ServerSample;
    use crate::testing::{NOW_MS, World, asked, ended, given, meeting_id, request, secret, url};
    use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, sign};
    use switchboard_domain::ids::{ServerId, meeting_stream};
    use switchboard_domain::meeting::{Meeting, MeetingCommand, MeetingRun};
    use switchboard_domain::server::{ServerCommand, ServerEvent};
    use switchboard_domain::tenant::{
        ParamRule, Tenant, TenantCommand, TenantConfig, TenantLimits, TenantPolicy, tenant_stream,
    };

    const END: &str = "meetingID=room&password=mp";

    fn unexpected(url: &str, call: &str) -> Reply {
        panic!("unexpected call {call} to {url}")
    }

    /// A backend no test expects to be called.
    fn silent() -> Arc<ScriptedBackend> {
        Arc::new(ScriptedBackend::new(|target, call, _| {
            unexpected(target.url, call)
        }))
    }

    /// The URL a join on server `name` redirects to.
    fn signed_join(name: &str, query: &str) -> String {
        format!(
            "{}api/join?{query}&checksum={}",
            url(name),
            sign(ChecksumAlgorithm::Sha1, "join", query, &secret(name))
        )
    }

    fn redirect(outcome: Result<JoinOutcome, CallError>) -> String {
        match outcome {
            Ok(JoinOutcome::Redirect(to)) => to,
            other => panic!("a redirect: {other:?}"),
        }
    }

    /// Given: the tenant `acme` with these limits and join rules, as the
    /// facade hands its configuration to the use cases.
    async fn acme(world: &World, limits: TenantLimits, join: Vec<ParamRule>) -> Arc<TenantConfig> {
        let stream = tenant_stream("acme");
        let commands = [
            TenantCommand::Create {
                name: "acme".into(),
                secret: "acme-secret-1".into(),
            },
            TenantCommand::SetLimits(limits),
            TenantCommand::SetPolicy(TenantPolicy {
                join,
                ..TenantPolicy::default()
            }),
        ];
        for command in &commands {
            world
                .executor
                .execute::<Tenant>(&stream, command, &given())
                .await
                .unwrap();
        }
        Arc::new(world.store.tenant("acme").await.unwrap().unwrap())
    }

    /// Given: a meeting of `tenant` running on `server`.
    async fn tenant_meeting(
        world: &World,
        tenant: &TenantId,
        id: &str,
        internal_id: &str,
        server: ServerId,
    ) {
        let command = MeetingCommand::RecordCreated {
            tenant: tenant.clone(),
            meeting_id: meeting_id(id),
            name: id.to_owned(),
            run: MeetingRun {
                internal_id: internal_id.to_owned(),
                server_id: server,
                create_time_ms: NOW_MS,
                recording_ready_url: None,
                callbacks: None,
            },
        };
        world
            .executor
            .execute::<Meeting>(&meeting_stream(tenant, &meeting_id(id)), &command, &given())
            .await
            .unwrap();
    }

    /// A request signed by the tenant `config` names.
    fn tenant_request(call: &str, query: &str, config: &Arc<TenantConfig>) -> ApiRequest {
        ApiRequest {
            tenant: TenantId(config.name.clone()),
            tenant_config: Some(config.clone()),
            signed_with: None,
            ..request(call, query)
        }
    }

    fn join_xml() -> String {
        "<response><returncode>SUCCESS</returncode><messageKey>successfullyJoined</messageKey>\
         <message>You have joined successfully.</message><meeting_id>room-1</meeting_id>\
         <user_id>w_1</user_id><auth_token>t</auth_token><session_token>s</session_token>\
         <url>https://b.example/html5client/join?sessionToken=s</url></response>"
            .to_owned()
    }

    #[tokio::test]
    async fn join_redirects_to_the_signed_url_of_the_meetings_server_with_the_query_as_given() {
        let world = World::new();
        world.server("a").await;
        let b = world.server("b").await;
        world.meeting("room", "room-1", b, NOW_MS).await;
        let backend = silent();
        let meetings = world.meetings(&backend).await;
        // Encoded as the client chose (`+`, lower-case hex): forwarded byte
        // for byte, as the checksum the client computed covers it so.
        let query = "meetingID=room&fullName=J%c3%bcrgen+M%C3%BCller&password=ap\
                     &userdata-bbb_custom_style=a%2Cb&redirect=TRUE";

        let to = redirect(meetings.join(&request("join", query)).await);

        assert_eq!(to, signed_join("b", query));
        assert_eq!(backend.calls(), vec![], "a redirect asks no server");
    }

    #[tokio::test]
    async fn join_with_redirect_false_relays_the_servers_xml() {
        for value in ["false", "no", "0"] {
            let world = World::new();
            world.server("a").await;
            let b = world.server("b").await;
            world.meeting("room", "room-1", b, NOW_MS).await;
            let backend = Arc::new(ScriptedBackend::new(|target, call, _| {
                match (target.url == url("b"), call) {
                    (true, "join") => answers::body(join_xml()),
                    _ => unexpected(target.url, call),
                }
            }));
            let meetings = world.meetings(&backend).await;
            let query = format!("meetingID=room&fullName=Ann+Lee&password=ap&redirect={value}");

            let outcome = meetings.join(&request("join", &query)).await;

            let Ok(JoinOutcome::Answer(answer)) = outcome else {
                panic!("redirect={value}: the server's XML: {outcome:?}");
            };
            assert_eq!(answer.body, join_xml().into_bytes(), "redirect={value}");
            assert_eq!(
                answer.summary.message_key(),
                Some("successfullyJoined"),
                "redirect={value}"
            );
            assert_eq!(
                backend.calls(),
                vec![BackendCall::new(url("b"), "join", query.as_str())],
                "redirect={value}"
            );
        }
    }

    #[tokio::test]
    async fn joins_beyond_the_tenants_attendee_limit_are_refused_until_the_pending_ones_expire() {
        let world = World::new();
        let a = world.server("a").await;
        let acme = acme(
            &world,
            TenantLimits {
                max_meetings: None,
                max_attendees: Some(2),
            },
            vec![],
        )
        .await;
        tenant_meeting(&world, &TenantId("acme".into()), "room", "room-1", a).await;
        let backend = silent();
        let meetings = world.meetings(&backend).await;
        let join = |name: &str| {
            tenant_request(
                "join",
                &format!("meetingID=room&fullName={name}&password=ap"),
                &acme,
            )
        };

        assert_eq!(
            redirect(meetings.join(&join("Ann")).await),
            signed_join("a", "meetingID=room&fullName=Ann&password=ap")
        );
        redirect(meetings.join(&join("Bob")).await);
        let refused = meetings.join(&join("Cid")).await;
        assert!(
            matches!(refused, Err(CallError::MaxParticipants(2))),
            "{refused:?}"
        );
        let others = meetings
            .join(&request("join", "meetingID=room&fullName=Dan&password=ap"))
            .await;
        assert!(
            matches!(others, Err(CallError::NotFound)),
            "acme's meeting is not the default tenant's: {others:?}"
        );

        world.clock.advance_ms(crate::routing::PENDING_JOIN_MS);
        redirect(meetings.join(&join("Cid")).await);
        assert_eq!(backend.calls(), vec![]);
    }

    #[tokio::test]
    async fn joins_answered_with_the_servers_xml_count_toward_the_tenants_attendee_limit() {
        let world = World::new();
        let a = world.server("a").await;
        let acme = acme(
            &world,
            TenantLimits {
                max_meetings: None,
                max_attendees: Some(2),
            },
            vec![],
        )
        .await;
        tenant_meeting(&world, &TenantId("acme".into()), "room", "room-1", a).await;
        let backend = Arc::new(ScriptedBackend::new(|target, call, _| match call {
            "join" => answers::body(join_xml()),
            _ => unexpected(target.url, call),
        }));
        let meetings = world.meetings(&backend).await;
        let join = |name: &str| {
            tenant_request(
                "join",
                &format!("meetingID=room&fullName={name}&password=ap&redirect=false"),
                &acme,
            )
        };

        for name in ["Ann", "Bob"] {
            let outcome = meetings.join(&join(name)).await;
            assert!(
                matches!(&outcome, Ok(JoinOutcome::Answer(answer)) if answer.summary.is_success()),
                "{name}: {outcome:?}"
            );
        }
        let refused = meetings.join(&join("Cid")).await;

        assert!(
            matches!(refused, Err(CallError::MaxParticipants(2))),
            "two joins sent since the last poll, as with redirects: {refused:?}"
        );
        assert_eq!(backend.calls().len(), 2);
    }

    #[tokio::test]
    async fn a_tenants_polled_attendees_count_toward_its_limit_and_no_other_tenants() {
        let world = World::new();
        let a = world.server("a").await;
        let acme = acme(
            &world,
            TenantLimits {
                max_meetings: None,
                max_attendees: Some(2),
            },
            vec![],
        )
        .await;
        tenant_meeting(&world, &TenantId("acme".into()), "room", "room-1", a).await;
        world.meeting("other", "other-1", a, NOW_MS).await;
        let mut sample = ServerSample::new(a);
        sample.changed_at_ms = NOW_MS;
        sample.meetings_xml = [
            answers::meeting_element("room", "room-1", NOW_MS, 1),
            answers::meeting_element("other", "other-1", NOW_MS, 5),
        ]
        .concat()
        .into();
        world.store.put_server_samples(&[sample]).await.unwrap();
        let backend = silent();
        let meetings = world.meetings(&backend).await;
        world.clock.advance_ms(1_000);
        let join = |name: &str| {
            tenant_request(
                "join",
                &format!("meetingID=room&fullName={name}&password=ap"),
                &acme,
            )
        };

        redirect(meetings.join(&join("Ann")).await);
        let refused = meetings.join(&join("Bob")).await;

        assert!(
            matches!(refused, Err(CallError::MaxParticipants(2))),
            "1 polled and 1 sent since: {refused:?}"
        );
    }

    /// Issue 15.A3: replaying one join URL counts its attendee once; other
    /// attendees still join up to the limit, and the replay itself is not
    /// refused.
    #[tokio::test]
    async fn a_replayed_join_url_reserves_one_place() {
        let world = World::new();
        let a = world.server("a").await;
        let acme = acme(
            &world,
            TenantLimits {
                max_meetings: None,
                max_attendees: Some(2),
            },
            vec![],
        )
        .await;
        tenant_meeting(&world, &TenantId("acme".into()), "room", "room-1", a).await;
        let backend = silent();
        let meetings = world.meetings(&backend).await;
        let join = |query: &str| tenant_request("join", query, &acme);
        let ann = "meetingID=room&fullName=Ann&password=ap";
        for _ in 0..10 {
            redirect(meetings.join(&join(ann)).await);
        }
        let with_user_id = "meetingID=room&fullName=Bob&role=VIEWER&userID=u-7";
        for name in ["Bob", "Robert"] {
            let query = with_user_id.replace("Bob", name);
            redirect(meetings.join(&join(&query)).await);
        }
        let refused = meetings
            .join(&join("meetingID=room&fullName=Cy&password=ap"))
            .await;
        assert!(
            matches!(refused, Err(CallError::MaxParticipants(2))),
            "Ann and user u-7 hold the two places: {refused:?}"
        );
        world.clock.advance_ms(crate::routing::PENDING_JOIN_MS + 1);
        redirect(
            meetings
                .join(&join("meetingID=room&fullName=Cy&password=ap"))
                .await,
        );
    }

    #[tokio::test]
    async fn a_tenants_join_policy_rewrites_the_forwarded_query() {
        let world = World::new();
        let a = world.server("a").await;
        let acme = acme(
            &world,
            TenantLimits::default(),
            vec![
                ParamRule::Override {
                    param: "userdata-bbb_skip_check_audio".into(),
                    value: "true".into(),
                },
                ParamRule::Block {
                    param: "avatarURL".into(),
                },
            ],
        )
        .await;
        tenant_meeting(&world, &TenantId("acme".into()), "room", "room-1", a).await;
        let backend = Arc::new(ScriptedBackend::new(|_, call, _| match call {
            "join" => answers::body(join_xml()),
            _ => panic!("unexpected {call}"),
        }));
        let meetings = world.meetings(&backend).await;
        let query = "meetingID=room&fullName=Ann+Lee&avatarURL=https%3A%2F%2Fx.example%2Fa.png\
                     &password=ap";
        let rewritten = "meetingID=room&fullName=Ann%20Lee&password=ap\
                         &userdata-bbb_skip_check_audio=true";

        let to = redirect(meetings.join(&tenant_request("join", query, &acme)).await);
        assert_eq!(to, signed_join("a", rewritten));

        let untouched = "meetingID=room&fullName=Ann+Lee&password=ap\
                         &userdata-bbb_skip_check_audio=true";
        let to = redirect(
            meetings
                .join(&tenant_request("join", untouched, &acme))
                .await,
        );
        assert_eq!(
            to,
            signed_join("a", untouched),
            "a policy that changes nothing leaves the query as it came"
        );

        let xml = format!("{query}&redirect=false");
        meetings
            .join(&tenant_request("join", &xml, &acme))
            .await
            .unwrap();
        assert_eq!(
            backend.calls(),
            vec![BackendCall::new(
                url("a"),
                "join",
                "meetingID=room&fullName=Ann%20Lee&password=ap&redirect=false\
                 &userdata-bbb_skip_check_audio=true"
            )]
        );
    }

    #[tokio::test]
    async fn is_meeting_running_answers_none_for_an_unknown_meeting_and_asks_no_server() {
        let world = World::new();
        let a = world.server("a").await;
        world.meeting("room", "room-1", a, NOW_MS).await;
        end_room(&world).await;
        let backend = silent();
        let meetings = world.meetings(&backend).await;

        for query in ["meetingID=nowhere", "meetingID=room"] {
            let answer = meetings
                .is_meeting_running(&request("isMeetingRunning", query))
                .await
                .unwrap();
            assert!(answer.is_none(), "{query}: {answer:?}");
        }
        assert_eq!(backend.calls(), vec![]);
    }

    async fn end_room(world: &World) {
        world
            .executor
            .execute::<Meeting>(
                &meeting_stream(&TenantId::default_tenant(), &meeting_id("room")),
                &MeetingCommand::RecordEnded {
                    reason: EndReason::EndCalled,
                    at_ms: NOW_MS,
                    only_run: None,
                },
                &given(),
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn is_meeting_running_relays_the_servers_answer_and_answers_none_when_it_fails() {
        type Answering = fn() -> Reply;
        let running = || {
            answers::body(
                "<response><returncode>SUCCESS</returncode><running>true</running></response>",
            )
        };
        let cases: [(&str, Answering, bool); 4] = [
            ("answers", running, true),
            ("HTTP 502", || answers::status(502), false),
            ("timeout", answers::timeout, false),
            ("garbage", answers::garbage, false),
        ];
        for (case, answer_with, answers_back) in cases {
            let world = World::new();
            world.server("a").await;
            let b = world.server("b").await;
            world.meeting("room", "room-1", b, NOW_MS).await;
            let backend = Arc::new(ScriptedBackend::new(move |_, _, _| answer_with()));
            let meetings = world.meetings(&backend).await;

            let answer = meetings
                .is_meeting_running(&request("isMeetingRunning", "meetingID=room"))
                .await
                .unwrap();

            assert_eq!(
                answer.map(|answer| answer.body),
                answers_back.then(|| running().unwrap().body),
                "{case}"
            );
            assert_eq!(
                backend.calls(),
                vec![BackendCall::new(
                    url("b"),
                    "isMeetingRunning",
                    "meetingID=room"
                )],
                "{case}"
            );
        }
    }

    #[tokio::test]
    async fn relay_forwards_the_call_to_the_meetings_server_as_it_came() {
        let world = World::new();
        world.server("a").await;
        let b = world.server("b").await;
        world.meeting("room", "room-1", b, NOW_MS).await;
        let info = || {
            answers::body(
                "<response><returncode>SUCCESS</returncode><meetingID>room</meetingID>\
                 <internalMeetingID>room-1</internalMeetingID><running>true</running></response>",
            )
        };
        let backend = Arc::new(ScriptedBackend::new(move |target, call, _| {
            match (target.url == url("b"), call) {
                (true, "getMeetingInfo" | "insertDocument") => info(),
                _ => unexpected(target.url, call),
            }
        }));
        let meetings = world.meetings(&backend).await;
        let query = "meetingID=room&password=mp&extra=%7Ex+y";

        let answer = meetings
            .relay(&request("getMeetingInfo", query))
            .await
            .unwrap();
        let document = RequestBody {
            content_type: "application/xml".into(),
            body: bytes::Bytes::from_static(b"<modules/>"),
        };
        meetings
            .relay(&ApiRequest {
                xml_body: Some(document.clone()),
                ..request("insertDocument", "meetingID=room")
            })
            .await
            .unwrap();
        let unknown = meetings
            .relay(&request("getMeetingInfo", "meetingID=nowhere"))
            .await;

        assert_eq!(answer.body, info().unwrap().body);
        assert!(matches!(unknown, Err(CallError::NotFound)), "{unknown:?}");
        assert_eq!(
            backend.calls(),
            vec![
                BackendCall::new(url("b"), "getMeetingInfo", query),
                BackendCall {
                    body: Some(document),
                    ..BackendCall::new(url("b"), "insertDocument", "meetingID=room")
                },
            ]
        );
    }

    #[tokio::test]
    async fn end_is_forwarded_recorded_and_disables_a_drained_cordoned_server() {
        let world = World::new();
        let draining = world.server("draining").await;
        world
            .meeting("room", "room-1", draining, NOW_MS - 60_000)
            .await;
        world.on_server(draining, ServerCommand::Cordon).await;
        let backend = Arc::new(ScriptedBackend::new(|target, call, _| {
            assert_eq!((target.url, call), (url("draining").as_str(), "end"));
            answers::end_sent()
        }));
        let meetings = world.meetings(&backend).await;
        world.clock.advance_ms(1_000);
        let before = world.store.position();

        let answer = meetings.end(&request("end", END), &asked()).await.unwrap();

        assert!(answer.summary.is_success());
        assert_eq!(
            backend.calls(),
            vec![BackendCall::new(url("draining"), "end", END)]
        );
        assert_eq!(
            world.store.events_after_position(before),
            vec![
                ended("room-1", EndReason::EndCalled, NOW_MS + 1_000),
                ServerEvent::ServerDisabled.into(),
            ]
        );
        let again = meetings.end(&request("end", END), &asked()).await;
        assert!(matches!(again, Err(CallError::NotFound)), "{again:?}");
    }

    #[tokio::test]
    async fn end_of_a_meeting_its_server_no_longer_knows_is_recorded_as_gone() {
        let world = World::new();
        let id = world.server("a").await;
        world.meeting("room", "room-1", id, NOW_MS - 60_000).await;
        let backend = Arc::new(ScriptedBackend::new(|_, _, _| {
            answers::failed(
                "notFound",
                "We could not find a meeting with that meeting ID",
            )
        }));
        let meetings = world.meetings(&backend).await;
        let before = world.store.position();

        let answer = meetings.end(&request("end", END), &asked()).await.unwrap();

        assert_eq!(answer.summary.message_key(), Some("notFound"));
        assert_eq!(
            world.store.events_after_position(before),
            vec![ended("room-1", EndReason::GoneFromServer, NOW_MS)],
            "an enabled server is not disabled"
        );
    }
}
