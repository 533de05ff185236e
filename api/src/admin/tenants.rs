//! Tenants in the admin API: front-ends with their own secrets, parameter
//! policy, limits and server pool. Secrets are accepted but never shown
//! again: views carry fingerprints.

use super::api::{AdminError, Answer, Created, Done, Tag, TokenAuth};
use super::facade::AdminFacade;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Enum, Object, OpenApi};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use switchboard_app::admin::Failure;
use switchboard_domain::tenant::{ParamRule, TenantLimits, TenantPolicy};
use switchboard_domain::token::TokenScope;

/// What a policy rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Set when absent.
    Default,
    /// Always set.
    Override,
    /// Remove.
    Block,
    /// Cap a number (absent or 0 counts as over the cap).
    Max,
    /// Add items to a comma-separated list.
    Append,
}

/// One rule for a create or join parameter.
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct PolicyRule {
    // What to do. (No doc comment: see `PanicReport::server`.)
    #[allow(missing_docs)]
    pub action: RuleAction,
    /// The parameter, as BBB spells it (e.g. `maxParticipants`).
    pub param: String,
    /// The value (a number for `max`; none for `block`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub value: Option<String>,
}

/// How a tenant's create and join parameters are adjusted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct PolicyView {
    /// Rules for create, applied in order.
    #[oai(default)]
    #[serde(default)]
    pub create: Vec<PolicyRule>,
    /// Rules for join, applied in order.
    #[oai(default)]
    #[serde(default)]
    pub join: Vec<PolicyRule>,
    /// Presentation URL for creates that bring none (`preUploadedPresentation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub default_presentation: Option<String>,
    /// Logo URL for creates that bring none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub logo: Option<String>,
}

/// Caps on what a tenant runs at once; absent is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct LimitsView {
    /// Running meetings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub max_meetings: Option<u64>,
    /// Attendees over all its running meetings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub max_attendees: Option<u64>,
}

/// A tenant as operators see it (secrets as fingerprints only).
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct TenantView {
    /// Name: the first host label (`NAME.lb.example.org`) and path prefix
    /// (`/t/NAME/bigbluebutton/api/`) that select it.
    pub name: String,
    /// Its BBB API path.
    pub api_path: String,
    /// Fingerprints of its secrets: `sha256:` and the first 8 hex digits of
    /// the secret's SHA-256 (nothing of the secret itself).
    pub secrets: Vec<String>,
    /// Server tags its meetings require (any of them); empty: every server.
    pub required_tags: Vec<String>,
    /// Limits.
    pub limits: LimitsView,
    /// Parameter policy.
    pub policy: PolicyView,
    /// Meetings it runs now.
    pub running_meetings: u64,
    /// Whether it has a stats token for `/t/NAME/stats` and
    /// `/t/NAME/metrics` (only its hash is kept).
    #[serde(default)]
    pub stats_token: bool,
    /// Days its recordings are kept after they end (absent: the global
    /// `[recordings] retention_days` applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Where its new recordings are kept (a directory or
    /// `s3://BUCKET/PREFIX`; absent: the deployment's store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recordings_store: Option<String>,
}

/// How long a tenant's recordings are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct RetentionView {
    /// Days after a recording ends (at least 1); absent: the global
    /// `[recordings] retention_days` applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub days: Option<u32>,
}

/// Where a tenant's new recordings are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct RecordingsStoreView {
    /// A directory or `s3://BUCKET/PREFIX` (reached with the deployment's
    /// S3 endpoint and credentials); absent: the deployment's store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub url: Option<String>,
}

/// A new tenant.
#[derive(Debug, Clone, PartialEq, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct NewTenant {
    /// Name (a lower-case DNS label; not `default`).
    pub name: String,
    /// Its first secret (at least 12 characters).
    pub secret: String,
    /// Server tags its meetings require.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub required_tags: Option<Vec<String>>,
    /// Limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub limits: Option<LimitsView>,
    /// Parameter policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub policy: Option<PolicyView>,
}

/// Changes to a tenant; absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Default, Object, Serialize, Deserialize)]
#[oai(skip_serializing_if_is_none)]
pub struct TenantUpdate {
    /// Server tags its meetings require (empty list: every server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub required_tags: Option<Vec<String>>,
    /// Limits (replaced as a whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub limits: Option<LimitsView>,
    /// Parameter policy (replaced as a whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub policy: Option<PolicyView>,
    /// Recording retention (`{}`: the global default; `{"days": 30}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub retention: Option<RetentionView>,
    /// Where its new recordings are kept (`{}`: the deployment's store;
    /// `{"url": "s3://bucket/prefix"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[oai(nullable)]
    pub recordings_store: Option<RecordingsStoreView>,
}

