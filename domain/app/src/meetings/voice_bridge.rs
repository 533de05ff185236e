//! Voice bridges unique across the pool, and the passwords a new meeting
//! gets when the front-end sends none (as Scalelite does).
//!
//! A shared dial-in gateway routes a caller by the meeting's voiceBridge,
//! so two meetings on two servers must never hold one number. Each meeting
//! claims its number in the store before a new run's create (one atomic
//! upsert: two instances never both win a number). A front-end's own number
//! is kept when it is free and refused with BBB's `nonUniqueVoiceBridge`
//! when another meeting holds it (it runs, or its claim is younger than
//! [`CLAIM_GRACE_MS`]); otherwise the meeting gets a number derived from
//! its meetingID (so a re-created meeting keeps the number printed in its
//! invitations), or a random one when that is taken. A meeting that runs
//! already keeps the number it runs with.

use super::{CallError, MeetingService};
use crate::records::{PendingPlacement, VoiceBridgeClaim};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use switchboard_domain::ids::{MeetingId, TenantId};

/// BBB's test conference number, never handed out.
const BBB_TEST_NUMBER: &str = "99999";

/// Numbers derived from the meetingID tried before random ones.
const DERIVED_TRIES: u32 = 8;

/// Random numbers tried after the derived ones.
const RANDOM_TRIES: u32 = 32;

/// How old a claim must be before another meeting may take its number
/// once the holder does not run: a claim younger than this belongs to a
/// create still on its way to a server (the holder's creates renew it).
pub const CLAIM_GRACE_MS: i64 = 5 * 60 * 1000;

/// Where voice bridges come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoiceBridgePolicy {
    /// Digits of an allocated number (4 to 9).
    pub length: u32,
    /// Keep a front-end's own number when it is free.
    pub keep_requested: bool,
}

impl Default for VoiceBridgePolicy {
    fn default() -> Self {
        Self {
            length: 5,
            keep_requested: true,
        }
    }
}

/// The `attempt`-th number derived from a meetingID: `length` digits, the
/// first not 0, the same on every instance and every run of the meeting.
pub fn derived_number(meeting_id: &MeetingId, attempt: u32, length: u32) -> String {
    let digest = Sha256::new()
        .chain_update(meeting_id.as_str().as_bytes())
        .chain_update(attempt.to_be_bytes())
        .finalize();
    digits_from(&digest, length)
}

/// A random number of `length` digits, the first not 0.
fn random_number(length: u32) -> String {
    digits_from(&rand::random::<[u8; 32]>(), length)
}

fn digits_from(bytes: &[u8], length: u32) -> String {
    bytes
        .iter()
        .take(length as usize)
        .enumerate()
        .map(|(index, byte)| {
            let digit = if index == 0 { 1 + byte % 9 } else { byte % 10 };
            char::from(b'0' + digit)
        })
        .collect()
}

/// Whether a front-end's voiceBridge is a number Switchboard can hold.
fn is_number(value: &str) -> bool {
    !value.is_empty() && value.len() <= 32 && value.bytes().all(|b| b.is_ascii_digit())
}

impl MeetingService {
    /// The voiceBridge a create of this meeting goes out with: the
    /// front-end's (`requested`) when free, the meeting's own when it holds
    /// one, else a new one. `None` when voice bridges are left to servers.
    /// `held`: the number the meeting holds, when it was just read
    /// (`Some(None)`: none); `None` reads it now. `note`: a placement to
    /// note with the first claim (taken when a claim was made).
    pub(super) async fn voice_bridge_for(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
        requested: Option<&str>,
        held: Option<Option<String>>,
        note: &mut Option<&PendingPlacement>,
    ) -> Result<Option<String>, CallError> {
        let Some(policy) = self.settings.voice_bridges else {
            return Ok(None);
        };
        let requested = requested.map(str::trim).filter(|value| !value.is_empty());
        if policy.keep_requested
            && let Some(number) = requested
        {
            if !is_number(number) {
                // BBB refuses it with its validation error; nothing to hold.
                return Ok(Some(number.to_owned()));
            }
            if self.claim_noting(tenant, meeting_id, number, note).await? {
                return Ok(Some(number.to_owned()));
            }
            return Err(CallError::VoiceBridgeInUse);
        }
        let held = match held {
            Some(held) => held,
            None => self.store.voice_bridge_of(tenant, meeting_id).await?,
        };
        if let Some(held) = held
            && self.claim_noting(tenant, meeting_id, &held, note).await?
        {
            return Ok(Some(held));
        }
        let derived = (0..DERIVED_TRIES).map(|n| derived_number(meeting_id, n, policy.length));
        let random = (0..RANDOM_TRIES).map(|_| random_number(policy.length));
        for number in derived.chain(random) {
            if number == BBB_TEST_NUMBER {
                continue;
            }
            if self.claim_noting(tenant, meeting_id, &number, note).await? {
                return Ok(Some(number));
            }
        }
        Err(CallError::Internal(
            "No free voice bridge number was found; please retry.".into(),
        ))
    }

