//! The client-IP restriction of the server pool. The Go library compares address strings per
//! request, after TLS and HTTP setup; here the check runs on parsed addresses at accept time,
//! so `::ffff:10.0.0.1` and `10.0.0.1` are the same client and a refused peer costs no
//! handshake.

use std::net::IpAddr;

/// The canonical form of an address: IPv4-mapped IPv6 addresses become IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Whether `peer` may connect when the pool allows only `allowed` (None: everyone).
pub fn allowed(allowed: Option<IpAddr>, peer: IpAddr) -> bool {
    match allowed {
        None => true,
        Some(a) => canonical(a) == canonical(peer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_and_plain_ipv4_are_the_same_client() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert!(allowed(Some(v4), mapped));
        assert!(allowed(Some(mapped), v4));
        assert!(!allowed(Some(v4), "10.0.0.2".parse().unwrap()));
        assert!(!allowed(
            Some("::1".parse().unwrap()),
            "127.0.0.1".parse().unwrap()
        ));
        assert!(allowed(None, "192.0.2.7".parse().unwrap()));
    }
}