/// A secret to add or revoke (sent in the body, never in a URL).
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize, Deserialize)]
pub struct SecretBody {
    /// The secret.
    pub secret: String,
}

/// A tenant's new stats token, shown once (only its hash is kept).
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize, Deserialize)]
pub struct StatsToken {
    /// The tenant.
    pub tenant: String,
    /// The token: `Authorization: Bearer TOKEN` on `/t/NAME/stats` and
    /// `/t/NAME/metrics`.
    pub token: String,
}

fn rule_from_view(rule: &PolicyRule) -> Result<ParamRule, Failure> {
    let param = rule.param.clone();
    let value = || {
        rule.value.clone().ok_or_else(|| {
            Failure::Invalid(format!(
                "the {:?} rule for `{param}` needs a value",
                rule.action
            ))
        })
    };
    Ok(match rule.action {
        RuleAction::Default => ParamRule::Default {
            value: value()?,
            param,
        },
        RuleAction::Override => ParamRule::Override {
            value: value()?,
            param,
        },
        RuleAction::Block => ParamRule::Block { param },
        RuleAction::Append => ParamRule::Append {
            value: value()?,
            param,
        },
        RuleAction::Max => {
            let text = value()?;
            let value = text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    Failure::Invalid(format!(
                        "the max rule for `{param}` needs a positive whole number, not `{text}`"
                    ))
                })?;
            ParamRule::Max { param, value }
        }
    })
}

fn rule_view(rule: &ParamRule) -> PolicyRule {
    let (action, value) = match rule {
        ParamRule::Default { value, .. } => (RuleAction::Default, Some(value.clone())),
        ParamRule::Override { value, .. } => (RuleAction::Override, Some(value.clone())),
        ParamRule::Block { .. } => (RuleAction::Block, None),
        ParamRule::Max { value, .. } => (RuleAction::Max, Some(value.to_string())),
        ParamRule::Append { value, .. } => (RuleAction::Append, Some(value.clone())),
    };
    PolicyRule {
        action,
        param: rule.param().to_owned(),
        value,
    }
}

/// The domain policy a view describes.
pub fn policy_from_view(view: &PolicyView) -> Result<TenantPolicy, Failure> {
    Ok(TenantPolicy {
        create: view
            .create
            .iter()
            .map(rule_from_view)
            .collect::<Result<_, _>>()?,
        join: view
            .join
            .iter()
            .map(rule_from_view)
            .collect::<Result<_, _>>()?,
        default_presentation: view.default_presentation.clone().filter(|u| !u.is_empty()),
        logo: view.logo.clone().filter(|u| !u.is_empty()),
    })
}

/// The API shape of a tenant's policy.
pub fn policy_view(policy: &TenantPolicy) -> PolicyView {
    PolicyView {
        create: policy.create.iter().map(rule_view).collect(),
        join: policy.join.iter().map(rule_view).collect(),
        default_presentation: policy.default_presentation.clone(),
        logo: policy.logo.clone(),
    }
}

/// The API shape of a tenant's limits.
pub fn limits_view(limits: TenantLimits) -> LimitsView {
    LimitsView {
        max_meetings: limits.max_meetings,
        max_attendees: limits.max_attendees,
    }
}

/// A tenant's limits from their API shape.
pub fn limits(view: LimitsView) -> TenantLimits {
    TenantLimits {
        max_meetings: view.max_meetings,
        max_attendees: view.max_attendees,
    }
}

/// The tenants part of the admin API.
pub struct TenantsApi;