    /// Claims `number` for the meeting now (see
    /// [`Placements::claim_voice_bridge`](crate::ports::Placements::claim_voice_bridge)).
    pub(super) async fn claim(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
        number: &str,
    ) -> Result<bool, CallError> {
        self.claim_noting(tenant, meeting_id, number, &mut None)
            .await
    }

    /// [`claim`](Self::claim), noting the placement in `note` with it (in
    /// the same statement where the store can) and taking it.
    async fn claim_noting(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
        number: &str,
        note: &mut Option<&PendingPlacement>,
    ) -> Result<bool, CallError> {
        let now = self.clock.now_ms();
        let claim = VoiceBridgeClaim {
            number: number.to_owned(),
            tenant: tenant.clone(),
            meeting_id: meeting_id.clone(),
            at_ms: now,
        };
        let stale_before = now - CLAIM_GRACE_MS;
        Ok(match note.take() {
            Some(placement) => {
                self.store
                    .claim_voice_bridge_noting(&claim, stale_before, placement)
                    .await?
            }
            None => self.store.claim_voice_bridge(&claim, stale_before).await?,
        })
    }

    /// The password a new meeting of this tenant gets for `role` when the
    /// front-end sends none: 8 alphanumerics, unguessable without
    /// Switchboard's key, and the same on every instance, every retry and
    /// every server the meeting may be created on.
    pub(super) async fn generated_password(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
        role: &str,
    ) -> Result<String, CallError> {
        let key = self.password_key().await?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        for part in [tenant.0.as_str(), meeting_id.as_str(), role] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        Ok(mac
            .finalize()
            .into_bytes()
            .iter()
            .take(8)
            .map(|byte| char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]))
            .collect())
    }

    async fn password_key(&self) -> Result<&[u8], CallError> {
        self.password_key
            .get_or_try_init(|| async {
                let fresh = hex::encode(rand::random::<[u8; 32]>());
                let stored = self
                    .store
                    .setting_or_insert(PASSWORD_KEY_SETTING, &fresh)
                    .await?;
                Ok::<_, CallError>(
                    hex::decode(stored.trim()).unwrap_or_else(|_| stored.into_bytes()),
                )
            })
            .await
            .map(Vec::as_slice)
    }
}

/// The stored setting holding the key generated passwords derive from.
const PASSWORD_KEY_SETTING: &str = "meeting-password-key";

#[cfg(test)]
mod tests {

    use super::*;
    use crate::meetings::MeetingSettings;
    use crate::memory::ScriptedBackend;
    use crate::memory::answers::{self, Reply};
    use crate::ports::Placements as _;
    use crate::testing::{NOW_MS, World, asked, ended, meeting_id, request};
    use std::sync::Arc;
    use switchboard_domain::bbb::params::Params;
    use switchboard_domain::events::EventMetadata;
    use switchboard_domain::ids::meeting_stream;
    use switchboard_domain::meeting::EndReason;

    fn settings() -> MeetingSettings {
        MeetingSettings {
            voice_bridges: Some(VoicePolicy::default()),
            fill_passwords: true,
            ..MeetingSettings::new(3)
        }
    }

    type VoicePolicy = VoiceBridgePolicy;

    /// A backend whose creates succeed with the voiceBridge sent, runs
    /// named `<meetingID>-<n>`.
    fn accepting() -> Arc<ScriptedBackend> {
        let count = std::sync::atomic::AtomicU64::new(0);
        Arc::new(ScriptedBackend::new(move |_, call, query| -> Reply {
            assert_eq!(call, "create", "only creates are expected");
            let params = Params::parse(query).unwrap();
            let id = params.get("meetingID").unwrap().to_owned();
            let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let xml = answers::create_xml(&id, &format!("{id}-{n}"), NOW_MS, "", "");
            let number = params.get("voiceBridge").unwrap_or("70001");
            answers::body(xml.replace(
                "<voiceBridge>70001</voiceBridge>",
                &format!("<voiceBridge>{number}</voiceBridge>"),
            ))
        }))
    }

