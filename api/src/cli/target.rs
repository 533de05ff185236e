//! Where the operator commands act: the local database (through the admin
//! service, as actor `cli`) or a remote instance (through its admin API, as
//! the token's name). Both answer in the admin API's shapes.

use crate::admin::callbacks::{CallbackView, callback_filter};
use crate::admin::facade::AdminFacade;
use crate::admin::model::*;
use crate::app;
use crate::config::Settings;
use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::time::Duration;
use switchboard_app::admin::{AdminService, Principal};
use switchboard_app::ports::prelude::*;
use switchboard_app::records::EventFilter;
use switchboard_domain::server::ServerCommand;
use switchboard_store::Store;

/// The actor of events the CLI records locally.
pub const CLI_ACTOR: &str = "cli";

/// The local database.
#[derive(Debug)]
pub struct Local {
    pub(super) admin: AdminFacade,
    store: Store,
    pub(super) principal: Principal,
    /// How long a retried callback delivery is attempted.
    callback_retry_for: Duration,
}

/// A remote instance's admin API.
#[derive(Debug)]
pub struct RemoteClient {
    client: reqwest::Client,
    base: url::Url,
    token: String,
}

/// Where commands act.
#[derive(Debug)]
pub enum Target {
    /// This machine's database.
    Local(Local),
    /// A remote instance (`--url`, `--token`).
    Remote(RemoteClient),
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

impl Target {
    /// Opens the database the settings name.
    pub async fn local(settings: &Settings) -> anyhow::Result<Self> {
        let store = app::open_store(settings).await?;
        let (db, executor) = app::ports_of(&store, Default::default());
        let admin = AdminFacade::new(std::sync::Arc::new(AdminService::new(
            db,
            executor,
            app::backends_of(settings),
            std::sync::Arc::new(switchboard_app::clock::SystemClock),
            settings.load,
            None,
        )));
        Ok(Target::Local(Local {
            admin,
            store,
            principal: Principal::admin(CLI_ACTOR.to_owned()),
            callback_retry_for: settings.callback_settings().retry_for,
        }))
    }

