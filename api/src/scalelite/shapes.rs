//! Scalelite's JSON shapes of servers and tenants.

use serde_json::{Value, json};
use switchboard_app::admin::scalelite::{ScaleliteServer, ScaleliteTenant};

/// A server as Scalelite's `server_to_json` writes it.
pub fn server(server: &ScaleliteServer) -> Value {
    json!({
        "id": server.id,
        "url": server.url,
        "secret": server.secret,
        "tag": server.tag.clone().unwrap_or_default(),
        "bbb_version": server.bbb_version.clone().unwrap_or_default(),
        "state": server.state,
        "load": server.load.map_or_else(|| json!("unavailable"), |load| json!(load)),
        "load_multiplier": ruby_big_decimal(server.load_multiplier),
        "online": if server.online { "online" } else { "offline" },
    })
}

/// A tenant as Scalelite renders its record: secrets colon-separated.
pub fn tenant(tenant: &ScaleliteTenant) -> Value {
    json!({
        "id": tenant.id,
        "name": tenant.name,
        "secrets": tenant.secrets.join(":"),
    })
}

/// A number as Scalelite's JSON shows a `BigDecimal` (ActiveSupport's
/// `to_s` in its `F` format): `1.5` is `"1.5"`, `2` is `"2.0"`.
pub fn ruby_big_decimal(value: f64) -> String {
    if !value.is_finite() {
        return "0.0".to_owned();
    }
    if value.fract() == 0.0 {
        format!("{value:.1}")
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipliers_are_written_as_scalelite_writes_big_decimals() {
        assert_eq!(ruby_big_decimal(1.5), "1.5");
        assert_eq!(ruby_big_decimal(1.0), "1.0");
        assert_eq!(ruby_big_decimal(2.5), "2.5");
        assert_eq!(ruby_big_decimal(0.05), "0.05");
        assert_eq!(ruby_big_decimal(10.0), "10.0");
    }

    #[test]
    fn servers_have_scalelites_fields() {
        let value = server(&ScaleliteServer {
            id: "id".into(),
            url: "https://bbb/bigbluebutton/api".into(),
            secret: "s".into(),
            tag: None,
            bbb_version: None,
            state: "enabled".into(),
            load: None,
            load_multiplier: 2.0,
            online: false,
        });
        assert_eq!(value["tag"], "");
        assert_eq!(value["bbb_version"], "");
        assert_eq!(value["load"], "unavailable");
        assert_eq!(value["load_multiplier"], "2.0");
        assert_eq!(value["online"], "offline");
    }
}