    #[tokio::test]
    async fn a_running_meetings_create_keeps_its_number_whatever_number_it_asks_for() {
        let (world, backend, meetings) = one_server(settings()).await;
        let ask = |id: &str, number: &str| {
            request(
                "create",
                &format!("meetingID={id}&name=x&voiceBridge={number}"),
            )
        };
        meetings
            .create(&ask("first", "71111"), &asked())
            .await
            .unwrap();
        meetings
            .create(&ask("second", "72222"), &asked())
            .await
            .unwrap();
        // Greenlight creates before every join; a number another meeting
        // holds does not make the running meeting unjoinable.
        meetings
            .create(&ask("second", "71111"), &asked())
            .await
            .unwrap();
        assert_eq!(sent(&backend, 2).get("voiceBridge"), Some("72222"));
        let holder = world.store.voice_bridge_holder("71111").await.unwrap();
        assert_eq!(holder.unwrap().meeting_id, meeting_id("first"));
    }

    #[tokio::test]
    async fn a_server_refusing_the_generated_passwords_is_asked_again_without_them() {
        let world = World::new();
        world.server("one").await;
        world.server("two").await;
        // The meeting runs, unrecorded, on the first server with passwords
        // of its own.
        let backend = Arc::new(ScriptedBackend::new(|target, call, query| -> Reply {
            assert_eq!(call, "create");
            assert!(target.url.contains("one"), "never sent to a second server");
            if Params::parse(query).unwrap().get("moderatorPW").is_some() {
                answers::failed(
                    "idNotUnique",
                    "A meeting already exists with that meeting ID.",
                )
            } else {
                answers::create_duplicate("room", "room-1", NOW_MS)
            }
        }));
        let meetings = world.meetings_with(&backend, settings()).await;
        let answer = meetings
            .create(&request("create", "meetingID=room&name=room"), &asked())
            .await
            .unwrap();
        assert_eq!(answer.summary.message_key(), Some("duplicateWarning"));
        assert_eq!(backend.calls().len(), 2);
        let run = crate::ports::MeetingReads::meeting_run(world.store.as_ref(), "room-1")
            .await
            .unwrap();
        assert!(run.is_some(), "the running copy is recorded");
    }

    #[tokio::test]
    async fn a_meeting_running_from_before_keeps_the_number_its_server_answers_with() {
        let world = World::new();
        let server = world.server("one").await;
        world.meeting("old", "old-1", server, NOW_MS).await;
        let backend = Arc::new(ScriptedBackend::new(|_, call, _| -> Reply {
            assert_eq!(call, "create");
            answers::create_duplicate("old", "old-1", NOW_MS)
        }));
        let meetings = world.meetings_with(&backend, settings()).await;
        meetings
            .create(&request("create", "meetingID=old&name=old"), &asked())
            .await
            .unwrap();
        // Running already: no number is made up for it; the server's is held.
        assert_eq!(sent(&backend, 0).get("voiceBridge"), None);
        let holder = world.store.voice_bridge_holder("70001").await.unwrap();
        assert_eq!(holder.unwrap().meeting_id, meeting_id("old"));
        // A new meeting asking for it is refused.
        let refused = meetings
            .create(
                &request("create", "meetingID=new&name=new&voiceBridge=70001"),
                &asked(),
            )
            .await;
        assert!(matches!(refused, Err(CallError::VoiceBridgeInUse)));
    }

    /// A world with one server that accepts every create, and the meeting
    /// use cases over it with `settings`.
    async fn one_server(
        settings: MeetingSettings,
    ) -> (World, Arc<ScriptedBackend>, MeetingService) {
        let world = World::new();
        world.server("one").await;
        let backend = accepting();
        let meetings = world.meetings_with(&backend, settings).await;
        (world, backend, meetings)
    }

    /// The parameters of the `n`-th call the backend got.
    fn sent(backend: &ScriptedBackend, n: usize) -> Params {
        Params::parse(&backend.calls()[n].query).unwrap()
    }