    /// The admin API of the instance at `url` (its base, e.g.
    /// `https://lb.example.org`; `/api/v1` is added unless given).
    pub fn remote(url: &str, token: &str) -> anyhow::Result<Self> {
        let mut base = url::Url::parse(url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| {
                anyhow!("`{url}` is not an http(s) URL of a Switchboard instance, e.g. https://lb.example.org")
            })?;
        base.set_query(None);
        base.set_fragment(None);
        let segments: Vec<String> = base
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default();
        let has_prefix = segments.ends_with(&["api".to_owned(), "v1".to_owned()]);
        {
            let mut path = base
                .path_segments_mut()
                .map_err(|_| anyhow!("`{url}` cannot be a base URL"))?;
            path.clear().extend(&segments);
            if !has_prefix {
                path.extend(["api", "v1"]);
            }
        }
        if token.trim().is_empty() {
            bail!("the token is empty: pass --token TOKEN or set SWITCHBOARD_TOKEN");
        }
        switchboard_workers::backend::install_crypto_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("switchboard-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Target::Remote(RemoteClient {
            client,
            base,
            token: token.trim().to_owned(),
        }))
    }

    /// Whether this acts on a remote instance.
    pub fn is_remote(&self) -> bool {
        matches!(self, Target::Remote(_))
    }

    /// Every server.
    pub async fn servers(&self) -> anyhow::Result<Vec<ServerView>> {
        match self {
            Target::Local(local) => Ok(local.admin.servers().await?),
            Target::Remote(remote) => remote.get(&["servers"], &[]).await,
        }
    }

    /// One server.
    pub async fn server(&self, id: &str) -> anyhow::Result<ServerView> {
        match self {
            Target::Local(local) => Ok(local.admin.server(id).await?),
            Target::Remote(remote) => remote.get(&["servers", id], &[]).await,
        }
    }

    /// The servers' secrets by id: only the local database has them.
    pub async fn secrets(&self) -> anyhow::Result<Option<HashMap<String, String>>> {
        match self {
            Target::Local(local) => Ok(Some(
                local
                    .store
                    .servers()
                    .await?
                    .into_iter()
                    .map(|record| (record.id.to_string(), record.settings.secret))
                    .collect(),
            )),
            Target::Remote(_) => Ok(None),
        }
    }

    /// Adds a server.
    pub async fn add_server(&self, new: NewServer) -> anyhow::Result<ServerView> {
        match self {
            Target::Local(local) => Ok(local.admin.add_server(new, &local.principal).await?),
            Target::Remote(remote) => {
                remote
                    .send(reqwest::Method::POST, &["servers"], &[], Some(&new))
                    .await
            }
        }
    }

    /// Changes a server's settings.
    pub async fn update_server(
        &self,
        id: &str,
        update: ServerUpdate,
    ) -> anyhow::Result<ServerView> {
        match self {
            Target::Local(local) => Ok(local
                .admin
                .update_server(id, update, &local.principal)
                .await?),
            Target::Remote(remote) => {
                remote
                    .send(reqwest::Method::PATCH, &["servers", id], &[], Some(&update))
                    .await
            }
        }
    }

    /// Enables, cordons or disables a server.
    pub async fn set_state(&self, id: &str, command: ServerCommand) -> anyhow::Result<ServerView> {
        match self {
            Target::Local(local) => {
                Ok(local.admin.set_state(id, command, &local.principal).await?)
            }
            Target::Remote(remote) => {
                let verb = match command {
                    ServerCommand::Enable => "enable",
                    ServerCommand::Cordon => "cordon",
                    ServerCommand::Disable => "disable",
                    other => bail!("not a state change: {other:?}"),
                };
                remote
                    .send(
                        reqwest::Method::POST,
                        &["servers", id, verb],
                        &[],
                        None::<&()>,
                    )
                    .await
            }
        }
    }

    /// Disables a server and forgets its meetings.
    pub async fn panic(&self, id: &str, options: PanicOptions) -> anyhow::Result<PanicReport> {
        match self {
            Target::Local(local) => Ok(local.admin.panic(id, options, &local.principal).await?),
            Target::Remote(remote) => {
                remote
                    .send(
                        reqwest::Method::POST,
                        &["servers", id, "panic"],
                        &[],
                        Some(&options),
                    )
                    .await
            }
        }
    }

    /// Removes a server.
    pub async fn remove(&self, id: &str, force: bool) -> anyhow::Result<()> {
        match self {
            Target::Local(local) => Ok(local.admin.remove(id, force, &local.principal).await?),
            Target::Remote(remote) => {
                let query = [("force", force.to_string())];
                remote
                    .send_empty(reqwest::Method::DELETE, &["servers", id], &query)
                    .await
            }
        }
    }

    /// Meetings, filtered.
    pub async fn meetings(
        &self,
        server: Option<&str>,
        state: Option<MeetingState>,
        tenant: Option<&str>,
    ) -> anyhow::Result<Vec<MeetingView>> {
        match self {
            Target::Local(local) => Ok(local.admin.meetings(server, state, tenant).await?),
            Target::Remote(remote) => {
                let mut query = Vec::new();
                if let Some(server) = server {
                    query.push(("server", server.to_owned()));
                }
                if let Some(state) = state {
                    let name = match state {
                        MeetingState::Running => "running",
                        MeetingState::Ended => "ended",
                    };
                    query.push(("state", name.to_owned()));
                }
                if let Some(tenant) = tenant {
                    query.push(("tenant", tenant.to_owned()));
                }
                remote.get(&["meetings"], &query).await
            }
        }
    }

    /// One meeting.
    pub async fn meeting(&self, tenant: &str, meeting_id: &str) -> anyhow::Result<MeetingView> {
        match self {
            Target::Local(local) => Ok(local.admin.meeting(tenant, meeting_id).await?),
            Target::Remote(remote) => remote.get(&["meetings", tenant, meeting_id], &[]).await,
        }
    }

    /// Ends a running meeting.
    pub async fn end_meeting(&self, tenant: &str, meeting_id: &str) -> anyhow::Result<MeetingView> {
        match self {
            Target::Local(local) => Ok(local
                .admin
                .end_meeting(tenant, meeting_id, &local.principal)
                .await?),
            Target::Remote(remote) => {
                remote
                    .send(
                        reqwest::Method::POST,
                        &["meetings", tenant, meeting_id, "end"],
                        &[],
                        None::<&()>,
                    )
                    .await
            }
        }
    }

    /// A page of the event log.
    pub async fn events(&self, filter: EventFilter) -> anyhow::Result<EventPage> {
        match self {
            Target::Local(local) => Ok(local.admin.events(filter).await?),
            Target::Remote(remote) => {
                let mut query = Vec::new();
                let texts = [
                    ("stream", filter.stream),
                    ("type", filter.event_type),
                    ("actor", filter.actor),
                    ("from", filter.from.map(rfc3339)),
                    ("to", filter.to.map(rfc3339)),
                ];
                for (name, value) in texts {
                    if let Some(value) = value {
                        query.push((name, value));
                    }
                }
                query.push(("after", filter.after.to_string()));
                query.push(("limit", filter.limit.to_string()));
                remote.get(&["events"], &query).await
            }
        }
    }

    /// The cluster as it was at a moment.
    pub async fn history(&self, at: DateTime<Utc>) -> anyhow::Result<ClusterAt> {
        match self {
            Target::Local(local) => Ok(local.admin.history(at).await?),
            Target::Remote(remote) => remote.get(&["history"], &[("at", rfc3339(at))]).await,
        }
    }

    /// The cluster at a glance.
    pub async fn status(&self) -> anyhow::Result<ClusterStatus> {
        match self {
            Target::Local(local) => Ok(local.admin.status().await?),
            Target::Remote(remote) => remote.get(&["status"], &[]).await,
        }
    }

    /// Creates a token.
    pub async fn create_token(&self, new: NewToken) -> anyhow::Result<CreatedToken> {
        match self {
            Target::Local(local) => Ok(local.admin.create_token(new, &local.principal).await?),
            Target::Remote(remote) => {
                remote
                    .send(reqwest::Method::POST, &["tokens"], &[], Some(&new))
                    .await
            }
        }
    }

    /// Tokens in force.
    pub async fn tokens(&self) -> anyhow::Result<Vec<TokenView>> {
        match self {
            Target::Local(local) => Ok(local.admin.tokens().await?),
            Target::Remote(remote) => remote.get(&["tokens"], &[]).await,
        }
    }

    /// Revokes a token.
    pub async fn revoke_token(&self, name: &str) -> anyhow::Result<()> {
        match self {
            Target::Local(local) => Ok(local.admin.revoke_token(name, &local.principal).await?),
            Target::Remote(remote) => {
                remote
                    .send_empty(reqwest::Method::DELETE, &["tokens", name], &[])
                    .await
            }
        }
    }
}

