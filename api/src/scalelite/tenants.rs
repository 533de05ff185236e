//! Scalelite's tenants calls (its `Api::TenantsController`). Tenants are
//! always enabled in Switchboard, so the calls never answer Scalelite's
//! "Multitenancy is disabled".

use super::{Call, json, missing, shapes, text_of};
use poem::Response;
use poem::http::StatusCode;
use serde_json::json;
use switchboard_app::admin::scalelite::ScaleliteTenant;
use switchboard_app::admin::{AdminService, Failure};

fn answer(status: StatusCode, key: &str, message: impl Into<String>) -> Response {
    json(status, json!({ key: message.into() }))
}

/// Scalelite's secrets text: colon-separated.
fn secrets_of(text: &str) -> Vec<String> {
    text.split(':')
        .map(str::trim)
        .filter(|secret| !secret.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The tenant `id` names (its Scalelite id or its name), or Scalelite's 404.
async fn find(admin: &AdminService, id: &str) -> Result<ScaleliteTenant, Response> {
    admin.scalelite_tenant(id).await.map_err(|err| match err {
        Failure::NotFound(message) => answer(StatusCode::NOT_FOUND, "error", message),
        other => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "error",
            other.to_string(),
        ),
    })
}

/// `getTenants`.
pub async fn get_tenants(admin: &AdminService) -> Response {
    match admin.scalelite_tenants().await {
        Ok(tenants) if tenants.is_empty() => answer(StatusCode::OK, "message", "No tenants exist"),
        Ok(tenants) => json(StatusCode::OK, tenants.iter().map(shapes::tenant).collect()),
        Err(err) => answer(StatusCode::INTERNAL_SERVER_ERROR, "error", err.to_string()),
    }
}

/// `getTenantInfo?id=`.
pub async fn get_tenant_info(admin: &AdminService, call: &Call) -> Response {
    match find(admin, &call.text("id")).await {
        Ok(tenant) => json(StatusCode::OK, shapes::tenant(&tenant)),
        Err(response) => response,
    }
}

/// `addTenant` with `{"tenant": {name, secrets}}`.
pub async fn add_tenant(admin: &AdminService, call: &Call) -> Response {
    let Some(tenant) = call.object("tenant") else {
        return missing("tenant");
    };
    let name = text_of(tenant.get("name"));
    let secrets = secrets_of(&text_of(tenant.get("secrets")));
    if name.trim().is_empty() || secrets.is_empty() {
        return answer(
            StatusCode::BAD_REQUEST,
            "message",
            "Error: both name and secrets are required to create a Tenant",
        );
    }
    match admin
        .scalelite_add_tenant(&name, &secrets, &call.principal)
        .await
    {
        Ok(tenant) => json(
            StatusCode::CREATED,
            json!({ "tenant": shapes::tenant(&tenant) }),
        ),
        Err(err) => answer(StatusCode::UNPROCESSABLE_ENTITY, "error", err.to_string()),
    }
}

/// `updateTenant` with `{"id", "tenant": {name, secrets}}`. Switchboard
/// keeps a tenant's name (its URLs and records are filed under it): a new
/// name is refused.
pub async fn update_tenant(admin: &AdminService, call: &Call) -> Response {
    let tenant = match find(admin, &call.text("id")).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let Some(changes) = call.object("tenant") else {
        return missing("tenant");
    };
    let name = text_of(changes.get("name"));
    if !name.is_empty() && name != tenant.name {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            "error",
            format!(
                "Switchboard does not rename tenants: create `{name}` with addTenant, move the \
                 front-end to it, then delete `{}`",
                tenant.name
            ),
        );
    }
    let secrets = secrets_of(&text_of(changes.get("secrets")));
    if !secrets.is_empty()
        && let Err(err) = admin
            .replace_tenant_secrets(&tenant.name, &secrets, &call.principal)
            .await
    {
        return answer(StatusCode::UNPROCESSABLE_ENTITY, "error", err.to_string());
    }
    match find(admin, &tenant.name).await {
        Ok(tenant) => json(StatusCode::OK, json!({ "tenant": shapes::tenant(&tenant) })),
        Err(response) => response,
    }
}

/// `deleteTenant` with `{"id"}` (with its running meetings, as Scalelite).
pub async fn delete_tenant(admin: &AdminService, call: &Call) -> Response {
    let tenant = match find(admin, &call.text("id")).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    match admin
        .delete_tenant(&tenant.name, true, &call.principal)
        .await
    {
        Ok(()) => answer(
            StatusCode::OK,
            "success",
            format!("Tenant id={} was destroyed", tenant.id),
        ),
        Err(err) => answer(StatusCode::UNPROCESSABLE_ENTITY, "error", err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_colon_separated() {
        assert_eq!(secrets_of("a:b: :c"), ["a", "b", "c"]);
        assert!(secrets_of("").is_empty());
    }
}