    async fn end(world: &World, id: &str, internal_id: &str, version: i64) {
        world
            .store
            .append_raw(
                &meeting_stream(&TenantId::default_tenant(), &meeting_id(id)),
                version,
                &[ended(internal_id, EndReason::EndCalled, NOW_MS)],
                &EventMetadata::actor("test:given"),
            )
            .expect("meeting ended");
    }

    #[tokio::test]
    async fn a_new_meeting_gets_a_number_derived_from_its_meeting_id_and_keeps_it_when_created_again()
     {
        let (world, backend, meetings) = one_server(settings()).await;
        meetings
            .create(&request("create", "meetingID=room&name=room"), &asked())
            .await
            .unwrap();
        let first = sent(&backend, 0).get("voiceBridge").unwrap().to_owned();
        assert_eq!(first, derived_number(&meeting_id("room"), 0, 5));
        assert_eq!(first.len(), 5);
        assert!(!first.starts_with('0'));
        end(&world, "room", "room-0", 1).await;
        world.clock.advance_ms(CLAIM_GRACE_MS * 10);
        meetings
            .create(&request("create", "meetingID=room&name=room"), &asked())
            .await
            .unwrap();
        assert_eq!(sent(&backend, 1).get("voiceBridge"), Some(first.as_str()));
    }

