//! The node agents' calls in the admin API: register a server, push a
//! heartbeat, go away. Only node tokens (bound to their server) and admin
//! tokens may call them.

use super::api::{AdminError, Answer, Done, Tag, TokenAuth};
use super::model::{AgentAck, AgentHeartbeat, AgentLeave, AgentRegistered, AgentRegistration};
use poem_openapi::OpenApi;
use poem_openapi::payload::Json;
use std::sync::Arc;
use switchboard_app::admin::Failure;
use switchboard_app::agent::{AgentService, Heartbeat, Registration};
use switchboard_domain::ids::ServerId;
use switchboard_domain::server_metrics::CpuCounters;
use switchboard_domain::token::TokenScope;

/// The longest `api_error` kept.
const MAX_API_ERROR: usize = 500;

fn server_id(id: &str) -> Result<ServerId, AdminError> {
    id.parse().map_err(|_| {
        Failure::Invalid(format!(
            "`{id}` is not a server id (the id registration answered)"
        ))
        .into()
    })
}

/// Seconds as the milliseconds the use case takes.
fn interval_ms(secs: f64) -> Result<u64, AdminError> {
    if !secs.is_finite() || secs <= 0.0 {
        return Err(Failure::Invalid("interval_secs must be a positive number".into()).into());
    }
    Ok((secs * 1000.0).round().min(u64::MAX as f64) as u64)
}

/// The heartbeat as the use case takes it.
fn heartbeat(body: AgentHeartbeat) -> Result<Heartbeat, AdminError> {
    let interval_ms = interval_ms(body.interval_secs)?;
    let meetings = match (body.meetings_xml, body.api_error) {
        (Some(xml), _) => Ok(xml),
        (None, Some(error)) => Err(error.chars().take(MAX_API_ERROR).collect()),
        (None, None) => {
            return Err(Failure::Invalid(
                "a heartbeat carries `meetings_xml` (the server's getMeetings answer) or `api_error`"
                    .into(),
            )
            .into());
        }
    };
    let cpu = match body.cpu {
        Some(cpu) if cpu.busy_seconds.is_finite() && cpu.total_seconds.is_finite() => {
            Some(CpuCounters {
                busy_seconds: cpu.busy_seconds,
                total_seconds: cpu.total_seconds,
            })
        }
        Some(_) => return Err(Failure::Invalid("cpu counters must be numbers".into()).into()),
        None => None,
    };
    let memory_percent = body
        .memory_percent
        .filter(|percent| percent.is_finite())
        .map(|percent| percent.clamp(0.0, 100.0));
    Ok(Heartbeat {
        server: server_id(&body.server)?,
        version: body.version,
        interval_ms,
        meetings,
        listed_ago_ms: body.listed_ago_ms,
        cpu,
        memory_percent,
    })
}

/// The node agents' calls.
pub struct AgentsApi;

#[OpenApi]
impl AgentsApi {
    /// Register the agent's server: added (with the tag, multiplier and
    /// enabled state given) when its URL is new, found by URL otherwise.
    /// A node token is bound to the server it registers.
    #[oai(
        path = "/agent/register",
        method = "post",
        tag = "Tag::Agents",
        operation_id = "agent_register"
    )]
    async fn register(
        &self,
        auth: TokenAuth,
        agents: poem::web::Data<&Arc<AgentService>>,
        body: Json<AgentRegistration>,
    ) -> Answer<AgentRegistered> {
        let principal = auth.require(TokenScope::Node)?;
        let body = body.0;
        let report = match body.interval_secs {
            Some(secs) => Some((body.version.unwrap_or_default(), interval_ms(secs)?)),
            None => None,
        };
        let registered = agents
            .register(
                principal,
                Registration {
                    url: body.url,
                    secret: body.secret,
                    tag: body.tag,
                    load_multiplier: body.load_multiplier,
                    enable: body.enable,
                    add: body.add.unwrap_or(true),
                    report,
                },
            )
            .await?;
        Ok(Json(AgentRegistered {
            server: registered.server.to_string(),
            added: registered.added,
        }))
    }

    /// Push a heartbeat: the server's own getMeetings answer, CPU counters
    /// and memory. Appends events only when something changed.
    #[oai(
        path = "/agent/heartbeat",
        method = "post",
        tag = "Tag::Agents",
        operation_id = "agent_heartbeat"
    )]
    async fn heartbeat(
        &self,
        auth: TokenAuth,
        agents: poem::web::Data<&Arc<AgentService>>,
        body: Json<AgentHeartbeat>,
    ) -> Answer<AgentAck> {
        let principal = auth.require(TokenScope::Node)?;
        let outcome = agents.heartbeat(principal, heartbeat(body.0)?).await?;
        Ok(Json(AgentAck {
            online: outcome.online,
            events: outcome.events as u64,
        }))
    }

    /// The agent is stopping: its server takes no new meetings until the
    /// agent is back, and is not marked offline meanwhile.
    #[oai(
        path = "/agent/leave",
        method = "post",
        tag = "Tag::Agents",
        operation_id = "agent_leave"
    )]
    async fn leave(
        &self,
        auth: TokenAuth,
        agents: poem::web::Data<&Arc<AgentService>>,
        body: Json<AgentLeave>,
    ) -> Result<Done, AdminError> {
        let principal = auth.require(TokenScope::Node)?;
        agents.leave(principal, server_id(&body.server)?).await?;
        Ok(Done::NoContent)
    }
}
