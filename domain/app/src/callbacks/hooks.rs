//! BBB webhooks for the whole pool (bbb-webhooks' API on Switchboard).
//!
//! - A front-end registers a hook once with `hooks/create` (per tenant; a
//!   hook for one meetingID gets only that meeting's events); `hooks/list`
//!   and `hooks/destroy` see only the tenant's hooks. Hooks are events
//!   (`HookRegistered`, `HookRemoved`) on `hook:<uuid>` streams; the uuid is
//!   the `hookID`.
//! - While any hook exists, Switchboard keeps one hook of its own on every
//!   server that takes calls ([`CallbackService::ensure_server_hooks`]).
//! - A server's events ([`CallbackService::webhook_events`]) are checked
//!   (`checksum = hash(url + body + server secret)`), mapped to the run by
//!   its internal id (unknown meetings are dropped: they are nobody's), the
//!   meetingID made the front-end's, and delivered to each matching hook of
//!   the run's tenant as an outbox delivery signed as bbb-webhooks signs
//!   (`?checksum=hash(callbackURL + body + tenant secret)`).

use super::receive::{ReceiveError, ServerCall};
use super::{CallbackService, Delivery, ServerCallback};
use crate::error::StoreError;
use crate::executor::CommandError;
use crate::records::{CallbackKind, CallbackSigning, HookRecord, NewCallback, ServerRecord};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use subtle::ConstantTimeEq;
use switchboard_domain::bbb::checksum::{ChecksumAlgorithm, sign};
use switchboard_domain::bbb::params::Params;
use switchboard_domain::events::EventMetadata;
use switchboard_domain::hook::{Hook, HookCommand, HookError, HookSettings};
use switchboard_domain::ids::{ServerId, StreamId, TenantId};
use switchboard_domain::server::ServerState;

/// How long a server's hook is trusted to be there (or a server that
/// failed is left alone) before it is listed again, ms. bbb-webhooks removes
/// a hook whose posts keep failing, so it is checked often.
const RECHECK_MS: i64 = 30 * 1000;

/// How long an event of a meeting being created waits for its run (well
/// within bbb-webhooks' 5 s request timeout).
const PENDING_RUN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a webhook delivery is attempted: bbb-webhooks itself gives up
/// within minutes, and a dead receiver must not pile up a day of events.
const WEBHOOK_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What `hooks/create` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookCreated {
    /// A new hook.
    Created(HookRecord),
    /// The tenant has a hook for this callbackURL already.
    Duplicate(HookRecord),
}

/// Why `hooks/create` or `hooks/destroy` failed, as bbb-webhooks answers.
#[derive(Debug, thiserror::Error)]
pub enum HookFailure {
    /// `callbackURL` is missing.
    #[error("You must specify a callbackURL in the parameters.")]
    MissingCallbackUrl,
    /// `hookID` is missing.
    #[error("You must specify a hookID in the parameters.")]
    MissingHookId,
    /// The callbackURL cannot be called.
    #[error("An error happened while creating your hook: {0}")]
    Create(String),
    /// No such hook of the tenant.
    #[error("The hook informed was not found.")]
    NotFound,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CallbackService {
    /// The tenant's hooks; with a meetingID, those that hear of it (its
    /// own and the tenant's global ones), as `hooks/list` answers.
    pub async fn list_hooks(
        &self,
        tenant: &TenantId,
        meeting_id: Option<&str>,
    ) -> Result<Vec<HookRecord>, StoreError> {
        Ok(self
            .store
            .hooks()
            .await?
            .into_iter()
            .filter(|hook| hook.settings.tenant == *tenant)
            .filter(|hook| {
                meeting_id.is_none_or(|wanted| {
                    hook.settings
                        .meeting_id
                        .as_deref()
                        .is_none_or(|own| own == wanted)
                })
            })
            .collect())
    }

    /// `hooks/create` of a tenant: `callbackURL`, `meetingID`, `eventID`
    /// (comma-separated) and `getRaw`; `algorithm` and `signed_with` say how
    /// the request was signed, and so how its deliveries are.
    pub async fn create_hook(
        &self,
        tenant: &TenantId,
        params: &Params,
        algorithm: ChecksumAlgorithm,
        signed_with: Option<String>,
        metadata: &EventMetadata,
    ) -> Result<HookCreated, HookFailure> {
        let callback_url = params
            .non_empty("callbackURL")
            .ok_or(HookFailure::MissingCallbackUrl)?
            .trim()
            .to_owned();
        let usable = !callback_url.chars().any(char::is_control)
            && url::Url::parse(&callback_url)
                .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host());
        if !usable {
            return Err(HookFailure::Create(
                "the callbackURL is not an http(s) URL".into(),
            ));
        }
        if let Some(existing) = self
            .list_hooks(tenant, None)
            .await?
            .into_iter()
            .find(|hook| hook.settings.callback_url == callback_url)
        {
            return Ok(HookCreated::Duplicate(existing));
        }
        let settings = HookSettings {
            tenant: tenant.clone(),
            callback_url,
            meeting_id: params.non_empty("meetingID").map(str::to_owned),
            event_ids: params.non_empty("eventID").map(|ids| {
                ids.split(',')
                    .map(|id| id.trim().to_ascii_lowercase())
                    .filter(|id| !id.is_empty())
                    .collect()
            }),
            get_raw: params
                .non_empty("getRaw")
                .is_some_and(|raw| raw.eq_ignore_ascii_case("true")),
            algorithm: algorithm.name().to_owned(),
            signed_with,
        };
        let id = uuid::Uuid::new_v4().to_string();
        self.executor
            .execute::<Hook>(
                &StreamId::Hook(id.clone()),
                &HookCommand::Register(settings.clone()),
                metadata,
            )
            .await
            .map_err(|err| match err {
                CommandError::Store(err) => HookFailure::Store(err),
                CommandError::Rejected(err) => HookFailure::Create(err.to_string()),
            })?;
        Ok(HookCreated::Created(HookRecord { id, settings }))
    }

