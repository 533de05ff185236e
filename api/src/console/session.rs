//! Console sessions. The cookie carries the SHA-256 of the token signed in
//! with (never the token), when the session ends, and an HMAC over both
//! with the console's own key: `[console] session_key`
//! (`SWITCHBOARD_CONSOLE_KEY`, the same on every instance of a pool), or a
//! random key of this process. Never the BBB secret, which front-ends know,
//! and nothing kept in the database, so neither a front-end's operator nor
//! a reader of the database can forge a session. Each request looks the
//! token up again by its hash: revoking the token ends the session. The
//! CSRF token of a session is an HMAC of the same fields under another
//! label.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "switchboard_console";

type HmacSha256 = Hmac<Sha256>;

/// The key sessions and CSRF tokens are signed with.
#[derive(Clone)]
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

/// A verified session: whose token, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 (hex) of the token signed in with.
    pub token_hash: String,
    /// When it ends (seconds since the epoch).
    pub expires_at: i64,
}

impl SessionKey {
    /// The key derived from a configured console key (the same on every
    /// instance; changing it ends every session).
    pub fn derive(secret: &str) -> Self {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"switchboard console session key v1");
        Self(mac.finalize().into_bytes().into())
    }

    /// A random key: sessions last as long as this process.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut key);
        Self(key)
    }

    fn sign(&self, label: &str, token_hash: &str, expires_at: i64) -> String {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(label.as_bytes());
        mac.update(b"|");
        mac.update(token_hash.as_bytes());
        mac.update(b"|");
        mac.update(expires_at.to_string().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The cookie value of a session.
    pub fn issue(&self, session: &Session) -> String {
        format!(
            "{}.{}.{}",
            session.token_hash,
            session.expires_at,
            self.sign("session", &session.token_hash, session.expires_at)
        )
    }

    /// The session a cookie value stands for, if it is well formed, signed
    /// with this key, not over at `now_s` and not ending later than
    /// `max_lifetime_s` from now (no session outlives its setting).
    pub fn verify(&self, cookie: &str, now_s: i64, max_lifetime_s: i64) -> Option<Session> {
        let mut parts = cookie.trim().split('.');
        let (hash, expires, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some()
            || hash.len() != 64
            || !hash
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return None;
        }
        let expires_at: i64 = expires.parse().ok()?;
        let expected = self.sign("session", hash, expires_at);
        if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes()))
            || expires_at <= now_s
            || expires_at > now_s.saturating_add(max_lifetime_s)
        {
            return None;
        }
        Some(Session {
            token_hash: hash.to_owned(),
            expires_at,
        })
    }

    /// The CSRF token forms and htmx requests of a session carry.
    pub fn csrf(&self, session: &Session) -> String {
        self.sign("csrf", &session.token_hash, session.expires_at)
    }

    /// Whether `given` is the session's CSRF token (in constant time).
    pub fn csrf_matches(&self, session: &Session, given: &str) -> bool {
        bool::from(self.csrf(session).as_bytes().ct_eq(given.trim().as_bytes()))
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name).then_some(value)
    })
}

/// The `Set-Cookie` value of a session cookie on `path` lasting `max_age_s`
/// (zero: removes it).
pub fn set_cookie(value: &str, path: &str, max_age_s: i64) -> String {
    format!("{COOKIE}={value}; Path={path}; Max-Age={max_age_s}; Secure; HttpOnly; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            token_hash: switchboard_domain::token::hash_token("sb_admin_token"),
            expires_at: 2_000,
        }
    }

    #[test]
    fn a_cookie_verifies_under_its_key_until_it_ends() {
        let key = SessionKey::derive("a-bbb-secret-of-some-length");
        let cookie = key.issue(&session());
        assert_eq!(key.verify(&cookie, 1_999, 3_600), Some(session()));
        assert_eq!(key.verify(&cookie, 2_000, 3_600), None, "over at its end");
        assert_eq!(
            key.verify(&cookie, 1_000, 999),
            None,
            "ends later than any session may"
        );
        let other = SessionKey::derive("another-bbb-secret-of-length");
        assert_eq!(
            other.verify(&cookie, 1_000, 3_600),
            None,
            "another deployment's"
        );
        let random = SessionKey::random();
        assert_eq!(random.verify(&cookie, 1_000, 3_600), None);
        assert_eq!(
            random.verify(&random.issue(&session()), 1_000, 3_600),
            Some(session())
        );
    }

    #[test]
    fn a_changed_cookie_is_refused() {
        let key = SessionKey::derive("a-bbb-secret-of-some-length");
        let cookie = key.issue(&session());
        let (hash, rest) = cookie.split_once('.').unwrap();
        let (_, mac) = rest.split_once('.').unwrap();
        let longer = format!("{hash}.99999999.{mac}");
        let other_hash = format!("{}.2000.{mac}", "0".repeat(64));
        for bad in [
            longer.as_str(),
            other_hash.as_str(),
            "",
            "x.y.z",
            &format!("{cookie}.extra"),
            &cookie.to_uppercase(),
        ] {
            assert_eq!(key.verify(bad, 1_000, i64::MAX), None, "{bad}");
        }
    }

    #[test]
    fn the_csrf_token_is_the_sessions_own() {
        let key = SessionKey::derive("a-bbb-secret-of-some-length");
        let token = key.csrf(&session());
        assert!(key.csrf_matches(&session(), &token));
        let later = Session {
            expires_at: 3_000,
            ..session()
        };
        assert!(!key.csrf_matches(&later, &token));
        assert!(!key.csrf_matches(&session(), ""));
        assert_ne!(token, key.issue(&session()).rsplit('.').next().unwrap());
    }

    #[test]
    fn cookies_are_read_by_name_and_set_strictly() {
        assert_eq!(
            cookie_value("a=1; switchboard_console=v.1.m; b=2", COOKIE),
            Some("v.1.m")
        );
        assert_eq!(cookie_value("switchboard_consolex=1", COOKIE), None);
        let set = set_cookie("v", "/lb/console", 60);
        for part in [
            "Path=/lb/console",
            "Secure",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=60",
        ] {
            assert!(set.contains(part), "{set}");
        }
    }
}
