//! The client's address behind trusted proxies (`[server] trusted_proxies`).
//!
//! A load balancer or ingress in front of the gateway makes every connection come from its own
//! address; it names the client in `X-Forwarded-For`, appending the address it received the
//! request from to whatever the request carried. Only the hops added by trusted proxies can be
//! believed: the client is the rightmost hop that is not a trusted proxy. What a client writes
//! into the header itself sits to the left of that and is never used, so it cannot pose as
//! another address. A connection from an untrusted peer is its own client, header or not.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

use crate::config::IpRange;

/// Hops read from the right at most (a header is bounded by `max_header` anyway).
const MAX_HOPS: usize = 32;

/// Whether `ip` is one of the `trusted` proxies.
pub fn is_trusted(trusted: &[IpRange], ip: IpAddr) -> bool {
    trusted.iter().any(|r| r.contains(ip))
}

/// The client of a request that arrived from `peer`.
pub fn client(peer: IpAddr, headers: &HeaderMap, trusted: &[IpRange]) -> IpAddr {
    if !is_trusted(trusted, peer) {
        return peer;
    }
    let values: Vec<String> = headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let mut client = peer;
    for hop in values
        .iter()
        .rev()
        .flat_map(|v| v.rsplit(','))
        .take(MAX_HOPS)
    {
        // A hop that is no address ends what can be believed: the proxy that passed it on
        // is the client as far as the gateway can tell.
        let Some(ip) = parse_hop(hop.trim()) else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(trusted, client) {
            break;
        }
    }
    client
}

/// `203.0.113.7`, `2001:db8::1`, or either with a port (`203.0.113.7:5123`, `[2001:db8::1]:443`)
/// as some proxies write them.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(list: &[&str]) -> Vec<IpRange> {
        list.iter().map(|r| IpRange::parse(r).unwrap()).collect()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_rightmost_hop_no_trusted_proxy_added() {
        let trusted = ranges(&["10.0.0.0/8", "2001:db8::/32"]);
        let proxy = ip("10.1.2.3");
        // The client's own claim (left) is never believed.
        let h = headers(&["1.1.1.1, 203.0.113.7, 10.9.9.9"]);
        assert_eq!(client(proxy, &h, &trusted), ip("203.0.113.7"));
        // Several header lines are one list, in order.
        let h = headers(&["1.1.1.1", "203.0.113.7", "10.9.9.9"]);
        assert_eq!(client(proxy, &h, &trusted), ip("203.0.113.7"));
        // Ports and IPv6 as proxies write them; a mapped IPv4 address is that address.
        let h = headers(&["[2001:db8::5]:443, 198.51.100.4:5123"]);
        assert_eq!(client(proxy, &h, &trusted), ip("198.51.100.4"));
        let h = headers(&["::ffff:198.51.100.4"]);
        assert_eq!(client(proxy, &h, &trusted), ip("198.51.100.4"));
        // Every hop trusted: the leftmost is the client.
        let h = headers(&["10.0.0.1, 10.0.0.2"]);
        assert_eq!(client(proxy, &h, &trusted), ip("10.0.0.1"));
    }

    #[test]
    fn untrusted_peers_and_unreadable_hops_are_not_believed() {
        let trusted = ranges(&["10.0.0.0/8"]);
        let h = headers(&["203.0.113.7"]);
        // A client talking to the gateway directly cannot choose its address.
        assert_eq!(client(ip("198.51.100.1"), &h, &trusted), ip("198.51.100.1"));
        assert_eq!(client(ip("10.0.0.1"), &h, &[]), ip("10.0.0.1"));
        // No header: the proxy itself.
        assert_eq!(
            client(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        // Garbage stops the walk at the last address a trusted proxy vouched for.
        let h = headers(&["203.0.113.7, not-an-ip, 10.0.0.9"]);
        assert_eq!(client(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.9"));
        let h = headers(&["203.0.113.7, unknown"]);
        assert_eq!(client(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
        // A long chain of trusted hops is read only so far.
        let chain = vec!["10.0.0.2"; 100].join(",");
        let h = headers(&[&format!("203.0.113.7,{chain}")]);
        assert_eq!(client(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.2"));
    }

    #[test]
    fn ranges_parse_strictly() {
        let r = IpRange::parse("192.168.0.0/16").unwrap();
        assert!(r.contains(ip("192.168.44.1")));
        assert!(!r.contains(ip("192.169.0.1")));
        assert!(!r.contains(ip("::1")));
        assert!(IpRange::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(IpRange::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        assert!(IpRange::parse("10.0.0.7").unwrap().contains(ip("10.0.0.7")));
        assert!(!IpRange::parse("10.0.0.7").unwrap().contains(ip("10.0.0.8")));
        let mapped = IpRange::parse("::ffff:10.0.0.0/104").unwrap();
        assert!(mapped.contains(ip("10.1.2.3")));
        assert!(mapped.contains(ip("::ffff:10.1.2.3")));
        assert!(!mapped.contains(ip("11.0.0.1")));
        assert!(!mapped.is_broad());
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "::/129",
            "example.com",
            "10.0.0.0/",
            "",
        ] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
        assert!(
            IpRange::parse("10.0.0.1/8")
                .unwrap_err()
                .contains("did you mean 10.0.0.0/8")
        );
    }
}
