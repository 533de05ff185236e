//! Delivering: claim what is due, make one attempt (signed as BBB signs,
//! with the secret the front-end used), record the outcome by BBB's rules
//! (2xx delivered; 401 and 410 refused for good; anything else tried again
//! with doubling waits until the delivery's time is up), and the operators'
//! list, retry and drop.

use super::signing::{analytics_token, signed_parameters, webhook_checksum};
use super::{CallbackService, OutboundCall, duration_ms};
use crate::error::StoreError;
use crate::records::{
    AttemptOutcome, CallbackFilter, CallbackKind, CallbackRecord, CallbackSigning, CallbackState,
};
use switchboard_domain::bbb::checksum::ChecksumAlgorithm;

/// HTTP statuses after which a delivery is not tried again (BBB's rules for
/// callbacks: 401 the secret is wrong, 410 the receiver is gone).
const FINAL_REFUSALS: [u16; 2] = [401, 410];

impl CallbackService {
    /// Claims up to `limit` due deliveries (ids and attempt numbers); each
    /// is not due again before the lease ends.
    pub async fn claim_due(&self, limit: u64) -> Result<Vec<(String, u32)>, StoreError> {
        let now = self.clock.now_ms();
        self.store
            .claim_due_callbacks(now, now + duration_ms(self.settings.lease), limit)
            .await
    }

    /// Makes attempt `attempt` of delivery `id` and records its outcome;
    /// `None` when the delivery has moved on (delivered, dropped, another
    /// attempt claimed it) and nothing was sent.
    pub async fn deliver(
        &self,
        id: &str,
        attempt: u32,
    ) -> Result<Option<AttemptOutcome>, StoreError> {
        let Some(record) = self.store.callback(id).await? else {
            return Ok(None);
        };
        if record.state != CallbackState::Pending || record.attempts != attempt {
            return Ok(None);
        }
        // A claim that ran out (the job waited too long) sends nothing: the
        // delivery is claimed again, so it is never sent twice at once.
        if record.next_attempt_ms <= self.clock.now_ms() {
            return Ok(None);
        }
        let kind = record.callback.kind;
        let outcome = match self.signed_call(&record).await? {
            Err(reason) => AttemptOutcome::Failed {
                status: None,
                error: reason,
            },
            Ok(call) => {
                let result = self.client.send(&call).await;
                self.outcome_of(&record, attempt, result.map_err(|err| err.0))
            }
        };
        let now = self.clock.now_ms();
        let recorded = self
            .store
            .finish_callback_attempt(id, attempt, &outcome, now)
            .await?;
        let label = match &outcome {
            AttemptOutcome::Delivered { .. } => "delivered",
            AttemptOutcome::RetryAt { .. } => "retry",
            AttemptOutcome::Failed { .. } => "failed",
        };
        metrics::counter!(
            "switchboard_callback_attempts_total",
            "kind" => kind.as_str(),
            "outcome" => label
        )
        .increment(1);
        match &outcome {
            AttemptOutcome::Delivered { status } => {
                tracing::info!(
                    id,
                    kind = kind.as_str(),
                    attempt,
                    status,
                    "callback delivered"
                );
            }
            AttemptOutcome::RetryAt { error, .. } => {
                tracing::warn!(id, kind = kind.as_str(), attempt, error = %error, "callback not delivered; will retry");
            }
            AttemptOutcome::Failed { error, .. } => {
                tracing::warn!(id, kind = kind.as_str(), attempt, error = %error, "callback given up");
            }
        }
        Ok(recorded.then_some(outcome))
    }

    /// What attempt `attempt` ended with, by BBB's rules.
    fn outcome_of(
        &self,
        record: &CallbackRecord,
        attempt: u32,
        result: Result<u16, String>,
    ) -> AttemptOutcome {
        let (status, error) = match result {
            Ok(status) if (200..300).contains(&status) => {
                return AttemptOutcome::Delivered { status };
            }
            Ok(status) if FINAL_REFUSALS.contains(&status) => {
                return AttemptOutcome::Failed {
                    status: Some(status),
                    error: format!("the receiver answered HTTP {status}; not retried"),
                };
            }
            Ok(status) => (Some(status), format!("the receiver answered HTTP {status}")),
            Err(error) => (None, error),
        };
        let at_ms = self
            .clock
            .now_ms()
            .saturating_add(duration_ms(self.settings.backoff_after(attempt)));
        if at_ms > record.callback.deadline_ms {
            return AttemptOutcome::Failed {
                status,
                error: format!("{error}; out of time after {attempt} attempts"),
            };
        }
        AttemptOutcome::RetryAt {
            at_ms,
            status,
            error,
        }
    }

