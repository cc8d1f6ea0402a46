//! Where a channel's connections go: a [`Resolver`] turns the configured target into
//! addresses (`host:port` strings). The channel spreads its connections over them (fewest
//! connections per address first, addresses in backoff last) and asks again after a failed
//! dial and every [`RESOLVE_INTERVAL`].

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

/// How often a channel refreshes its addresses while dials succeed.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(30);

/// The addresses a resolution produced, or why there are none.
pub type Resolution = Result<Vec<String>, String>;

/// Turns a target into addresses to dial.
pub trait Resolver: Send + Sync + 'static {
    /// The current addresses (at least one on success).
    fn resolve(&self) -> Pin<Box<dyn Future<Output = Resolution> + Send + '_>>;
}

/// A fixed list of addresses.
#[derive(Debug, Clone)]
pub struct StaticResolver(pub Vec<String>);

impl Resolver for StaticResolver {
    fn resolve(&self) -> Pin<Box<dyn Future<Output = Resolution> + Send + '_>> {
        let list = self.0.clone();
        Box::pin(async move {
            if list.is_empty() {
                Err("the static address list is empty".to_string())
            } else {
                Ok(list)
            }
        })
    }
}

/// Every address DNS gives for `host:port` (IPv4 and IPv6), in the resolver's order.
#[derive(Debug, Clone)]
pub struct DnsResolver(pub String);

impl Resolver for DnsResolver {
    fn resolve(&self) -> Pin<Box<dyn Future<Output = Resolution> + Send + '_>> {
        Box::pin(async move {
            let found = tokio::net::lookup_host(self.0.as_str())
                .await
                .map_err(|e| format!("cannot resolve {}: {e}", self.0))?;
            let mut out: Vec<String> = Vec::new();
            for a in found {
                let a = a.to_string();
                if !out.contains(&a) {
                    out.push(a);
                }
            }
            if out.is_empty() {
                return Err(format!("{} resolved to no address", self.0));
            }
            Ok(out)
        })
    }
}

/// The resolver a plain target gets: an `ip:port` literal is used as it is, anything else
/// goes through DNS.
pub fn for_target(target: &str) -> Box<dyn Resolver> {
    if target.parse::<SocketAddr>().is_ok() {
        Box::new(StaticResolver(vec![target.to_string()]))
    } else {
        Box::new(DnsResolver(target.to_string()))
    }
}

/// The host part of `host:port` (brackets of an IPv6 literal removed), for the TLS server
/// name and `:authority`.
pub fn host_of(target: &str) -> &str {
    let host = match target.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => target,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_split_from_ports() {
        assert_eq!(host_of("localhost:8080"), "localhost");
        assert_eq!(host_of("[::1]:443"), "::1");
        assert_eq!(host_of("example.com"), "example.com");
    }

    #[tokio::test]
    async fn literals_are_static_and_names_go_through_dns() {
        assert_eq!(
            for_target("127.0.0.1:9").resolve().await.unwrap(),
            ["127.0.0.1:9"]
        );
        let local = for_target("localhost:9").resolve().await.unwrap();
        assert!(
            local.iter().any(|a| a == "127.0.0.1:9" || a == "[::1]:9"),
            "{local:?}"
        );
        assert!(StaticResolver(vec![]).resolve().await.is_err());
    }
}
