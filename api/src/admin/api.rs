//! The admin API under `/api/v1` (poem-openapi): servers, meetings, the event
//! log, cluster status and tokens, behind bearer tokens with scopes. Errors
//! are RFC 7807 problem documents.

use super::facade::AdminFacade;
use super::model::*;
use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi, SecurityScheme, Tags};
use std::sync::Arc;
use switchboard_app::admin::{Failure, Principal};
use switchboard_app::records::EventFilter;
use switchboard_domain::server::ServerCommand;
use switchboard_domain::token::TokenScope;

/// Problem-document helper.
pub fn problem(status: u16, title: &str, detail: impl Into<String>) -> Problem {
    Problem {
        kind: format!(
            "https://switchboard.invalid/problems/{}",
            title.to_lowercase().replace(' ', "-")
        ),
        title: title.to_owned(),
        status,
        detail: detail.into(),
    }
}

/// Every error the admin API answers with.
#[derive(Debug, ApiResponse)]
#[oai(bad_request_handler = "bad_request", display)]
pub enum AdminError {
    /// The request is malformed or a value is not allowed.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// No or unknown token.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The token's scope does not allow this.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// The thing named does not exist.
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// The request conflicts with the current state.
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The body is not JSON (`Content-Type` other than `application/json`;
    /// a request without one is read as JSON).
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// A BBB server failed.
    #[oai(status = 502, content_type = "application/problem+json")]
    BadGateway(Json<Problem>),
    /// Switchboard failed.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (Self::BadRequest(problem)
        | Self::Unauthorized(problem)
        | Self::Forbidden(problem)
        | Self::NotFound(problem)
        | Self::Conflict(problem)
        | Self::UnsupportedMediaType(problem)
        | Self::BadGateway(problem)
        | Self::Internal(problem)) = self;
        f.write_str(&problem.0.detail)
    }
}

fn bad_request(err: poem::Error) -> AdminError {
    if err.status() == poem::http::StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return AdminError::UnsupportedMediaType(Json(problem(
            415,
            "Unsupported media type",
            format!("{err}; send the body as application/json"),
        )));
    }
    AdminError::BadRequest(Json(problem(400, "Bad request", err.to_string())))
}

impl From<Failure> for AdminError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::NotFound(detail) => {
                AdminError::NotFound(Json(problem(404, "Not found", detail)))
            }
            Failure::Invalid(detail) => {
                AdminError::BadRequest(Json(problem(400, "Bad request", detail)))
            }
            Failure::Conflict(detail) => {
                AdminError::Conflict(Json(problem(409, "Conflict", detail)))
            }
            Failure::Forbidden(detail) => {
                AdminError::Forbidden(Json(problem(403, "Forbidden", detail)))
            }
            Failure::Upstream(detail) => {
                AdminError::BadGateway(Json(problem(502, "Bad gateway", detail)))
            }
            Failure::Internal(detail) => {
                AdminError::Internal(Json(problem(500, "Internal error", detail)))
            }
        }
    }
}

/// A JSON answer or a problem.
pub type Answer<T> = Result<Json<T>, AdminError>;

/// Bearer token authentication; the token's name becomes the events' actor.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_token")]
pub struct TokenAuth(Principal);

async fn check_token(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let unauthorized = || {
        poem::Error::from_string(
            "the bearer token is unknown or revoked: create one with `switchboard tokens create NAME --scope admin`",
            poem::http::StatusCode::UNAUTHORIZED,
        )
    };
    let state = req
        .data::<Arc<AdminFacade>>()
        .ok_or_else(|| poem::Error::from_status(poem::http::StatusCode::INTERNAL_SERVER_ERROR))?;
    match state.authenticate(&bearer.token).await {
        Ok(Some(principal)) => Ok(principal),
        Ok(None) => Err(unauthorized()),
        Err(failure) => Err(poem::Error::from_string(
            failure.to_string(),
            poem::http::StatusCode::INTERNAL_SERVER_ERROR,
        )),
    }
}

impl TokenAuth {
    /// The principal, when its scope covers `needed`.
    pub fn require(&self, needed: TokenScope) -> Result<&Principal, AdminError> {
        if self.0.scope.allows(needed) {
            Ok(&self.0)
        } else {
            Err(AdminError::Forbidden(Json(problem(
                403,
                "Forbidden",
                match needed {
                    TokenScope::Node => format!(
                        "token `{}` has the {} scope; agent calls need a node token (`switchboard tokens create NAME --scope node`)",
                        self.0.name,
                        self.0.scope.as_str()
                    ),
                    _ => format!(
                        "token `{}` has the {} scope; this needs {} token",
                        self.0.name,
                        self.0.scope.as_str(),
                        if needed == TokenScope::Admin {
                            "an admin"
                        } else {
                            "a read or admin"
                        }
                    ),
                },
            ))))
        }
    }
}

