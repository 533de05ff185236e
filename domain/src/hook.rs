//! The webhook aggregate: a hook a front-end registered with `hooks/create`
//! on Switchboard (bbb-webhooks' API), for all of its tenant's meetings or
//! for one meetingID. One stream per hook (`hook:<uuid>`); the id is the
//! `hookID` front-ends see, stable across restarts.

use crate::aggregate::Aggregate;
use crate::ids::TenantId;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What a hook asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookSettings {
    /// Whose meetings it hears of.
    pub tenant: TenantId,
    /// Where events are posted.
    pub callback_url: String,
    /// Only this meetingID's events (`None`: every meeting of the tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meeting_id: Option<String>,
    /// Only these event ids (lower-cased; `None`: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_ids: Option<Vec<String>>,
    /// bbb-webhooks' `getRaw` (kept and shown; events are relayed as the
    /// server sent them).
    #[serde(default)]
    pub get_raw: bool,
    /// The checksum algorithm of its deliveries (`sha1`, ..., as the
    /// front-end signed `hooks/create` with).
    pub algorithm: String,
    /// Fingerprint of the secret that signed `hooks/create`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_with: Option<String>,
}

/// A hook as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Hook {
    /// Its settings while registered.
    pub settings: Option<HookSettings>,
    /// Removed for good.
    pub removed: bool,
}

/// What can be asked of a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookCommand {
    /// Register it.
    Register(HookSettings),
    /// Remove it.
    Remove,
}

/// What happened to a hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum HookEvent {
    /// Registered by a front-end.
    HookRegistered {
        /// What it asks for.
        hook: HookSettings,
    },
    /// Removed (`hooks/destroy`).
    HookRemoved,
}

impl HookEvent {
    /// The event's type name, as stored in the log.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::HookRegistered { .. } => "HookRegistered",
            Self::HookRemoved => "HookRemoved",
        }
    }
}

/// Why a hook command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HookError {
    /// The hook exists or existed.
    #[error("the hook exists")]
    Exists,
    /// No such hook.
    #[error("the hook was not found")]
    NotFound,
}

impl Aggregate for Hook {
    type Command = HookCommand;
    type Event = HookEvent;
    type Error = HookError;

    fn decide(&self, command: &HookCommand) -> Result<Vec<HookEvent>, HookError> {
        match command {
            HookCommand::Register(settings) => {
                if self.settings.is_some() || self.removed {
                    return Err(HookError::Exists);
                }
                Ok(vec![HookEvent::HookRegistered {
                    hook: settings.clone(),
                }])
            }
            HookCommand::Remove => {
                if self.settings.is_none() {
                    return Err(HookError::NotFound);
                }
                Ok(vec![HookEvent::HookRemoved])
            }
        }
    }

    fn evolve(&mut self, event: &HookEvent) {
        match event {
            HookEvent::HookRegistered { hook } => self.settings = Some(hook.clone()),
            HookEvent::HookRemoved => {
                self.settings = None;
                self.removed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> HookSettings {
        HookSettings {
            tenant: TenantId("acme".into()),
            callback_url: "https://app.example/hook".into(),
            meeting_id: None,
            event_ids: None,
            get_raw: false,
            algorithm: "sha1".into(),
            signed_with: None,
        }
    }

    #[test]
    fn a_hook_is_registered_once_and_removed_once() {
        let registered = Hook::default()
            .decide(&HookCommand::Register(settings()))
            .unwrap();
        let hook = Hook::fold(&registered);
        assert_eq!(hook.settings, Some(settings()));
        assert_eq!(
            hook.decide(&HookCommand::Register(settings())),
            Err(HookError::Exists)
        );
        let removed = hook.decide(&HookCommand::Remove).unwrap();
        let mut all = registered;
        all.extend(removed);
        let gone = Hook::fold(&all);
        assert_eq!(gone.settings, None);
        assert_eq!(gone.decide(&HookCommand::Remove), Err(HookError::NotFound));
        assert_eq!(
            gone.decide(&HookCommand::Register(settings())),
            Err(HookError::Exists),
            "a removed id is never reused"
        );
    }
}
