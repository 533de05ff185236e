//! Tenants: front-ends (schools, faculties, customers) sharing one pool, each
//! with its own secrets, parameter policy, limits and server pool.
//!
//! A tenant is recognised by the first label of the request's host or by the
//! path prefix `/t/<name>/`; its name is therefore a DNS label. Without any
//! tenant, Switchboard is a single-tenant balancer (the `default` tenant with
//! the global secrets).

use crate::aggregate::Aggregate;
use crate::bbb::params::Params;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The shortest secret a front-end may sign with: a tenant's, and the
/// global and extra secrets of the settings. Shorter ones make
/// `sha1(call + query + secret)` guessable.
pub const MIN_SECRET_LEN: usize = 12;

/// Whether `secret` is long enough and free of whitespace to sign BBB calls.
pub fn is_strong_secret(secret: &str) -> bool {
    secret.chars().count() >= MIN_SECRET_LEN && !secret.chars().any(char::is_whitespace)
}

/// The id a tenant has in Scalelite's shapes (`meta_tenant-id`, the
/// Scalelite admin API): a UUID derived from its name, the same everywhere.
pub fn tenant_uuid(name: &str) -> uuid::Uuid {
    /// The namespace of Switchboard's tenant ids.
    const TENANTS: uuid::Uuid = uuid::Uuid::from_u128(0x5d1c_7a0e_2b4f_4c8e_9a51_73f0_e2c4_b8d6);
    uuid::Uuid::new_v5(&TENANTS, name.as_bytes())
}

/// What a tenant policy does with one parameter of create or join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ParamRule {
    /// Set the parameter when the front-end did not.
    Default {
        /// Parameter name, as BBB spells it.
        param: String,
        /// Its value.
        value: String,
    },
    /// Always set the parameter, replacing the front-end's value.
    Override {
        /// Parameter name.
        param: String,
        /// Its value.
        value: String,
    },
    /// Remove the parameter.
    Block {
        /// Parameter name.
        param: String,
    },
    /// Cap a number; absent, not a number, or 0 (BBB's "unlimited") count as
    /// over the cap.
    Max {
        /// Parameter name.
        param: String,
        /// The cap.
        value: i64,
    },
    /// Add items to a comma-separated list (e.g. `disabledFeatures`).
    Append {
        /// Parameter name.
        param: String,
        /// Items to add, comma-separated.
        value: String,
    },
}

impl ParamRule {
    /// The parameter the rule is about.
    pub fn param(&self) -> &str {
        match self {
            Self::Default { param, .. }
            | Self::Override { param, .. }
            | Self::Block { param }
            | Self::Max { param, .. }
            | Self::Append { param, .. } => param,
        }
    }

    /// Applies the rule; true when it changed anything.
    pub fn apply(&self, params: &mut Params) -> bool {
        let before = params.get(self.param()).map(str::to_owned);
        match self {
            Self::Default { param, value } => {
                if before.is_none() {
                    params.set(param, value.clone());
                }
            }
            Self::Override { param, value } => params.set(param, value.clone()),
            Self::Block { param } => {
                params.remove(param);
            }
            Self::Max { param, value } => {
                let within = before
                    .as_deref()
                    .and_then(|text| text.trim().parse::<i64>().ok())
                    .is_some_and(|n| n > 0 && n <= *value);
                if !within {
                    params.set(param, value.to_string());
                }
            }
            Self::Append { param, value } => {
                let mut items: Vec<String> = before
                    .as_deref()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(str::to_owned)
                    .collect();
                for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    if !items.iter().any(|existing| existing == item) {
                        items.push(item.to_owned());
                    }
                }
                params.set(param, items.join(","));
            }
        }
        params.get(self.param()) != before.as_deref()
    }

    fn validate(&self) -> Result<(), TenantError> {
        let param = self.param();
        let valid = !param.is_empty()
            && param.len() <= 128
            && param
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            return Err(TenantError::InvalidRule(format!(
                "`{param}` is not a parameter name"
            )));
        }
        if matches!(param, "meetingID" | "checksum") {
            return Err(TenantError::InvalidRule(format!(
                "`{param}` cannot be set by a policy"
            )));
        }
        Ok(())
    }
}

