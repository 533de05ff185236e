//! The calls that go to the server of one running meeting: join, end,
//! isMeetingRunning, and those relayed unchanged (getMeetingInfo,
//! sendChatMessage, insertDocument), with the lookups they share.

use super::{ApiRequest, CallError, MeetingService};
use crate::backend::Answer;
use crate::lifecycle::{disable_if_drained, end_run};
use crate::records::{MeetingRecord, ServerRecord};
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
            .call(
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
            .call(
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
            .call(&server, "end", &request.forwarded_query(), None)
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
        let (_, server) = self
            .meeting_and_server(&request.tenant, &meeting_id)
            .await?;
        let query = self.tenant_query(request).await?;
        // BBB reads `redirect` with Java's Boolean.parseBoolean: any value but
        // `true` asks for the XML answer.
        let wants_xml = request
            .params
            .non_empty("redirect")
            .is_some_and(|value| !value.eq_ignore_ascii_case("true"));
        if wants_xml {
            let answer = self.backends.call(&server, "join", &query, None).await?;
            return Ok(JoinOutcome::Answer(answer));
        }
        // Counted only where an attendee limit needs it: not on every join.
        if request
            .tenant_config
            .as_ref()
            .is_some_and(|tenant| tenant.limits.max_attendees.is_some())
        {
            self.routing.note_join(&request.tenant, server.id);
        }
        Ok(JoinOutcome::Redirect(
            self.backends.target(&server).signed_url("join", &query),
        ))
    }

    /// The query to forward: the client's as it came, or rebuilt after the
    /// tenant's join policy changed it; refused when the tenant's meetings
    /// hold as many attendees as it may.
    async fn tenant_query<'a>(&self, request: &'a ApiRequest) -> Result<Cow<'a, str>, CallError> {
        let Some(tenant) = &request.tenant_config else {
            return Ok(Cow::Borrowed(&request.raw_query));
        };
        if let Some(limit) = tenant.limits.max_attendees {
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
        if tenant.policy.apply_join(&mut params) {
            Ok(Cow::Owned(params.to_query()))
        } else {
            Ok(Cow::Borrowed(&request.raw_query))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{BackendCall, ScriptedBackend, answers};
    use crate::testing::{NOW_MS, World, asked, ended, request, url};
    use switchboard_domain::server::{ServerCommand, ServerEvent};

    const END: &str = "meetingID=room&password=mp";

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