    #[tokio::test]
    async fn a_front_ends_free_number_is_kept_and_one_another_meeting_holds_is_refused_with_bbbs_error()
     {
        let (_world, backend, meetings) = one_server(settings()).await;
        meetings
            .create(
                &request("create", "meetingID=first&name=a&voiceBridge=71234"),
                &asked(),
            )
            .await
            .unwrap();
        assert_eq!(sent(&backend, 0).get("voiceBridge"), Some("71234"));
        let refused = meetings
            .create(
                &request("create", "meetingID=second&name=b&voiceBridge=71234"),
                &asked(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(refused, CallError::VoiceBridgeInUse),
            "{refused:?}"
        );
        assert_eq!(
            backend.calls().len(),
            1,
            "a refused create reaches no server"
        );
        // The holder's own create again keeps its number.
        meetings
            .create(
                &request("create", "meetingID=first&name=a&voiceBridge=71234"),
                &asked(),
            )
            .await
            .unwrap();
        assert_eq!(sent(&backend, 1).get("voiceBridge"), Some("71234"));
    }

    #[tokio::test]
    async fn an_ended_meetings_number_is_free_only_after_the_grace() {
        let (world, _backend, meetings) = one_server(settings()).await;
        let ask = |id: &str| {
            request(
                "create",
                &format!("meetingID={id}&name=x&voiceBridge=70001"),
            )
        };
        meetings.create(&ask("first"), &asked()).await.unwrap();
        end(&world, "first", "first-0", 1).await;
        let early = meetings.create(&ask("second"), &asked()).await;
        assert!(matches!(early, Err(CallError::VoiceBridgeInUse)));
        world.clock.advance_ms(CLAIM_GRACE_MS + 1);
        meetings.create(&ask("second"), &asked()).await.unwrap();
        let holder = world
            .store
            .voice_bridge_holder("70001")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(holder.meeting_id, meeting_id("second"));
    }

    #[tokio::test]
    async fn a_taken_derived_number_moves_on_to_the_next_and_the_test_number_is_never_given() {
        let world = World::new();
        world.server("one").await;
        let taken = derived_number(&meeting_id("room"), 0, 5);
        let claim = VoiceBridgeClaim {
            number: taken.clone(),
            tenant: TenantId("other".into()),
            meeting_id: meeting_id("elsewhere"),
            at_ms: NOW_MS,
        };
        assert!(world.store.claim_voice_bridge(&claim, 0).await.unwrap());
        let backend = accepting();
        let meetings = world.meetings_with(&backend, settings()).await;
        meetings
            .create(&request("create", "meetingID=room&name=room"), &asked())
            .await
            .unwrap();
        let given = sent(&backend, 0).get("voiceBridge").unwrap().to_owned();
        assert_ne!(given, taken);
        assert_eq!(given, derived_number(&meeting_id("room"), 1, 5));
        for attempt in 0..1000 {
            let number = derived_number(&meeting_id(&format!("m{attempt}")), 0, 9);
            assert_eq!(number.len(), 9);
            assert!(!number.starts_with('0') && number.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[tokio::test]
    async fn a_tenants_creates_carry_its_id_and_name_when_asked() {
        let world = World::new();
        world.server("one").await;
        let backend = accepting();
        let meetings = world
            .meetings_with(
                &backend,
                MeetingSettings {
                    tenant_metadata: true,
                    ..MeetingSettings::new(3)
                },
            )
            .await;
        let mut create = request("create", "meetingID=room&name=room&meta_tenant-id=forged");
        create.tenant = TenantId("school".into());
        create.tenant_config = Some(Arc::new(switchboard_domain::tenant::TenantConfig {
            name: "school".into(),
            secrets: vec!["school-secret-0123".into()],
            policy: Default::default(),
            limits: Default::default(),
            required_tags: Vec::new(),
            stats_token_hash: None,
            retention_days: None,
            recordings_store: None,
        }));
        meetings.create(&create, &asked()).await.unwrap();
        let params = sent(&backend, 0);
        let id = switchboard_domain::tenant::tenant_uuid("school").to_string();
        assert_eq!(params.get("meta_tenant-id"), Some(id.as_str()));
        assert_eq!(params.get("meta_tenant-name"), Some("school"));
        assert_ne!(
            id,
            switchboard_domain::tenant::tenant_uuid("college").to_string()
        );
    }

    #[tokio::test]
    async fn without_keeping_requested_numbers_the_front_ends_number_is_replaced() {
        let world = World::new();
        world.server("one").await;
        let backend = accepting();
        let policy = VoicePolicy {
            length: 9,
            keep_requested: false,
        };
        let meetings = world
            .meetings_with(
                &backend,
                MeetingSettings {
                    voice_bridges: Some(policy),
                    ..MeetingSettings::new(3)
                },
            )
            .await;
        meetings
            .create(
                &request("create", "meetingID=room&name=room&voiceBridge=71234"),
                &asked(),
            )
            .await
            .unwrap();
        let given = sent(&backend, 0).get("voiceBridge").unwrap().to_owned();
        assert_eq!(given, derived_number(&meeting_id("room"), 0, 9));
        assert_eq!(given.len(), 9);
    }

    #[tokio::test]
    async fn left_to_servers_nothing_is_added() {
        let world = World::new();
        world.server("one").await;
        let backend = accepting();
        let meetings = world.meetings(&backend).await;
        meetings
            .create(&request("create", "meetingID=room&name=room"), &asked())
            .await
            .unwrap();
        let params = sent(&backend, 0);
        for key in ["voiceBridge", "moderatorPW", "attendeePW"] {
            assert_eq!(params.get(key), None, "{key}");
        }
    }

    #[tokio::test]
    async fn missing_passwords_are_filled_for_a_new_run_alike_on_every_instance_and_never_for_a_running_one()
     {
        let (world, backend, meetings) = one_server(settings()).await;
        meetings
            .create(
                &request("create", "meetingID=room&name=room&attendeePW=mine"),
                &asked(),
            )
            .await
            .unwrap();
        let params = sent(&backend, 0);
        assert_eq!(
            params.get("attendeePW"),
            Some("mine"),
            "the front-end's is kept"
        );
        let moderator = params.get("moderatorPW").unwrap().to_owned();
        assert_eq!(moderator.len(), 8);
        assert!(moderator.chars().all(|c| c.is_ascii_alphanumeric()));
        // Another instance over the same store derives the same password.
        let other = world.meetings_with(&accepting(), settings()).await;
        let tenant = TenantId::default_tenant();
        assert_eq!(
            other
                .generated_password(&tenant, &meeting_id("room"), "moderatorPW")
                .await
                .unwrap(),
            moderator
        );
        assert_ne!(
            other
                .generated_password(&tenant, &meeting_id("room"), "attendeePW")
                .await
                .unwrap(),
            moderator
        );
        assert_ne!(
            other
                .generated_password(&tenant, &meeting_id("other"), "moderatorPW")
                .await
                .unwrap(),
            moderator
        );
        // The running meeting's create again: BBB's duplicateWarning needs the
        // passwords it was given or none.
        meetings
            .create(&request("create", "meetingID=room&name=room"), &asked())
            .await
            .unwrap();
        assert_eq!(sent(&backend, 1).get("moderatorPW"), None);
    }
}