    /// `hooks/destroy` of a tenant: only its own hooks.
    pub async fn destroy_hook(
        &self,
        tenant: &TenantId,
        hook_id: Option<&str>,
        metadata: &EventMetadata,
    ) -> Result<(), HookFailure> {
        let hook_id = hook_id
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or(HookFailure::MissingHookId)?;
        let owned = self
            .list_hooks(tenant, None)
            .await?
            .iter()
            .any(|hook| hook.id == hook_id);
        if !owned {
            return Err(HookFailure::NotFound);
        }
        self.executor
            .execute::<Hook>(
                &StreamId::Hook(hook_id.to_owned()),
                &HookCommand::Remove,
                metadata,
            )
            .await
            .map_err(|err| match err {
                CommandError::Store(err) => HookFailure::Store(err),
                CommandError::Rejected(HookError::NotFound | HookError::Exists) => {
                    HookFailure::NotFound
                }
            })?;
        Ok(())
    }

    /// The URL a server's hook posts to.
    pub fn server_hook_url(&self, server: ServerId) -> String {
        self.links.url(ServerCallback::Webhook, &server.to_string())
    }

    /// While any front-end hook exists, makes sure every server that takes
    /// calls has Switchboard's hook (listed, created when missing).
    /// `ensured` remembers when each server was last seen with it; returns
    /// how many servers got a hook now.
    pub async fn ensure_server_hooks(
        &self,
        ensured: &mut HashMap<ServerId, i64>,
    ) -> Result<usize, StoreError> {
        let Some(backends) = &self.backends else {
            return Ok(0);
        };
        if self.store.hooks().await?.is_empty() {
            ensured.clear();
            return Ok(0);
        }
        let now = self.clock.now_ms();
        let mut created = 0;
        for server in self.store.servers().await? {
            if server.state == ServerState::Disabled || !server.online {
                continue;
            }
            if ensured
                .get(&server.id)
                .is_some_and(|at| now - at < RECHECK_MS)
            {
                continue;
            }
            match self.ensure_on(backends, &server).await {
                Ok(made) => {
                    created += usize::from(made);
                    ensured.insert(server.id, now);
                }
                Err(reason) => {
                    tracing::warn!(server = %server.id, %reason, "cannot register Switchboard's webhook on the server");
                    // Tried again after the recheck time, not every tick.
                    ensured.insert(server.id, now);
                }
            }
        }
        Ok(created)
    }

    /// Lists the server's hooks and creates Switchboard's when missing;
    /// true when it was created now.
    async fn ensure_on(
        &self,
        backends: &crate::backend::Backends,
        server: &ServerRecord,
    ) -> Result<bool, String> {
        let url = self.server_hook_url(server.id);
        let listed = backends
            .call(server, "hooks/list", "", None)
            .await
            .map_err(|err| err.to_string())?;
        if !listed.summary.is_success() {
            return Err("hooks/list failed (is bbb-webhooks installed?)".into());
        }
        if String::from_utf8_lossy(&listed.body).contains(&url) {
            return Ok(false);
        }
        let mut params = Params::default();
        params.set("callbackURL", url);
        params.set("getRaw", "false");
        let answer = backends
            .call(server, "hooks/create", &params.to_query(), None)
            .await
            .map_err(|err| err.to_string())?;
        if answer.summary.is_success() {
            tracing::info!(server = %server.id, "Switchboard's webhook registered on the server");
            Ok(true)
        } else {
            Err(format!(
                "hooks/create answered {}",
                answer.summary.message_key().unwrap_or("FAILED")
            ))
        }
    }

