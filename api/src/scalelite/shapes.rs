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

/// A number as Ruby's `BigDecimal#to_s` (Scalelite's load multipliers in
/// JSON): `1.5` is `"0.15e1"`, `1` is `"0.1e1"`, `0.25` is `"0.25e0"`.
pub fn ruby_big_decimal(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return "0.0".to_owned();
    }
    let sign = if value < 0.0 { "-" } else { "" };
    // The shortest decimal that reads back as the value, then its digits
    // and the position of the point.
    let text = format!("{}", value.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let digits = format!("{whole}{fraction}");
    let leading = digits.len() - digits.trim_start_matches('0').len();
    let significant = digits.trim_matches('0');
    let exponent = whole.len() as i64 - leading as i64;
    format!("{sign}0.{significant}e{exponent}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipliers_are_written_as_ruby_writes_big_decimals() {
        assert_eq!(ruby_big_decimal(1.5), "0.15e1");
        assert_eq!(ruby_big_decimal(1.0), "0.1e1");
        assert_eq!(ruby_big_decimal(0.25), "0.25e0");
        assert_eq!(ruby_big_decimal(0.05), "0.5e-1");
        assert_eq!(ruby_big_decimal(10.0), "0.1e2");
        assert_eq!(ruby_big_decimal(123.456), "0.123456e3");
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
        assert_eq!(value["load_multiplier"], "0.2e1");
        assert_eq!(value["online"], "offline");
    }
}