#[OpenApi]
impl TenantsApi {
    /// List tenants.
    #[oai(
        path = "/tenants",
        method = "get",
        tag = "Tag::Tenants",
        operation_id = "list_tenants"
    )]
    async fn list_tenants(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
    ) -> Answer<Vec<TenantView>> {
        auth.require(TokenScope::Read)?;
        Ok(Json(state.tenants().await?))
    }

    /// Create a tenant.
    #[oai(
        path = "/tenants",
        method = "post",
        tag = "Tag::Tenants",
        operation_id = "create_tenant"
    )]
    async fn create_tenant(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        body: Json<NewTenant>,
    ) -> Result<Created<TenantView>, AdminError> {
        let principal = auth.require(TokenScope::Admin)?;
        Ok(Created::Created(Json(
            state.create_tenant(body.0, principal).await?,
        )))
    }

    /// One tenant.
    #[oai(
        path = "/tenants/:name",
        method = "get",
        tag = "Tag::Tenants",
        operation_id = "get_tenant"
    )]
    async fn get_tenant(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        name: Path<String>,
    ) -> Answer<TenantView> {
        auth.require(TokenScope::Read)?;
        Ok(Json(state.tenant(&name).await?))
    }

    /// Change a tenant's required tags, limits or policy.
    #[oai(
        path = "/tenants/:name",
        method = "patch",
        tag = "Tag::Tenants",
        operation_id = "update_tenant"
    )]
    async fn update_tenant(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        name: Path<String>,
        body: Json<TenantUpdate>,
    ) -> Answer<TenantView> {
        let principal = auth.require(TokenScope::Admin)?;
        Ok(Json(state.update_tenant(&name, body.0, principal).await?))
    }

    /// Delete a tenant (refused while it runs meetings unless `force=true`).
    #[oai(
        path = "/tenants/:name",
        method = "delete",
        tag = "Tag::Tenants",
        operation_id = "delete_tenant"
    )]
    async fn delete_tenant(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        name: Path<String>,
        force: Query<Option<bool>>,
    ) -> Result<Done, AdminError> {
        let principal = auth.require(TokenScope::Admin)?;
        state
            .delete_tenant(&name, force.0.unwrap_or(false), principal)
            .await?;
        Ok(Done::NoContent)
    }

    /// Add a secret (rotation: add the new one, move front-ends, revoke the old).
    #[oai(
        path = "/tenants/:name/secrets",
        method = "post",
        tag = "Tag::Tenants",
        operation_id = "add_tenant_secret"
    )]
    async fn add_secret(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        name: Path<String>,
        body: Json<SecretBody>,
    ) -> Answer<TenantView> {
        let principal = auth.require(TokenScope::Admin)?;
        Ok(Json(
            state
                .add_tenant_secret(&name, body.0.secret, principal)
                .await?,
        ))
    }

    /// Revoke a secret (the last one cannot go).
    #[oai(
        path = "/tenants/:name/secrets/revoke",
        method = "post",
        tag = "Tag::Tenants",
        operation_id = "revoke_tenant_secret"
    )]
    async fn revoke_secret(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        name: Path<String>,
        body: Json<SecretBody>,
    ) -> Answer<TenantView> {
        let principal = auth.require(TokenScope::Admin)?;
        Ok(Json(
            state
                .revoke_tenant_secret(&name, body.0.secret, principal)
                .await?,
        ))
    }

    /// Issue a stats token for the tenant's own `/t/NAME/stats` and
    /// `/t/NAME/metrics` (replacing an earlier one); shown once.
    #[oai(
        path = "/tenants/:name/stats-token",
        method = "post",
        tag = "Tag::Tenants",
        operation_id = "issue_tenant_stats_token"
    )]
    async fn issue_stats_token(
        &self,
        auth: TokenAuth,
        state: poem::web::Data<&Arc<AdminFacade>>,
        name: Path<String>,
    ) -> Answer<StatsToken> {
        let principal = auth.require(TokenScope::Admin)?;
        let token = state.issue_stats_token(&name, principal).await?;
        Ok(Json(StatsToken {
            tenant: name.0,
            token,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_convert_both_ways_and_bad_ones_are_explained() {
        let view = PolicyView {
            create: vec![
                PolicyRule {
                    action: RuleAction::Max,
                    param: "maxParticipants".into(),
                    value: Some("25".into()),
                },
                PolicyRule {
                    action: RuleAction::Block,
                    param: "logoutURL".into(),
                    value: None,
                },
            ],
            join: vec![PolicyRule {
                action: RuleAction::Append,
                param: "userdata-bbb_hide_actions_bar".into(),
                value: Some("x".into()),
            }],
            default_presentation: Some("https://cdn/p.pdf".into()),
            logo: None,
        };
        let policy = policy_from_view(&view).unwrap();
        assert_eq!(policy_view(&policy), view);
        let bad = PolicyView {
            create: vec![PolicyRule {
                action: RuleAction::Max,
                param: "duration".into(),
                value: Some("lots".into()),
            }],
            ..PolicyView::default()
        };
        match policy_from_view(&bad) {
            Err(Failure::Invalid(message)) => assert!(message.contains("positive whole number")),
            other => panic!("{other:?}"),
        }
    }
}
