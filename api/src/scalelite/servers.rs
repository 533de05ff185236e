//! Scalelite's servers calls (its `Api::ServersController`).

use super::{Call, json, missing, shapes, text_of};
use poem::Response;
use poem::http::StatusCode;
use serde_json::json;
use switchboard_app::admin::scalelite::ScalelitePanic;
use switchboard_app::admin::views::{NewServer, ServerUpdate};
use switchboard_app::admin::{AdminService, Failure};
use switchboard_domain::server::ServerCommand;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    json(status, json!({ "error": message.into() }))
}

/// Scalelite's answer for an id it cannot find.
fn not_found(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("Couldn't find server with id={id}"),
    )
}

/// The server named by `id` exists (Scalelite's `set_server`).
async fn known(admin: &AdminService, id: &str) -> Result<(), Response> {
    match admin.scalelite_server(id).await {
        Ok(_) => Ok(()),
        Err(Failure::NotFound(_) | Failure::Invalid(_)) => Err(not_found(id)),
        Err(err) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())),
    }
}

/// `getServers`.
pub async fn get_servers(admin: &AdminService) -> Response {
    match admin.scalelite_servers().await {
        Ok(servers) if servers.is_empty() => {
            error(StatusCode::NOT_FOUND, "No servers are configured")
        }
        Ok(servers) => json(StatusCode::OK, servers.iter().map(shapes::server).collect()),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

/// `getServerInfo?id=`.
pub async fn get_server_info(admin: &AdminService, call: &Call) -> Response {
    let id = call.text("id");
    match admin.scalelite_server(&id).await {
        Ok(server) => json(StatusCode::OK, shapes::server(&server)),
        Err(Failure::NotFound(_) | Failure::Invalid(_)) => not_found(&id),
        Err(err) => error(StatusCode::BAD_REQUEST, err.to_string()),
    }
}

/// A load multiplier as Scalelite reads one (Ruby's `to_d`: the leading
/// number, `"1.5x"` is 1.5; no number is 0).
fn multiplier(value: &str) -> f64 {
    let text = value.trim_start();
    let mut end = 0;
    let mut seen_point = false;
    for (index, c) in text.char_indices() {
        let sign = index == 0 && (c == '-' || c == '+');
        let point = c == '.' && !seen_point;
        if !(c.is_ascii_digit() || sign || point) {
            break;
        }
        seen_point |= point;
        end = index + c.len_utf8();
    }
    text[..end].parse::<f64>().unwrap_or(0.0)
}

/// `addServer` with `{"server": {url, secret, load_multiplier, tag}}`:
/// added disabled, as Scalelite adds servers.
pub async fn add_server(admin: &AdminService, call: &Call) -> Response {
    let Some(server) = call.object("server") else {
        return missing("server");
    };
    let url = text_of(server.get("url"));
    let secret = text_of(server.get("secret"));
    if url.trim().is_empty() || secret.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "Server needs a URL and a secret");
    }
    let load_multiplier = match multiplier(&text_of(server.get("load_multiplier"))) {
        0.0 => 1.0,
        value => value,
    };
    let tag = Some(text_of(server.get("tag"))).filter(|tag| !tag.is_empty());
    let new = NewServer {
        url,
        secret,
        tag,
        load_multiplier: Some(load_multiplier),
        checksum: None,
        metrics_url: None,
        enabled: Some(false),
    };
    let added = match admin.add_server(new, &call.principal).await {
        Ok(added) => added,
        Err(err) => return error(StatusCode::BAD_REQUEST, err.to_string()),
    };
    match admin.scalelite_server(&added.id).await {
        Ok(server) => json(StatusCode::CREATED, shapes::server(&server)),
        Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

/// `updateServer` with `{"id", "server": {state, load_multiplier, secret,
/// tag}}` (Scalelite's `ServerUpdateService`).
pub async fn update_server(admin: &AdminService, call: &Call) -> Response {
    let id = call.text("id");
    if let Err(response) = known(admin, &id).await {
        return response;
    }
    // Scalelite answers this one in JSON (its update rescues every error).
    let Some(server) = call.object("server") else {
        return error(
            StatusCode::BAD_REQUEST,
            "param is missing or the value is empty: server",
        );
    };
    let state = text_of(server.get("state"));
    let command = match state.as_str() {
        "" => None,
        "enable" => Some(ServerCommand::Enable),
        "cordon" => Some(ServerCommand::Cordon),
        "disable" => Some(ServerCommand::Disable),
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("Invalid state parameter: {other}"),
            );
        }
    };
    let load_multiplier = match text_of(server.get("load_multiplier")) {
        text if text.is_empty() => None,
        text => match multiplier(&text) {
            0.0 => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Load-multiplier must be a non-zero number",
                );
            }
            value => Some(value),
        },
    };
    let update = ServerUpdate {
        secret: Some(text_of(server.get("secret"))).filter(|secret| !secret.is_empty()),
        // Given (even empty, which removes it); absent or null: unchanged.
        tag: server
            .get("tag")
            .filter(|tag| !tag.is_null())
            .map(|tag| text_of(Some(tag))),
        load_multiplier,
        ..ServerUpdate::default()
    };
    match admin
        .scalelite_update_server(&id, update, command, &call.principal)
        .await
    {
        Ok(server) => json(StatusCode::OK, shapes::server(&server)),
        Err(err) => error(StatusCode::BAD_REQUEST, err.to_string()),
    }
}