    /// The request of a delivery, signed now; `Err` (a reason) when it
    /// cannot be signed (its tenant has no secret any more).
    async fn signed_call(
        &self,
        record: &CallbackRecord,
    ) -> Result<Result<OutboundCall, String>, StoreError> {
        let callback = &record.callback;
        let mut call = OutboundCall {
            method: callback.method.clone(),
            url: callback.url.clone(),
            content_type: callback.content_type.clone(),
            body: callback.body.clone(),
            bearer: None,
        };
        let no_secret = || {
            format!(
                "tenant {} has no secret to sign the callback with",
                callback.tenant
            )
        };
        match &callback.signing {
            CallbackSigning::None => {}
            CallbackSigning::BearerHs512 { secret } => {
                let Some(secret) = self.secret_for(&callback.tenant, secret.as_deref()).await?
                else {
                    return Ok(Err(no_secret()));
                };
                match analytics_token(&secret, self.clock.now_ms() / 1000) {
                    Ok(token) => call.bearer = Some(token),
                    Err(err) => return Ok(Err(format!("cannot sign: {err}"))),
                }
            }
            CallbackSigning::RecordingReady {
                secret,
                meeting_id,
                record_id,
            } => {
                let Some(secret) = self.secret_for(&callback.tenant, secret.as_deref()).await?
                else {
                    return Ok(Err(no_secret()));
                };
                match signed_parameters(&secret, meeting_id, record_id) {
                    Ok(token) => {
                        call.content_type = Some("application/x-www-form-urlencoded".to_owned());
                        call.body = Some(
                            url::form_urlencoded::Serializer::new(String::new())
                                .append_pair("signed_parameters", &token)
                                .finish(),
                        );
                    }
                    Err(err) => return Ok(Err(format!("cannot sign: {err}"))),
                }
            }
            CallbackSigning::WebhookChecksum { algorithm, secret } => {
                let Some(secret) = self.secret_for(&callback.tenant, secret.as_deref()).await?
                else {
                    return Ok(Err(no_secret()));
                };
                let algorithm =
                    ChecksumAlgorithm::parse(algorithm).unwrap_or(ChecksumAlgorithm::Sha1);
                let body = callback.body.as_deref().unwrap_or_default();
                let checksum = webhook_checksum(algorithm, &callback.url, body, &secret);
                let separator = if callback.url.contains('?') { '&' } else { '?' };
                call.url = format!("{}{separator}checksum={checksum}", callback.url);
            }
        }
        Ok(Ok(call))
    }

    /// Deliveries matching a filter, newest first.
    pub async fn list(&self, filter: &CallbackFilter) -> Result<Vec<CallbackRecord>, StoreError> {
        self.store.callbacks(filter).await
    }

    /// One delivery.
    pub async fn get(&self, id: &str) -> Result<Option<CallbackRecord>, StoreError> {
        self.store.callback(id).await
    }