/// Groups of operations in the spec.
#[derive(Tags)]
pub enum Tag {
    /// The pool of BBB servers.
    Servers,
    /// Meetings Switchboard placed.
    Meetings,
    /// The append-only event log and replayed history.
    Events,
    /// The cluster at a glance.
    Cluster,
    /// Admin tokens.
    Tokens,
    /// Front-ends with their own secrets, policy, limits and server pool.
    Tenants,
    /// Callbacks owed to front-ends: delivered, pending, failed.
    Callbacks,
    /// Node agents on BBB servers: registration and heartbeats.
    Agents,
}

/// A created resource.
#[derive(Debug, ApiResponse)]
pub enum Created<T: poem_openapi::types::ToJSON + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Created(Json<T>),
}

/// An action without a body in its answer.
#[derive(Debug, ApiResponse)]
pub enum Done {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

/// The admin API.
pub struct AdminApi;

#[OpenApi]
impl AdminApi {
    /// List servers.
    #[oai(
        path = "/servers",
        method = "get",
        tag = "Tag::Servers",
        operation_id = "list_servers"
    )]
    async fn list_servers(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
    ) -> Answer<Vec<ServerView>> {
        auth.require(TokenScope::Read)?;
        Ok(Json(state.servers().await?))
    }

    /// Add a server. It starts disabled unless `enabled` is true.
    #[oai(
        path = "/servers",
        method = "post",
        tag = "Tag::Servers",
        operation_id = "add_server"
    )]
    async fn add_server(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        body: Json<NewServer>,
    ) -> Result<Created<ServerView>, AdminError> {
        let principal = auth.require(TokenScope::Admin)?;
        Ok(Created::Created(Json(
            state.add_server(body.0, principal).await?,
        )))
    }

    /// Get a server.
    #[oai(
        path = "/servers/:id",
        method = "get",
        tag = "Tag::Servers",
        operation_id = "get_server"
    )]
    async fn get_server(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        id: Path<String>,
    ) -> Answer<ServerView> {
        auth.require(TokenScope::Read)?;
        Ok(Json(state.server(&id).await?))
    }

    /// Change a server's URL, secret, tag, load multiplier or checksum algorithm.
    #[oai(
        path = "/servers/:id",
        method = "patch",
        tag = "Tag::Servers",
        operation_id = "update_server"
    )]
    async fn update_server(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        id: Path<String>,
        body: Json<ServerUpdate>,
    ) -> Answer<ServerView> {
        let principal = auth.require(TokenScope::Admin)?;
        Ok(Json(state.update_server(&id, body.0, principal).await?))
    }

    /// Let a server take new meetings.
    #[oai(
        path = "/servers/:id/enable",
        method = "post",
        tag = "Tag::Servers",
        operation_id = "enable_server"
    )]
    async fn enable(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        id: Path<String>,
    ) -> Answer<ServerView> {
        let principal = auth.require(TokenScope::Admin)?;
        Ok(Json(
            state
                .set_state(&id, ServerCommand::Enable, principal)
                .await?,
        ))
    }

    /// No new meetings; joins keep working. Becomes disabled once its last meeting ends.
    #[oai(
        path = "/servers/:id/cordon",
        method = "post",
        tag = "Tag::Servers",
        operation_id = "cordon_server"
    )]
    async fn cordon(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        id: Path<String>,
    ) -> Answer<ServerView> {
        let principal = auth.require(TokenScope::Admin)?;
        Ok(Json(
            state
                .set_state(&id, ServerCommand::Cordon, principal)
                .await?,
        ))
    }

    /// Take a server out of use: no meetings, no joins.
    #[oai(
        path = "/servers/:id/disable",
        method = "post",
        tag = "Tag::Servers",
        operation_id = "disable_server"
    )]
    async fn disable(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        id: Path<String>,
    ) -> Answer<ServerView> {
        let principal = auth.require(TokenScope::Admin)?;
        Ok(Json(
            state
                .set_state(&id, ServerCommand::Disable, principal)
                .await?,
        ))
    }

    /// Disable a server and forget its meetings so the next create places them elsewhere.
    #[oai(
        path = "/servers/:id/panic",
        method = "post",
        tag = "Tag::Servers",
        operation_id = "panic_server"
    )]
    async fn panic(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        id: Path<String>,
        body: Json<PanicOptions>,
    ) -> Answer<PanicReport> {
        let principal = auth.require(TokenScope::Admin)?;
        Ok(Json(state.panic(&id, body.0, principal).await?))
    }

    /// Remove a server; refused while meetings run unless `force=true`.
    #[oai(
        path = "/servers/:id",
        method = "delete",
        tag = "Tag::Servers",
        operation_id = "remove_server"
    )]
    async fn remove(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        id: Path<String>,
        force: Query<Option<bool>>,
    ) -> Result<Done, AdminError> {
        let principal = auth.require(TokenScope::Admin)?;
        state
            .remove(&id, force.0.unwrap_or(false), principal)
            .await?;
        Ok(Done::NoContent)
    }

    /// List meetings, optionally by server, state and tenant.
    #[oai(
        path = "/meetings",
        method = "get",
        tag = "Tag::Meetings",
        operation_id = "list_meetings"
    )]
    async fn list_meetings(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        server: Query<Option<String>>,
        #[oai(name = "state")] meeting_state: Query<Option<MeetingState>>,
        tenant: Query<Option<String>>,
    ) -> Answer<Vec<MeetingView>> {
        auth.require(TokenScope::Read)?;
        Ok(Json(
            state
                .meetings(server.0.as_deref(), meeting_state.0, tenant.0.as_deref())
                .await?,
        ))
    }

    /// Get a meeting.
    #[oai(
        path = "/meetings/:tenant/:meeting_id",
        method = "get",
        tag = "Tag::Meetings",
        operation_id = "get_meeting"
    )]
    async fn get_meeting(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        tenant: Path<String>,
        meeting_id: Path<String>,
    ) -> Answer<MeetingView> {
        auth.require(TokenScope::Read)?;
        Ok(Json(state.meeting(&tenant, &meeting_id).await?))
    }

    /// End a running meeting on its server.
    #[oai(
        path = "/meetings/:tenant/:meeting_id/end",
        method = "post",
        tag = "Tag::Meetings",
        operation_id = "end_meeting"
    )]
    async fn end_meeting(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        tenant: Path<String>,
        meeting_id: Path<String>,
    ) -> Answer<MeetingView> {
        let principal = auth.require(TokenScope::Admin)?;
        Ok(Json(
            state.end_meeting(&tenant, &meeting_id, principal).await?,
        ))
    }

    /// Read the event log, oldest first, filtered and paginated by position.
    #[oai(
        path = "/events",
        method = "get",
        tag = "Tag::Events",
        operation_id = "list_events"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn events(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        stream: Query<Option<String>>,
        #[oai(name = "type")] event_type: Query<Option<String>>,
        actor: Query<Option<String>>,
        from: Query<Option<chrono::DateTime<chrono::Utc>>>,
        to: Query<Option<chrono::DateTime<chrono::Utc>>>,
        after: Query<Option<i64>>,
        limit: Query<Option<u64>>,
    ) -> Answer<EventPage> {
        auth.require(TokenScope::Read)?;
        let filter = EventFilter {
            stream: stream.0,
            event_type: event_type.0,
            actor: actor.0,
            from: from.0,
            to: to.0,
            after: after.0.unwrap_or(0),
            limit: limit.0.unwrap_or(100),
            newest_first: false,
        };
        Ok(Json(state.events(filter).await?))
    }

    /// Servers and meetings as they were at a moment, replayed from the log.
    #[oai(
        path = "/history",
        method = "get",
        tag = "Tag::Events",
        operation_id = "cluster_at"
    )]
    async fn history(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        at: Query<chrono::DateTime<chrono::Utc>>,
    ) -> Answer<ClusterAt> {
        auth.require(TokenScope::Read)?;
        Ok(Json(state.history(at.0).await?))
    }

    /// Per server: state, online, meetings, users, largest meeting, load.
    #[oai(
        path = "/status",
        method = "get",
        tag = "Tag::Cluster",
        operation_id = "cluster_status"
    )]
    async fn status(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
    ) -> Answer<ClusterStatus> {
        auth.require(TokenScope::Read)?;
        Ok(Json(state.status().await?))
    }

    /// Tokens in force (names and scopes; never the secrets).
    #[oai(
        path = "/tokens",
        method = "get",
        tag = "Tag::Tokens",
        operation_id = "list_tokens"
    )]
    async fn tokens(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
    ) -> Answer<Vec<TokenView>> {
        auth.require(TokenScope::Admin)?;
        Ok(Json(state.tokens().await?))
    }

    /// Create a token; the answer holds the secret, shown this once.
    #[oai(
        path = "/tokens",
        method = "post",
        tag = "Tag::Tokens",
        operation_id = "create_token"
    )]
    async fn create_token(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        body: Json<NewToken>,
    ) -> Result<Created<CreatedToken>, AdminError> {
        let principal = auth.require(TokenScope::Admin)?;
        Ok(Created::Created(Json(
            state.create_token(body.0, principal).await?,
        )))
    }

    /// Revoke a token.
    #[oai(
        path = "/tokens/:name",
        method = "delete",
        tag = "Tag::Tokens",
        operation_id = "revoke_token"
    )]
    async fn revoke_token(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        name: Path<String>,
    ) -> Result<Done, AdminError> {
        let principal = auth.require(TokenScope::Admin)?;
        state.revoke_token(&name, principal).await?;
        Ok(Done::NoContent)
    }
}