/// How a tenant's create and join parameters are adjusted before they reach
/// a server.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TenantPolicy {
    /// Rules for create, applied in order.
    #[serde(default)]
    pub create: Vec<ParamRule>,
    /// Rules for join, applied in order.
    #[serde(default)]
    pub join: Vec<ParamRule>,
    /// Presentation URL a create gets when it brings none
    /// (`preUploadedPresentation`).
    #[serde(default)]
    pub default_presentation: Option<String>,
    /// Logo URL a create gets when it brings none (`logo`).
    #[serde(default)]
    pub logo: Option<String>,
}

impl TenantPolicy {
    /// Adjusts a create's parameters; `has_documents` tells whether the create
    /// brings its own presentation in an XML body.
    pub fn apply_create(&self, params: &mut Params, has_documents: bool) -> bool {
        let mut changed = false;
        if let Some(url) = &self.default_presentation
            && !has_documents
            && params.get("preUploadedPresentation").is_none()
        {
            params.set("preUploadedPresentation", url.clone());
            changed = true;
        }
        if let Some(url) = &self.logo
            && params.get("logo").is_none()
        {
            params.set("logo", url.clone());
            changed = true;
        }
        for rule in &self.create {
            changed |= rule.apply(params);
        }
        changed
    }

    /// Applies only the create rules that set a parameter the front-end
    /// left out (`default`), so they win over an operator-wide default
    /// applied after them.
    pub fn apply_create_defaults(&self, params: &mut Params) {
        for rule in &self.create {
            if matches!(rule, ParamRule::Default { .. }) {
                rule.apply(params);
            }
        }
    }

    /// Applies only the join rules that set a parameter the front-end left
    /// out (see [`apply_create_defaults`](Self::apply_create_defaults)).
    pub fn apply_join_defaults(&self, params: &mut Params) -> bool {
        let mut changed = false;
        for rule in &self.join {
            if matches!(rule, ParamRule::Default { .. }) {
                changed |= rule.apply(params);
            }
        }
        changed
    }

    /// Adjusts a join's parameters; true when anything changed.
    pub fn apply_join(&self, params: &mut Params) -> bool {
        let mut changed = false;
        for rule in &self.join {
            changed |= rule.apply(params);
        }
        changed
    }

    /// Checks every rule names a parameter a policy may set.
    pub fn validate(&self) -> Result<(), TenantError> {
        self.create
            .iter()
            .chain(&self.join)
            .try_for_each(ParamRule::validate)
    }
}

/// Caps on what a tenant runs at once; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TenantLimits {
    /// Running meetings.
    #[serde(default)]
    pub max_meetings: Option<u64>,
    /// Attendees over all running meetings.
    #[serde(default)]
    pub max_attendees: Option<u64>,
}

/// A tenant in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantConfig {
    /// Its name (a DNS label).
    pub name: String,
    /// Secrets its front-ends may sign with (several during rotation).
    pub secrets: Vec<String>,
    /// Parameter policy.
    #[serde(default)]
    pub policy: TenantPolicy,
    /// Limits.
    #[serde(default)]
    pub limits: TenantLimits,
    /// Server tags its meetings require (any of them); empty: every server.
    #[serde(default)]
    pub required_tags: Vec<String>,
    /// Hash of the token its own stats are read with (`/t/NAME/stats`),
    /// if one was issued; the token itself is never kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats_token_hash: Option<String>,
    /// Days its recordings are kept after they end (`None`: the global
    /// default, `[recordings] retention_days`, applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Where its new recordings are kept (a directory or
    /// `s3://BUCKET/PREFIX`; `None`: the deployment's store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recordings_store: Option<String>,
}