/// Callback deliveries.
impl Target {
    /// Deliveries matching the filter, newest first.
    pub async fn callbacks(
        &self,
        state: Option<&str>,
        tenant: Option<&str>,
        kind: Option<&str>,
        limit: Option<u64>,
    ) -> anyhow::Result<Vec<CallbackView>> {
        match self {
            Target::Local(local) => {
                let filter = callback_filter(state, tenant, kind, limit).map_err(|e| anyhow!(e))?;
                let found = local.store.callbacks(&filter).await?;
                Ok(found.into_iter().map(CallbackView::from).collect())
            }
            Target::Remote(remote) => {
                let mut query = Vec::new();
                for (key, value) in [("state", state), ("tenant", tenant), ("kind", kind)] {
                    if let Some(value) = value {
                        query.push((key, value.to_owned()));
                    }
                }
                if let Some(limit) = limit {
                    query.push(("limit", limit.to_string()));
                }
                remote.get(&["callbacks"], &query).await
            }
        }
    }

    /// Makes a delivery due now.
    pub async fn retry_callback(&self, id: &str) -> anyhow::Result<()> {
        match self {
            Target::Local(local) => {
                let now = Utc::now().timestamp_millis();
                let window =
                    i64::try_from(local.callback_retry_for.as_millis()).unwrap_or(i64::MAX);
                if !local
                    .store
                    .retry_callback(id, now, now.saturating_add(window))
                    .await?
                {
                    bail!("no undelivered callback delivery `{id}`");
                }
                Ok(())
            }
            Target::Remote(remote) => {
                remote
                    .send_empty(reqwest::Method::POST, &["callbacks", id, "retry"], &[])
                    .await
            }
        }
    }

    /// Drops a delivery.
    pub async fn drop_callback(&self, id: &str) -> anyhow::Result<()> {
        match self {
            Target::Local(local) => {
                if !local
                    .store
                    .drop_callback(id, Utc::now().timestamp_millis())
                    .await?
                {
                    bail!("no pending or failed callback delivery `{id}`");
                }
                Ok(())
            }
            Target::Remote(remote) => {
                remote
                    .send_empty(reqwest::Method::POST, &["callbacks", id, "drop"], &[])
                    .await
            }
        }
    }
}

impl RemoteClient {
    fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn call(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> anyhow::Result<reqwest::Response> {
        let url = self.url(segments);
        let mut request = self
            .client
            .request(method, url.clone())
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|err| {
            // The innermost cause says why (refused, DNS, TLS, timeout).
            let mut cause: &dyn std::error::Error = &err;
            while let Some(inner) = cause.source() {
                cause = inner;
            }
            anyhow!("cannot reach the admin API at {}: {cause}", self.base)
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|problem| problem.get("detail")?.as_str().map(str::to_owned))
            .filter(|detail| !detail.is_empty());
        let reason = status.canonical_reason().unwrap_or("error");
        match detail {
            Some(detail) => bail!("{detail} (HTTP {} {reason})", status.as_u16()),
            None => {
                let snippet: String = text.chars().take(200).collect();
                bail!(
                    "the admin API at {url} answered HTTP {} {reason}{}",
                    status.as_u16(),
                    if snippet.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", snippet.trim())
                    }
                )
            }
        }
    }

    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        self.send(reqwest::Method::GET, segments, query, None::<&()>)
            .await
    }

    pub(super) async fn send<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> anyhow::Result<T> {
        let response = self.call(method, segments, query, body).await?;
        let text = response
            .text()
            .await
            .context("the admin API's answer broke off")?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "the admin API at {} answered with unexpected JSON (is it a Switchboard of the same version?)",
                self.base
            )
        })
    }

    pub(super) async fn send_empty(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> anyhow::Result<()> {
        self.call(method, segments, query, None::<&()>).await?;
        Ok(())
    }
}
