//! The database URL as the store connects with it.
//!
//! A PostgreSQL URL that names no `sslmode` gets sqlx's (and libpq's)
//! `prefer`: TLS whenever the server offers it. To a server on this machine
//! (a loopback address or `localhost`) TLS protects nothing, since the bytes
//! never leave the kernel, yet it costs both processes a third of the CPU
//! of each statement (issue 22 measured it on creates). Such URLs connect
//! without TLS unless they say anything about TLS or another host
//! (`sslmode`, `ssl-mode`, `host`, `hostaddr`, or `PGSSLMODE` in the
//! environment); every other URL is left alone.

use std::net::IpAddr;

/// `url` with `sslmode=disable` added when it is a PostgreSQL URL to a
/// loopback host that says nothing of TLS (see the module); otherwise
/// `url` unchanged.
pub fn without_loopback_tls(url: &str) -> String {
    if std::env::var_os("PGSSLMODE").is_some() {
        return url.to_owned();
    }
    loopback_without_tls(url)
}

/// [`without_loopback_tls`] without the environment.
fn loopback_without_tls(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.to_owned();
    };
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return url.to_owned();
    }
    // sqlx reads both spellings of the mode, and `host` / `hostaddr`
    // replace the URL's host.
    if parsed
        .query_pairs()
        .any(|(key, _)| matches!(&*key, "sslmode" | "ssl-mode" | "host" | "hostaddr"))
    {
        return url.to_owned();
    }
    let loopback = match parsed.host() {
        // A `postgres:` URL's host is not parsed as an address (it is not a
        // special scheme), so `127.0.0.1` and `[::1]` arrive as names.
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    if !loopback {
        return url.to_owned();
    }
    parsed.query_pairs_mut().append_pair("sslmode", "disable");
    parsed.into()
}

#[cfg(test)]
mod tests {
    use super::loopback_without_tls as without_loopback_tls;

    #[test]
    fn loopback_urls_without_sslmode_connect_without_tls() {
        assert_eq!(
            without_loopback_tls("postgres://sb:pw@127.0.0.1:5432/switchboard"),
            "postgres://sb:pw@127.0.0.1:5432/switchboard?sslmode=disable"
        );
        assert_eq!(
            without_loopback_tls("postgresql://localhost/sb?application_name=x"),
            "postgresql://localhost/sb?application_name=x&sslmode=disable"
        );
        assert_eq!(
            without_loopback_tls("postgres://[::1]:5432/sb"),
            "postgres://[::1]:5432/sb?sslmode=disable"
        );
    }

    #[test]
    fn other_urls_are_left_alone() {
        for url in [
            "postgres://db.example.org/sb",
            "postgres://10.0.0.5/sb",
            "postgres://127.0.0.1/sb?sslmode=require",
            "postgres://localhost/sb?sslmode=verify-full",
            "postgres://localhost/sb?ssl-mode=require",
            "postgres://localhost/sb?host=db.example.org",
            "postgres://127.0.0.1/sb?hostaddr=10.0.0.5",
            "sqlite:///var/lib/switchboard/db.sqlite?mode=rwc",
            "not a url",
        ] {
            assert_eq!(without_loopback_tls(url), url);
        }
    }
}