/// A tenant as its events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Tenant {
    /// Set while the tenant exists.
    pub config: Option<TenantConfig>,
    /// Set once the tenant was deleted: its name is retired, so a new
    /// tenant never inherits the old one's recordings and meeting runs.
    pub retired: bool,
}

/// What can be asked of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantCommand {
    /// Create it with a first secret.
    Create {
        /// Its name.
        name: String,
        /// Its first secret.
        secret: String,
    },
    /// Accept another secret (rotation).
    AddSecret(String),
    /// Stop accepting a secret; the last one cannot go.
    RevokeSecret(String),
    /// Replace the parameter policy.
    SetPolicy(TenantPolicy),
    /// Replace the limits.
    SetLimits(TenantLimits),
    /// Replace the tags its meetings require.
    SetRequiredTags(Vec<String>),
    /// Issue a stats token: keep its hash (replacing an earlier one).
    SetStatsToken {
        /// `hash_token` of the token.
        hash: String,
    },
    /// Set (or clear, `None`) how many days its recordings are kept.
    SetRetention(Option<u32>),
    /// Keep its new recordings in this store (`None`: the deployment's);
    /// the caller checks that the store can be opened.
    SetRecordingsStore(Option<String>),
    /// Delete it.
    Delete,
}

/// What happened to a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum TenantEvent {
    /// A tenant was created.
    TenantCreated {
        /// Its name.
        name: String,
        /// Its first secret.
        secret: String,
    },
    /// A secret was added.
    TenantSecretAdded {
        /// The secret.
        secret: String,
    },
    /// A secret was revoked.
    TenantSecretRevoked {
        /// The secret.
        secret: String,
    },
    /// The policy was replaced.
    TenantPolicySet {
        /// The new policy.
        policy: TenantPolicy,
    },
    /// The limits were replaced.
    TenantLimitsSet {
        /// The new limits.
        limits: TenantLimits,
    },
    /// The required tags were replaced.
    TenantRequiredTagsSet {
        /// The new tags.
        tags: Vec<String>,
    },
    /// A stats token was issued (its hash; the token is shown once).
    TenantStatsTokenSet {
        /// `hash_token` of the token.
        hash: String,
    },
    /// How long its recordings are kept was set (`None`: the global default).
    TenantRetentionSet {
        /// Days after a recording ends.
        #[serde(default)]
        retention_days: Option<u32>,
    },
    /// Where its new recordings are kept was set (`None`: the deployment's
    /// store).
    TenantRecordingsStoreSet {
        /// The store (a directory or `s3://BUCKET/PREFIX`).
        #[serde(default)]
        store: Option<String>,
    },
    /// The tenant was deleted.
    TenantDeleted,
}

impl TenantEvent {
    /// The event's type name, as stored in the log.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::TenantCreated { .. } => "TenantCreated",
            Self::TenantSecretAdded { .. } => "TenantSecretAdded",
            Self::TenantSecretRevoked { .. } => "TenantSecretRevoked",
            Self::TenantPolicySet { .. } => "TenantPolicySet",
            Self::TenantLimitsSet { .. } => "TenantLimitsSet",
            Self::TenantRequiredTagsSet { .. } => "TenantRequiredTagsSet",
            Self::TenantStatsTokenSet { .. } => "TenantStatsTokenSet",
            Self::TenantRetentionSet { .. } => "TenantRetentionSet",
            Self::TenantRecordingsStoreSet { .. } => "TenantRecordingsStoreSet",
            Self::TenantDeleted => "TenantDeleted",
        }
    }
}

