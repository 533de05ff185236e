//! Voice bridges unique across the pool, and the passwords a new meeting
//! gets when the front-end sends none (as Scalelite does).
//!
//! A shared dial-in gateway routes a caller by the meeting's voiceBridge,
//! so two meetings on two servers must never hold one number. Each meeting
//! claims its number in the store before the server's create (one atomic
//! upsert: two instances never both win a number). A front-end's own number
//! is kept when it is free and refused with BBB's `nonUniqueVoiceBridge`
//! when another running meeting holds it; otherwise the meeting gets a
//! number derived from its meetingID (so a re-created meeting keeps the
//! number printed in its invitations), or a random one when that is taken.

use super::{CallError, MeetingService};
use crate::records::VoiceBridgeClaim;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use switchboard_domain::ids::{MeetingId, TenantId};

/// BBB's test conference number, never handed out.
const BBB_TEST_NUMBER: &str = "99999";

/// Numbers derived from the meetingID tried before random ones.
const DERIVED_TRIES: u32 = 8;

/// Random numbers tried after the derived ones.
const RANDOM_TRIES: u32 = 32;

/// How long a claim outlives its meeting's end before another meeting may
/// take the number (covers a create still on its way to a server).
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
    pub(super) async fn voice_bridge_for(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
        requested: Option<&str>,
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
            if self.claim(tenant, meeting_id, number).await? {
                return Ok(Some(number.to_owned()));
            }
            return Err(CallError::VoiceBridgeInUse);
        }
        if let Some(held) = self.store.voice_bridge_of(tenant, meeting_id).await?
            && self.claim(tenant, meeting_id, &held).await?
        {
            return Ok(Some(held));
        }
        let derived = (0..DERIVED_TRIES).map(|n| derived_number(meeting_id, n, policy.length));
        let random = (0..RANDOM_TRIES).map(|_| random_number(policy.length));
        for number in derived.chain(random) {
            if number == BBB_TEST_NUMBER {
                continue;
            }
            if self.claim(tenant, meeting_id, &number).await? {
                return Ok(Some(number));
            }
        }
        Err(CallError::Internal(
            "No free voice bridge number was found; please retry.".into(),
        ))
    }

    async fn claim(
        &self,
        tenant: &TenantId,
        meeting_id: &MeetingId,
        number: &str,
    ) -> Result<bool, CallError> {
        let now = self.clock.now_ms();
        let claim = VoiceBridgeClaim {
            number: number.to_owned(),
            tenant: tenant.clone(),
            meeting_id: meeting_id.clone(),
            at_ms: now,
        };
        Ok(self
            .store
            .claim_voice_bridge(&claim, now - CLAIM_GRACE_MS)
            .await?)
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
mod tests;