    /// A server's bbb-webhooks post: checked, mapped and fanned out.
    pub(super) async fn webhook_events(
        &self,
        server_id: &str,
        call: &ServerCall,
    ) -> Result<usize, ReceiveError> {
        let server_id: ServerId = server_id.parse().map_err(|_| ReceiveError::Unknown)?;
        let server = self
            .store
            .server(server_id)
            .await?
            .ok_or(ReceiveError::Unknown)?;
        let body = std::str::from_utf8(&call.body)
            .map_err(|_| ReceiveError::Invalid("the body is not UTF-8".into()))?;
        self.check_webhook_checksum(&server, &call.query, body)?;
        let hooks = self.store.hooks().await?;
        if hooks.is_empty() {
            return Ok(0);
        }
        let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        let field = |name: &str| {
            form.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let events: serde_json::Value = serde_json::from_str(field("event").unwrap_or("[]"))
            .map_err(|err| ReceiveError::Invalid(format!("`event` is not JSON: {err}")))?;
        let events = match events {
            serde_json::Value::Array(events) => events,
            other => vec![other],
        };
        let timestamp = field("timestamp").unwrap_or_default().to_owned();
        let mut runs = HashMap::new();
        let mut deliveries = Vec::new();
        for event in events {
            deliveries.extend(
                self.fan_out(server_id, event, &timestamp, &hooks, &mut runs)
                    .await?,
            );
        }
        let count = deliveries.len();
        if count > 0 {
            self.store
                .append_with_callbacks(
                    &StreamId::Server(server_id),
                    0,
                    &[],
                    &EventMetadata::default(),
                    &deliveries,
                )
                .await?;
        }
        Ok(count)
    }

    /// `checksum` of the server's post: `hash(our URL + body + secret)`.
    fn check_webhook_checksum(
        &self,
        server: &ServerRecord,
        query: &str,
        body: &str,
    ) -> Result<(), ReceiveError> {
        let given = url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "checksum")
            .map(|(_, value)| value.into_owned())
            .ok_or_else(|| ReceiveError::Unauthorized("a checksum is required".into()))?;
        let algorithm = ChecksumAlgorithm::from_hex_len(given.len())
            .ok_or_else(|| ReceiveError::Unauthorized("the checksum is not a hash".into()))?;
        let expected = sign(
            algorithm,
            &self.server_hook_url(server.id),
            body,
            &server.settings.secret,
        );
        if bool::from(
            expected
                .as_bytes()
                .ct_eq(given.to_ascii_lowercase().as_bytes()),
        ) {
            Ok(())
        } else {
            Err(ReceiveError::Unauthorized(
                "the checksum is not made with this server's secret".into(),
            ))
        }
    }

    /// The run an event is about. A server announces a meeting as it creates
    /// it, before Switchboard has recorded the run: while a create of that
    /// meetingID is pending on the server, the run is waited for (up to
    /// [`PENDING_RUN_WAIT`]).
    async fn run_of(
        &self,
        server: ServerId,
        internal_id: &str,
        external_id: &str,
    ) -> Result<Option<crate::records::MeetingRunRecord>, StoreError> {
        if let Some(run) = self.store.meeting_run(internal_id).await? {
            return Ok(Some(run));
        }
        let pending = self
            .store
            .pending_placements_on(server)
            .await?
            .iter()
            .any(|placement| placement.meeting_id.as_str() == external_id);
        if !pending {
            // The run may have been recorded (and its placement removed, in
            // one transaction) between the two reads.
            return self.store.meeting_run(internal_id).await;
        }
        let started = std::time::Instant::now();
        while started.elapsed() < PENDING_RUN_WAIT {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if let Some(run) = self.store.meeting_run(internal_id).await? {
                return Ok(Some(run));
            }
        }
        Ok(None)
    }