/// Why a tenant command was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TenantError {
    /// A tenant of that name exists.
    #[error("a tenant named `{0}` exists")]
    Exists(String),
    /// The name belonged to a deleted tenant.
    #[error(
        "`{0}` belonged to a deleted tenant whose recordings and meetings keep the name; choose another name"
    )]
    Retired(String),
    /// No tenant of that name exists.
    #[error("no tenant named `{0}`")]
    NotFound(String),
    /// The name is not a DNS label, or is reserved.
    #[error(
        "tenant names are 1-63 lower-case letters, digits or `-` (a DNS label, not starting or ending with `-`), and `default` is reserved"
    )]
    InvalidName,
    /// The secret is too short or has whitespace.
    #[error("a secret needs at least {MIN_SECRET_LEN} characters and no whitespace")]
    WeakSecret,
    /// Revoking would leave the tenant without a secret.
    #[error("a tenant keeps at least one secret: add the new one before revoking the last")]
    LastSecret,
    /// A retention of zero days.
    #[error(
        "recordings are kept at least one day: use a number of days from 1, or `none` for the global default"
    )]
    InvalidRetention,
    /// The recordings store is empty.
    #[error("a recordings store is a directory or s3://BUCKET/PREFIX, or `default`")]
    InvalidRecordingsStore,
    /// The secret to revoke is not one of the tenant's.
    #[error("that secret is not one of the tenant's")]
    UnknownSecret,
    /// A policy rule is unusable.
    #[error("invalid policy rule: {0}")]
    InvalidRule(String),
    /// A required tag is empty.
    #[error("required tags must not be empty")]
    InvalidTag,
}

/// Checks a tenant name: a lower-case DNS label other than `default`.
pub fn validate_name(name: &str) -> Result<(), TenantError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name != crate::ids::TenantId::DEFAULT
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(TenantError::InvalidName)
    }
}

fn validate_secret(secret: &str) -> Result<(), TenantError> {
    if !is_strong_secret(secret) {
        Err(TenantError::WeakSecret)
    } else {
        Ok(())
    }
}

/// The event stream of a tenant name.
pub fn tenant_stream(name: &str) -> crate::ids::StreamId {
    crate::ids::StreamId::Tenant(name.to_owned())
}

impl Aggregate for Tenant {
    type Command = TenantCommand;
    type Event = TenantEvent;
    type Error = TenantError;

    fn decide(&self, command: &TenantCommand) -> Result<Vec<TenantEvent>, TenantError> {
        if let TenantCommand::Create { name, secret } = command {
            validate_name(name)?;
            validate_secret(secret)?;
            if self.config.is_some() {
                return Err(TenantError::Exists(name.clone()));
            }
            if self.retired {
                return Err(TenantError::Retired(name.clone()));
            }
            return Ok(vec![TenantEvent::TenantCreated {
                name: name.clone(),
                secret: secret.clone(),
            }]);
        }
        let Some(config) = &self.config else {
            return Err(TenantError::NotFound(String::new()));
        };
        let events = match command {
            TenantCommand::Create { .. } => unreachable!("handled above"),
            TenantCommand::AddSecret(secret) => {
                validate_secret(secret)?;
                if config.secrets.contains(secret) {
                    vec![]
                } else {
                    vec![TenantEvent::TenantSecretAdded {
                        secret: secret.clone(),
                    }]
                }
            }
            TenantCommand::RevokeSecret(secret) => {
                if !config.secrets.contains(secret) {
                    return Err(TenantError::UnknownSecret);
                }
                if config.secrets.len() == 1 {
                    return Err(TenantError::LastSecret);
                }
                vec![TenantEvent::TenantSecretRevoked {
                    secret: secret.clone(),
                }]
            }
            TenantCommand::SetPolicy(policy) => {
                policy.validate()?;
                if *policy == config.policy {
                    vec![]
                } else {
                    vec![TenantEvent::TenantPolicySet {
                        policy: policy.clone(),
                    }]
                }
            }
            TenantCommand::SetLimits(limits) => {
                if *limits == config.limits {
                    vec![]
                } else {
                    vec![TenantEvent::TenantLimitsSet { limits: *limits }]
                }
            }
            TenantCommand::SetRequiredTags(tags) => {
                if tags.iter().any(|tag| tag.trim().is_empty()) {
                    return Err(TenantError::InvalidTag);
                }
                if *tags == config.required_tags {
                    vec![]
                } else {
                    vec![TenantEvent::TenantRequiredTagsSet { tags: tags.clone() }]
                }
            }
            TenantCommand::SetStatsToken { hash } => {
                vec![TenantEvent::TenantStatsTokenSet { hash: hash.clone() }]
            }
            TenantCommand::SetRetention(days) => {
                if *days == Some(0) {
                    return Err(TenantError::InvalidRetention);
                }
                if *days == config.retention_days {
                    vec![]
                } else {
                    vec![TenantEvent::TenantRetentionSet {
                        retention_days: *days,
                    }]
                }
            }
            TenantCommand::SetRecordingsStore(store) => {
                let store = store.as_ref().map(|url| url.trim().to_owned());
                if store.as_ref().is_some_and(|url| url.is_empty()) {
                    return Err(TenantError::InvalidRecordingsStore);
                }
                if store == config.recordings_store {
                    vec![]
                } else {
                    vec![TenantEvent::TenantRecordingsStoreSet { store }]
                }
            }
            TenantCommand::Delete => vec![TenantEvent::TenantDeleted],
        };
        Ok(events)
    }