    /// Makes a delivery that is not delivered due now, with a fresh time
    /// window; false when there is none such.
    pub async fn retry(&self, id: &str) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        self.store
            .retry_callback(id, now, now + duration_ms(self.settings.retry_for))
            .await
    }

    /// Drops a pending or failed delivery; false when there is none such.
    pub async fn drop_delivery(&self, id: &str) -> Result<bool, StoreError> {
        self.store.drop_callback(id, self.clock.now_ms()).await
    }

    /// Forgets deliveries finished more than `keep` ago; returns how many.
    pub async fn prune(&self, keep: std::time::Duration) -> Result<u64, StoreError> {
        let before = self.clock.now_ms().saturating_sub(duration_ms(keep));
        self.store.prune_callbacks(before).await
    }

    /// Deliveries per kind and state (for `/metrics`).
    pub async fn counts(&self) -> Result<Vec<(CallbackKind, CallbackState, u64)>, StoreError> {
        self.store.callback_counts().await
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CallbackClient, CallbackError, CallbackLinks, CallbackSettings, Delivery};
    use super::*;
    use crate::clock::{Clock, ManualClock, SharedClock};
    use crate::executor::{CommandExecutor, EventBus};
    use crate::memory::InMemoryStore;
    use crate::ports::{Database, EventStore};
    use async_trait::async_trait;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use switchboard_domain::events::EventMetadata;
    use switchboard_domain::ids::{StreamId, TenantId};

    /// Answers from a script of results (an error when it runs out) and
    /// keeps what was sent.
    #[derive(Debug, Default)]
    struct Receiver {
        answers: Mutex<Vec<Result<u16, CallbackError>>>,
        sent: Mutex<Vec<OutboundCall>>,
    }

    #[async_trait]
    impl CallbackClient for Receiver {
        async fn send(&self, call: &OutboundCall) -> Result<u16, CallbackError> {
            self.sent.lock().unwrap().push(call.clone());
            let mut answers = self.answers.lock().unwrap();
            if answers.is_empty() {
                Err(CallbackError("connection refused".into()))
            } else {
                answers.remove(0)
            }
        }
    }

    struct Given {
        service: CallbackService,
        store: Arc<InMemoryStore>,
        receiver: Arc<Receiver>,
        clock: Arc<ManualClock>,
    }

    fn given(answers: Vec<Result<u16, CallbackError>>) -> Given {
        // Real time: the tokens made are checked against the system clock.
        let clock = Arc::new(ManualClock::at(chrono::Utc::now().timestamp_millis()));
        let shared: SharedClock = clock.clone();
        let store = Arc::new(InMemoryStore::with_clock(shared.clone()));
        let db: Arc<dyn Database> = store.clone();
        let receiver = Arc::new(Receiver {
            answers: Mutex::new(answers),
            ..Receiver::default()
        });
        let service = CallbackService::new(
            db.clone(),
            CommandExecutor::new(db, EventBus::default()),
            receiver.clone(),
            shared,
            Arc::new(CallbackLinks::new(b"k", None)),
            vec!["default-secret-1".into(), "default-secret-2".into()],
            CallbackSettings {
                retry_for: Duration::from_secs(600),
                first_retry: Duration::from_secs(30),
                max_retry: Duration::from_secs(120),
                lease: Duration::from_secs(60),
            },
        );
        Given {
            service,
            store,
            receiver,
            clock,
        }
    }

    async fn write(given: &Given, id: &str, delivery: Delivery) {
        let entry = delivery.into_outbox(
            id.into(),
            given.clock.now_ms(),
            given.service.settings().retry_for,
        );
        given
            .store
            .append_with_callbacks(
                &StreamId::Tenant("x".into()),
                0,
                &[],
                &EventMetadata::default(),
                &[entry],
            )
            .await
            .unwrap();
    }

    fn get(url: &str) -> Delivery {
        Delivery {
            kind: CallbackKind::MeetingEnded,
            tenant: TenantId::default_tenant(),
            meeting_id: "room-1".into(),
            method: "GET",
            url: url.into(),
            content_type: None,
            body: None,
            signing: CallbackSigning::None,
        }
    }

    async fn run_due(given: &Given) -> Vec<Option<AttemptOutcome>> {
        let mut outcomes = Vec::new();
        for (id, attempt) in given.service.claim_due(10).await.unwrap() {
            outcomes.push(given.service.deliver(&id, attempt).await.unwrap());
        }
        outcomes
    }

    #[tokio::test]
    async fn a_failing_receiver_is_tried_again_with_doubling_waits_until_it_answers() {
        let given = given(vec![Err(CallbackError("timeout".into())), Ok(500), Ok(204)]);
        write(&given, "c1", get("https://front.example/ended?x=1")).await;
        assert!(matches!(
            run_due(&given).await[..],
            [Some(AttemptOutcome::RetryAt { .. })]
        ));
        // Not due before its wait (30 s).
        given.clock.advance_ms(29_000);
        assert!(run_due(&given).await.is_empty());
        given.clock.advance_ms(1_000);
        assert!(matches!(
            run_due(&given).await[..],
            [Some(AttemptOutcome::RetryAt {
                status: Some(500),
                ..
            })]
        ));
        given.clock.advance_ms(59_000);
        assert!(run_due(&given).await.is_empty());
        given.clock.advance_ms(1_000);
        assert_eq!(
            run_due(&given).await,
            vec![Some(AttemptOutcome::Delivered { status: 204 })]
        );
        let record = given.service.get("c1").await.unwrap().unwrap();
        assert_eq!(record.state, CallbackState::Delivered);
        assert_eq!(record.attempts, 3);
        let sent = given.receiver.sent.lock().unwrap();
        assert_eq!(sent.len(), 3);
        assert!(
            sent.iter()
                .all(|call| call.url == "https://front.example/ended?x=1")
        );
    }

    #[tokio::test]
    async fn gone_and_unauthorized_are_final() {
        for status in [401, 410] {
            let given = given(vec![Ok(status)]);
            write(&given, "c1", get("https://front.example/e")).await;
            run_due(&given).await;
            let record = given.service.get("c1").await.unwrap().unwrap();
            assert_eq!(record.state, CallbackState::Failed, "{status}");
            assert_eq!(record.last_status, Some(status));
        }
    }

    #[tokio::test]
    async fn a_delivery_out_of_time_fails() {
        let given = given(Vec::new());
        write(&given, "c1", get("https://front.example/e")).await;
        for _ in 0..10 {
            run_due(&given).await;
            given.clock.advance_ms(120_000);
        }
        let record = given.service.get("c1").await.unwrap().unwrap();
        assert_eq!(record.state, CallbackState::Failed);
        assert!(record.last_error.unwrap().contains("out of time"));
        // Looked at every 120 s: attempts at 0, 120, 240, 360, 480 and 600 s;
        // the wait after the sixth would pass the 600 s window.
        assert_eq!(record.attempts, 6);
    }

    #[tokio::test]
    async fn a_crashed_attempt_is_claimed_again_after_its_lease_and_the_stale_one_sends_nothing() {
        let given = given(vec![Ok(200)]);
        write(&given, "c1", get("https://front.example/e")).await;
        let claimed = given.service.claim_due(10).await.unwrap();
        assert_eq!(claimed, vec![("c1".to_owned(), 1)]);
        assert!(given.service.claim_due(10).await.unwrap().is_empty());
        given.clock.advance_ms(60_000);
        let again = given.service.claim_due(10).await.unwrap();
        assert_eq!(again, vec![("c1".to_owned(), 2)]);
        assert_eq!(given.service.deliver("c1", 1).await.unwrap(), None);
        assert!(given.receiver.sent.lock().unwrap().is_empty());
        assert_eq!(
            given.service.deliver("c1", 2).await.unwrap(),
            Some(AttemptOutcome::Delivered { status: 200 })
        );
    }

    #[tokio::test]
    async fn the_same_id_is_written_once() {
        let given = given(vec![Ok(200), Ok(200)]);
        write(&given, "c1", get("https://front.example/e")).await;
        write(&given, "c1", get("https://front.example/e")).await;
        assert_eq!(run_due(&given).await.len(), 1);
    }

    #[tokio::test]
    async fn operators_retry_failed_and_drop_pending_deliveries() {
        let given = given(vec![Ok(410), Ok(200)]);
        write(&given, "c1", get("https://front.example/e")).await;
        run_due(&given).await;
        assert!(given.service.retry("c1").await.unwrap());
        assert_eq!(
            run_due(&given).await,
            vec![Some(AttemptOutcome::Delivered { status: 200 })]
        );
        assert!(
            !given.service.retry("c1").await.unwrap(),
            "delivered stays delivered"
        );
        write(&given, "c2", get("https://front.example/e")).await;
        assert!(given.service.drop_delivery("c2").await.unwrap());
        assert!(run_due(&given).await.is_empty());
        let dropped = given.service.get("c2").await.unwrap().unwrap();
        assert_eq!(dropped.state, CallbackState::Dropped);
        // Finished ones are forgotten after their keep time, pending never.
        write(&given, "c3", get("https://front.example/e")).await;
        given.clock.advance_ms(10_000);
        assert_eq!(
            given.service.prune(Duration::from_secs(5)).await.unwrap(),
            2
        );
        assert!(given.service.get("c1").await.unwrap().is_none());
        assert!(given.service.get("c3").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn analytics_go_with_an_hs512_token_of_the_secret_the_front_end_used() {
        let given = given(vec![Ok(200)]);
        let mut delivery = get("https://moodle.example/analytics?id=4");
        delivery.kind = CallbackKind::Analytics;
        delivery.method = "POST";
        delivery.content_type = Some("application/json");
        delivery.body = Some(r#"{"meeting_id":"room-1"}"#.into());
        delivery.signing = CallbackSigning::BearerHs512 {
            secret: Some(crate::admin::tenants::fingerprint("default-secret-2")),
        };
        write(&given, "c1", delivery).await;
        run_due(&given).await;
        let sent = given.receiver.sent.lock().unwrap();
        let token = sent[0].bearer.as_deref().unwrap();
        assert!(super::super::signing::verify_analytics_token(
            token,
            "default-secret-2"
        ));
        assert!(!super::super::signing::verify_analytics_token(
            token,
            "default-secret-1"
        ));
        assert_eq!(sent[0].body.as_deref(), Some(r#"{"meeting_id":"room-1"}"#));
    }

    #[tokio::test]
    async fn a_webhook_carries_the_checksum_of_url_body_and_secret() {
        let given = given(vec![Ok(200)]);
        let mut delivery = get("https://front.example/hook?a=1");
        delivery.kind = CallbackKind::Webhook;
        delivery.method = "POST";
        delivery.body = Some("event=x&timestamp=1".into());
        delivery.signing = CallbackSigning::WebhookChecksum {
            algorithm: "sha256".into(),
            secret: None,
        };
        write(&given, "c1", delivery).await;
        run_due(&given).await;
        let sent = given.receiver.sent.lock().unwrap();
        let expected = webhook_checksum(
            ChecksumAlgorithm::Sha256,
            "https://front.example/hook?a=1",
            "event=x&timestamp=1",
            "default-secret-1",
        );
        assert_eq!(
            sent[0].url,
            format!("https://front.example/hook?a=1&checksum={expected}")
        );
    }
}
