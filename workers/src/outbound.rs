//! Where Switchboard may send requests to URLs it was given (callbacks a
//! front-end supplied): not to loopback, private, link-local (cloud
//! metadata), shared, multicast or unspecified addresses, unless an
//! operator allows a range. Names are resolved once by [`GuardedResolver`]
//! and the connection goes to the checked address, so a name that resolves
//! differently a second time (DNS rebinding) cannot slip through.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Which addresses outbound requests may reach.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

/// A range in the allow-list is not `ADDRESS/PREFIX` or an address.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an address range such as 10.0.0.0/8 or fd00::/8")]
pub struct BadRange(pub String);

impl AddressPolicy {
    /// Public addresses only, plus the `allowed` ranges (`10.0.0.0/8`,
    /// `127.0.0.1`, `fd00::/8`...).
    pub fn new<S: AsRef<str>>(allowed: &[S]) -> Result<Self, BadRange> {
        let allowed = allowed
            .iter()
            .map(|range| {
                let range = range.as_ref().trim();
                range
                    .parse::<IpNet>()
                    .or_else(|_| range.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| BadRange(range.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    /// Whether a request may go to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip) || self.allowed.iter().any(|range| range.contains(&ip))
    }
}

/// IPv4-mapped and -compatible IPv6 addresses as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // Benchmarking, 198.18.0.0/15; reserved, 240.0.0.0/4.
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local (fc00::/7, also AWS's fd00:ec2::254 metadata).
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10.
        || (first & 0xffc0) == 0xfe80
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

/// Why an outbound request was not sent.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The host resolves (or is) only to addresses the policy refuses.
    #[error(
        "{0} is a private, loopback or link-local address (allow it with SWITCHBOARD_OUTBOUND_ALLOW)"
    )]
    Private(String),
    /// The name did not resolve.
    #[error("{0} does not resolve")]
    Unresolved(String),
}

/// Checks a URL whose host is an address literal (which reqwest connects to
/// without asking a resolver).
pub fn check_literal(policy: &AddressPolicy, url: &str) -> Result<(), Refused> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Ok(());
    };
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if policy.allows(ip) {
        Ok(())
    } else {
        Err(Refused::Private(ip.to_string()))
    }
}

/// A resolver for reqwest that resolves with the system and keeps only the
/// addresses the policy allows.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl GuardedResolver {
    /// A resolver under `policy`.
    pub fn new(policy: Arc<AddressPolicy>) -> Self {
        Self { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|_| Refused::Unresolved(host.clone()))?
                .collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|addr| policy.allows(addr.ip()))
                .collect();
            if allowed.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(if found.is_empty() {
                        Refused::Unresolved(host)
                    } else {
                        Refused::Private(host)
                    });
                return Err(error);
            }
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_refused_by_default() {
        let policy = AddressPolicy::default();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "224.0.0.1",
        ] {
            assert!(!policy.allows(ip(refused)), "{refused} allowed");
        }
        for allowed in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "1.1.1.1",
        ] {
            assert!(policy.allows(ip(allowed)), "{allowed} refused");
        }
    }

    #[test]
    fn operators_allow_ranges() {
        let policy = AddressPolicy::new(&["10.0.0.0/8", "127.0.0.1"]).unwrap();
        assert!(policy.allows(ip("10.9.9.9")));
        assert!(policy.allows(ip("127.0.0.1")));
        assert!(policy.allows(ip("::ffff:127.0.0.1")));
        assert!(!policy.allows(ip("127.0.0.2")));
        assert!(!policy.allows(ip("192.168.0.1")));
        assert!(AddressPolicy::new(&["ten"]).is_err());
    }

    #[test]
    fn address_literals_are_checked_before_any_request() {
        let policy = AddressPolicy::default();
        assert!(check_literal(&policy, "http://169.254.169.254/latest/meta-data/").is_err());
        assert!(check_literal(&policy, "http://[::1]:8080/x").is_err());
        assert!(check_literal(&policy, "https://app.example.org/cb").is_ok());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused() {
        use reqwest::dns::Resolve;
        let resolver = GuardedResolver::new(Arc::new(AddressPolicy::default()));
        let refused = resolver.resolve("localhost".parse().unwrap()).await;
        assert!(refused.is_err());
        let allowed = GuardedResolver::new(Arc::new(
            AddressPolicy::new(&["127.0.0.0/8", "::1"]).unwrap(),
        ));
        assert!(allowed.resolve("localhost".parse().unwrap()).await.is_ok());
    }
}