    fn evolve(&mut self, event: &TenantEvent) {
        match event {
            TenantEvent::TenantCreated { name, secret } => {
                self.config = Some(TenantConfig {
                    name: name.clone(),
                    secrets: vec![secret.clone()],
                    policy: TenantPolicy::default(),
                    limits: TenantLimits::default(),
                    required_tags: Vec::new(),
                    stats_token_hash: None,
                    retention_days: None,
                    recordings_store: None,
                });
            }
            TenantEvent::TenantDeleted => {
                self.config = None;
                self.retired = true;
            }
            other => {
                let Some(config) = self.config.as_mut() else {
                    return;
                };
                match other {
                    TenantEvent::TenantSecretAdded { secret } => {
                        config.secrets.push(secret.clone())
                    }
                    TenantEvent::TenantSecretRevoked { secret } => {
                        config.secrets.retain(|kept| kept != secret)
                    }
                    TenantEvent::TenantPolicySet { policy } => config.policy = policy.clone(),
                    TenantEvent::TenantLimitsSet { limits } => config.limits = *limits,
                    TenantEvent::TenantRequiredTagsSet { tags } => {
                        config.required_tags = tags.clone()
                    }
                    TenantEvent::TenantStatsTokenSet { hash } => {
                        config.stats_token_hash = Some(hash.clone())
                    }
                    TenantEvent::TenantRetentionSet { retention_days } => {
                        config.retention_days = *retention_days
                    }
                    TenantEvent::TenantRecordingsStoreSet { store } => {
                        config.recordings_store = store.clone()
                    }
                    TenantEvent::TenantCreated { .. } | TenantEvent::TenantDeleted => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> Tenant {
        Tenant::fold(&[TenantEvent::TenantCreated {
            name: "school".into(),
            secret: "first-secret".into(),
        }])
    }

    fn params(query: &str) -> Params {
        Params::parse(query).unwrap()
    }

    #[test]
    fn retention_is_set_cleared_and_at_least_a_day() {
        let mut tenant = created();
        let set = tenant
            .decide(&TenantCommand::SetRetention(Some(30)))
            .unwrap();
        assert_eq!(
            set,
            vec![TenantEvent::TenantRetentionSet {
                retention_days: Some(30)
            }]
        );
        tenant.evolve(&set[0]);
        assert_eq!(tenant.config.as_ref().unwrap().retention_days, Some(30));
        assert!(
            tenant
                .decide(&TenantCommand::SetRetention(Some(30)))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            tenant.decide(&TenantCommand::SetRetention(Some(0))),
            Err(TenantError::InvalidRetention)
        );
        let cleared = tenant.decide(&TenantCommand::SetRetention(None)).unwrap();
        tenant.evolve(&cleared[0]);
        assert_eq!(tenant.config.as_ref().unwrap().retention_days, None);
        let old: TenantConfig =
            serde_json::from_str(r#"{"name":"school","secrets":["s"]}"#).unwrap();
        assert_eq!(
            old.retention_days, None,
            "configs stored before read as none"
        );
        let set = tenant
            .decide(&TenantCommand::SetRecordingsStore(Some(
                " s3://bucket/a ".into(),
            )))
            .unwrap();
        assert_eq!(
            set,
            vec![TenantEvent::TenantRecordingsStoreSet {
                store: Some("s3://bucket/a".into())
            }]
        );
        tenant.evolve(&set[0]);
        assert_eq!(
            tenant.config.as_ref().unwrap().recordings_store.as_deref(),
            Some("s3://bucket/a")
        );
        assert!(
            tenant
                .decide(&TenantCommand::SetRecordingsStore(Some(
                    "s3://bucket/a".into()
                )))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            tenant.decide(&TenantCommand::SetRecordingsStore(Some(" ".into()))),
            Err(TenantError::InvalidRecordingsStore)
        );
    }

    #[test]
    fn names_are_dns_labels_and_default_is_reserved() {
        for good in ["t1", "school-a", "x"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Default",
            "default",
            "-a",
            "a-",
            "a.b",
            "a_b",
            &"a".repeat(64),
        ] {
            assert_eq!(validate_name(bad), Err(TenantError::InvalidName), "{bad}");
        }
    }

    #[test]
    fn create_rotate_secrets_and_delete() {
        let create = TenantCommand::Create {
            name: "school".into(),
            secret: "first-secret".into(),
        };
        assert_eq!(
            created().decide(&create),
            Err(TenantError::Exists("school".into()))
        );
        assert_eq!(
            Tenant::default().decide(&TenantCommand::Create {
                name: "school".into(),
                secret: "short".into()
            }),
            Err(TenantError::WeakSecret)
        );
        let mut tenant = created();
        assert_eq!(
            tenant.decide(&TenantCommand::RevokeSecret("first-secret".into())),
            Err(TenantError::LastSecret)
        );
        for event in tenant
            .decide(&TenantCommand::AddSecret("second-secret".into()))
            .unwrap()
        {
            tenant.evolve(&event);
        }
        assert!(
            tenant
                .decide(&TenantCommand::AddSecret("second-secret".into()))
                .unwrap()
                .is_empty(),
            "adding a secret twice changes nothing"
        );
        for event in tenant
            .decide(&TenantCommand::RevokeSecret("first-secret".into()))
            .unwrap()
        {
            tenant.evolve(&event);
        }
        assert_eq!(
            tenant.config.as_ref().unwrap().secrets,
            vec!["second-secret".to_owned()]
        );
        for event in tenant.decide(&TenantCommand::Delete).unwrap() {
            tenant.evolve(&event);
        }
        assert!(tenant.config.is_none());
        assert!(matches!(
            tenant.decide(&TenantCommand::Delete),
            Err(TenantError::NotFound(_))
        ));
        assert_eq!(
            tenant.decide(&create),
            Err(TenantError::Retired("school".into())),
            "a deleted tenant's name is not reused"
        );
    }

    #[test]
    fn unchanged_settings_record_nothing() {
        let tenant = created();
        assert!(
            tenant
                .decide(&TenantCommand::SetLimits(TenantLimits::default()))
                .unwrap()
                .is_empty()
        );
        assert!(
            tenant
                .decide(&TenantCommand::SetPolicy(TenantPolicy::default()))
                .unwrap()
                .is_empty()
        );
        let limits = TenantLimits {
            max_meetings: Some(3),
            max_attendees: None,
        };
        assert_eq!(
            tenant.decide(&TenantCommand::SetLimits(limits)).unwrap(),
            vec![TenantEvent::TenantLimitsSet { limits }]
        );
        assert_eq!(
            tenant.decide(&TenantCommand::SetRequiredTags(vec![" ".into()])),
            Err(TenantError::InvalidTag)
        );
        let bad = TenantPolicy {
            create: vec![ParamRule::Override {
                param: "meetingID".into(),
                value: "x".into(),
            }],
            ..TenantPolicy::default()
        };
        assert!(matches!(
            tenant.decide(&TenantCommand::SetPolicy(bad)),
            Err(TenantError::InvalidRule(_))
        ));
    }

    #[test]
    fn each_rule_does_what_it_says() {
        let rules = [
            ParamRule::Default {
                param: "welcome".into(),
                value: "Hello".into(),
            },
            ParamRule::Default {
                param: "record".into(),
                value: "false".into(),
            },
            ParamRule::Override {
                param: "allowStartStopRecording".into(),
                value: "false".into(),
            },
            ParamRule::Block {
                param: "logoutURL".into(),
            },
            ParamRule::Max {
                param: "maxParticipants".into(),
                value: 50,
            },
            ParamRule::Max {
                param: "duration".into(),
                value: 120,
            },
            ParamRule::Append {
                param: "disabledFeatures".into(),
                value: "chat,polls".into(),
            },
        ];
        let mut p = params(
            "record=true&allowStartStopRecording=true&logoutURL=http%3A%2F%2Fx&maxParticipants=500&duration=60&disabledFeatures=polls,captions",
        );
        for rule in &rules {
            rule.apply(&mut p);
        }
        assert_eq!(p.get("welcome"), Some("Hello"), "default when absent");
        assert_eq!(p.get("record"), Some("true"), "default keeps a given value");
        assert_eq!(p.get("allowStartStopRecording"), Some("false"));
        assert_eq!(p.get("logoutURL"), None);
        assert_eq!(p.get("maxParticipants"), Some("50"), "capped");
        assert_eq!(p.get("duration"), Some("60"), "under the cap stays");
        assert_eq!(p.get("disabledFeatures"), Some("polls,captions,chat"));
        let mut unlimited = params("maxParticipants=0");
        assert!(rules[4].apply(&mut unlimited));
        assert_eq!(
            unlimited.get("maxParticipants"),
            Some("50"),
            "0 is unlimited"
        );
        let mut absent = params("name=x");
        rules[6].apply(&mut absent);
        assert_eq!(absent.get("disabledFeatures"), Some("chat,polls"));
    }

    #[test]
    fn presentation_and_logo_defaults() {
        let policy = TenantPolicy {
            default_presentation: Some("https://cdn/p.pdf".into()),
            logo: Some("https://cdn/logo.png".into()),
            ..TenantPolicy::default()
        };
        let mut plain = params("name=x");
        assert!(policy.apply_create(&mut plain, false));
        assert_eq!(
            plain.get("preUploadedPresentation"),
            Some("https://cdn/p.pdf")
        );
        assert_eq!(plain.get("logo"), Some("https://cdn/logo.png"));
        let mut with_slides = params("name=x&logo=mine");
        policy.apply_create(&mut with_slides, true);
        assert_eq!(with_slides.get("preUploadedPresentation"), None);
        assert_eq!(with_slides.get("logo"), Some("mine"));
    }

    #[test]
    fn stored_payloads_read_back() {
        let stored = serde_json::json!({
            "type": "TenantPolicySet",
            "policy": {"create": [{"action": "max", "param": "maxParticipants", "value": 25}]}
        });
        let event: TenantEvent = serde_json::from_value(stored).unwrap();
        assert_eq!(event.type_name(), "TenantPolicySet");
    }
}