/// `deleteServer` with `{"id"}`: removed even with meetings, as Scalelite
/// does (they are forgotten).
pub async fn delete_server(admin: &AdminService, call: &Call) -> Response {
    let id = call.text("id");
    if let Err(response) = known(admin, &id).await {
        return response;
    }
    match admin.remove(&id, true, &call.principal).await {
        Ok(()) => json(
            StatusCode::OK,
            json!({ "success": format!("Server id={id} was destroyed") }),
        ),
        Err(err) => error(
            StatusCode::BAD_REQUEST,
            format!("Couldn't destroy server id={id}: {err}"),
        ),
    }
}

/// A flag as Scalelite reads one (`presence`): `true`, `"true"`, `1`.
fn flag(call: &Call, key: &str) -> bool {
    let nested = call.params.get("server").and_then(|server| server.get(key));
    let value = call.params.get(key).or(nested);
    matches!(text_of(value).as_str(), "true" | "1")
}

/// `panicServer` with `{"id", "keep_state", "skip_end_calls"}` (also
/// accepted inside `"server"`, as Scalelite's documentation shows them).
pub async fn panic_server(admin: &AdminService, call: &Call) -> Response {
    let id = call.text("id");
    if let Err(response) = known(admin, &id).await {
        return response;
    }
    let options = ScalelitePanic {
        keep_state: flag(call, "keep_state"),
        skip_end_calls: flag(call, "skip_end_calls"),
    };
    match admin.scalelite_panic(&id, options, &call.principal).await {
        Ok(_) => json(
            StatusCode::OK,
            json!({
                "success": format!(
                    "Server id={id} has been disabled and the meetings have been destroyed"
                )
            }),
        ),
        Err(err) => {
            tracing::warn!(server = %id, error = %err, "scalelite API: panic failed");
            error(
                StatusCode::BAD_REQUEST,
                format!("Couldn't disable server id={id}"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::multiplier;

    #[test]
    fn multipliers_are_read_as_rubys_to_d_reads_them() {
        assert_eq!(multiplier("1.5"), 1.5);
        assert_eq!(multiplier(" 2x"), 2.0);
        assert_eq!(multiplier("1.5.3"), 1.5);
        assert_eq!(multiplier("abc"), 0.0);
        assert_eq!(multiplier(""), 0.0);
    }
}