    /// The deliveries of one event: to every hook of the run's tenant that
    /// wants it; none for a meeting Switchboard does not know.
    async fn fan_out(
        &self,
        server: ServerId,
        mut event: serde_json::Value,
        timestamp: &str,
        hooks: &[HookRecord],
        runs: &mut HashMap<String, Option<crate::records::MeetingRunRecord>>,
    ) -> Result<Vec<NewCallback>, StoreError> {
        let Some(internal_id) = event
            .pointer("/data/attributes/meeting/internal-meeting-id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
        else {
            return Ok(Vec::new());
        };
        let external_id = event
            .pointer("/data/attributes/meeting/external-meeting-id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let run = match runs.get(&internal_id) {
            Some(run) => run.clone(),
            None => {
                let run = self.run_of(server, &internal_id, &external_id).await?;
                runs.insert(internal_id.clone(), run.clone());
                run
            }
        };
        // Only the run's own server speaks for it.
        let Some(run) = run.filter(|run| run.server_id == Some(server)) else {
            return Ok(Vec::new());
        };
        if let Some(external) = event.pointer_mut("/data/attributes/meeting/external-meeting-id") {
            *external = serde_json::Value::String(run.meeting_id.clone());
        }
        let event_id = event
            .pointer("/data/id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let event_json = event.to_string();
        // The event alone (it carries its own time): several instances'
        // server hooks, or a server's retry, make one delivery per hook.
        let digest = hex::encode(Sha256::digest(event_json.as_bytes()));
        let domain = self.links.host();
        let now = self.clock.now_ms();
        Ok(hooks
            .iter()
            .filter(|hook| hook.settings.tenant == run.tenant)
            .filter(|hook| {
                hook.settings
                    .meeting_id
                    .as_deref()
                    .is_none_or(|wanted| wanted == run.meeting_id)
            })
            .filter(|hook| {
                hook.settings
                    .event_ids
                    .as_ref()
                    .is_none_or(|wanted| wanted.contains(&event_id))
            })
            .map(|hook| {
                // As bbb-webhooks posts: keys in alphabetical order.
                let body = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("domain", &domain)
                    .append_pair("event", &format!("[{event_json}]"))
                    .append_pair("timestamp", timestamp)
                    .finish();
                Delivery {
                    kind: CallbackKind::Webhook,
                    tenant: run.tenant.clone(),
                    meeting_id: run.meeting_id.clone(),
                    method: "POST",
                    url: hook.settings.callback_url.clone(),
                    content_type: Some("application/x-www-form-urlencoded"),
                    body: Some(body),
                    signing: CallbackSigning::WebhookChecksum {
                        algorithm: hook.settings.algorithm.clone(),
                        secret: hook.settings.signed_with.clone(),
                    },
                }
                .into_outbox(
                    format!("webhook-{}-{}", hook.id, &digest[..24]),
                    now,
                    self.settings.retry_for.min(WEBHOOK_RETRY_FOR),
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callbacks::{
        CallbackClient, CallbackError, CallbackLinks, CallbackSettings, OutboundCall,
    };
    use crate::ports::Database;
    use crate::records::CallbackFilter;
    use crate::testing::{World, given, secret};
    use async_trait::async_trait;
    use std::sync::Arc;

    #[derive(Debug)]
    struct NoClient;

    #[async_trait]
    impl CallbackClient for NoClient {
        async fn send(&self, _: &OutboundCall) -> Result<u16, CallbackError> {
            Err(CallbackError("not in unit tests".into()))
        }
    }

    fn service(world: &World) -> CallbackService {
        let db: Arc<dyn Database> = world.store.clone();
        CallbackService::new(
            db,
            world.executor.clone(),
            Arc::new(NoClient),
            world.shared_clock(),
            Arc::new(CallbackLinks::new(b"key", Some("https://lb.example"))),
            vec!["default-secret-1".into()],
            CallbackSettings::default(),
        )
    }

    fn params(query: &str) -> Params {
        Params::parse(query).unwrap()
    }

    fn acme() -> TenantId {
        TenantId("acme".into())
    }

    async fn create(service: &CallbackService, tenant: &TenantId, query: &str) -> HookCreated {
        service
            .create_hook(
                tenant,
                &params(query),
                ChecksumAlgorithm::Sha256,
                None,
                &given(),
            )
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn hooks_belong_to_their_tenant() {
        let world = World::new();
        let service = service(&world);
        let HookCreated::Created(first) =
            create(&service, &acme(), "callbackURL=https%3A%2F%2Fa.example%2Fh").await
        else {
            panic!("created")
        };
        assert_eq!(first.settings.algorithm, "sha256");
        assert_eq!(
            create(&service, &acme(), "callbackURL=https%3A%2F%2Fa.example%2Fh").await,
            HookCreated::Duplicate(first.clone())
        );
        // Another tenant may register the same URL: it is its own hook.
        let other = TenantId::default_tenant();
        assert!(matches!(
            create(&service, &other, "callbackURL=https%3A%2F%2Fa.example%2Fh").await,
            HookCreated::Created(_)
        ));
        assert_eq!(
            service.list_hooks(&acme(), None).await.unwrap(),
            vec![first.clone()]
        );
        assert!(matches!(
            service
                .destroy_hook(&other, Some(&first.id), &given())
                .await,
            Err(HookFailure::NotFound)
        ));
        service
            .destroy_hook(&acme(), Some(&first.id), &given())
            .await
            .unwrap();
        assert!(service.list_hooks(&acme(), None).await.unwrap().is_empty());
        assert!(matches!(
            service
                .create_hook(
                    &acme(),
                    &params("meetingID=x"),
                    ChecksumAlgorithm::Sha1,
                    None,
                    &given()
                )
                .await,
            Err(HookFailure::MissingCallbackUrl)
        ));
        assert!(matches!(
            service
                .create_hook(
                    &acme(),
                    &params("callbackURL=ftp%3A%2F%2Fx"),
                    ChecksumAlgorithm::Sha1,
                    None,
                    &given()
                )
                .await,
            Err(HookFailure::Create(_))
        ));
    }

    /// A server's post of one event, signed with its secret.
    fn post(
        service: &CallbackService,
        server: ServerId,
        server_secret: &str,
        event: &serde_json::Value,
    ) -> ServerCall {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("domain", "bbb1.example")
            .append_pair("event", &format!("[{event}]"))
            .append_pair("timestamp", "1700000000000")
            .finish();
        let checksum = sign(
            ChecksumAlgorithm::Sha1,
            &service.server_hook_url(server),
            &body,
            server_secret,
        );
        ServerCall {
            query: format!("checksum={checksum}"),
            body: body.into(),
            bearer: None,
        }
    }

    /// How many deliveries a post of `event` by `server` (signed with its
    /// secret) causes.
    async fn posted(
        service: &CallbackService,
        server: ServerId,
        event: &serde_json::Value,
    ) -> usize {
        let call = post(service, server, &secret("one"), event);
        service
            .webhook_events(&server.to_string(), &call)
            .await
            .unwrap()
    }

    fn event(id: &str, internal: &str) -> serde_json::Value {
        serde_json::json!({"data": {"type": "event", "id": id, "attributes": {
            "meeting": {"internal-meeting-id": internal, "external-meeting-id": "whatever"}
        }, "event": {"ts": 1}}})
    }

    #[tokio::test]
    async fn a_servers_events_reach_the_runs_tenant_hooks_that_want_them() {
        let world = World::new();
        let service = service(&world);
        let server = world.server("one").await;
        world
            .meeting("room-1", "internal-1", server, crate::testing::NOW_MS)
            .await;
        let default = TenantId::default_tenant();
        create(
            &service,
            &default,
            "callbackURL=https%3A%2F%2Fd.example%2Fall",
        )
        .await;
        create(
            &service,
            &default,
            "callbackURL=https%3A%2F%2Fd.example%2Fother&meetingID=room-2",
        )
        .await;
        create(
            &service,
            &default,
            "callbackURL=https%3A%2F%2Fd.example%2Fends&eventID=meeting-ended",
        )
        .await;
        create(
            &service,
            &acme(),
            "callbackURL=https%3A%2F%2Fa.example%2Fall",
        )
        .await;
        assert_eq!(
            posted(&service, server, &event("user-joined", "internal-1")).await,
            1
        );
        // Unknown meetings are nobody's.
        assert_eq!(
            posted(&service, server, &event("user-joined", "not-ours")).await,
            0
        );
        assert_eq!(
            posted(&service, server, &event("meeting-ended", "internal-1")).await,
            2
        );
        let outbox = service
            .list(&CallbackFilter {
                limit: 10,
                ..CallbackFilter::default()
            })
            .await
            .unwrap();
        let mut urls: Vec<&str> = outbox
            .iter()
            .map(|record| record.callback.url.as_str())
            .collect();
        urls.sort();
        assert_eq!(
            urls,
            [
                "https://d.example/all",
                "https://d.example/all",
                "https://d.example/ends"
            ]
        );
        let body = outbox[0].callback.body.clone().unwrap();
        assert!(body.contains("room-1"), "the front-end's meetingID: {body}");
        // Another secret's checksum is refused.
        let forged = post(
            &service,
            server,
            "not-the-server",
            &event("user-joined", "internal-1"),
        );
        assert!(matches!(
            service.webhook_events(&server.to_string(), &forged).await,
            Err(ReceiveError::Unauthorized(_))
        ));
    }
}
