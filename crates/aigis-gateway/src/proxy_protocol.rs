//! The PROXY protocol (HAProxy's, versions 1 and 2) on connections from trusted proxies
//! (`[server] proxy_protocol = true`).
//!
//! A load balancer that passes TCP or TLS through (an AWS Network Load Balancer, HAProxy in TCP
//! mode) cannot add `X-Forwarded-For`: TLS, and so mTLS, ends at the gateway. It writes the
//! client's address in a short header before the connection's first byte instead. The header is
//! read only from `trusted_proxies`, where it must come: anyone else could claim any address.
//! The header is consumed exactly, so the TLS handshake or HTTP that follows is untouched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// How long a proxy may take to send the header.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The version 2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest version 1 header, `\r\n` included (the specification's bound).
const V1_MAX: usize = 107;
/// The longest version 2 header accepted: the 16 fixed bytes and addresses with a few kilobytes
/// of TLVs (cloud load balancers add endpoint ids and the like, well under this).
const V2_MAX: usize = 16 + 4096;

/// What a header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Relayed for this client.
    Client(SocketAddr),
    /// The proxy's own connection (a health check, `LOCAL`), or a client whose address the
    /// proxy does not know (`UNKNOWN`, a UNIX socket): the connection's peer stands.
    Proxy,
}

/// Reads and consumes the PROXY header at the start of `tcp`, waiting at most [`READ_TIMEOUT`].
/// Errors say what is wrong with the header (quoting at most one of its fields).
pub async fn read(tcp: &mut TcpStream) -> Result<Origin, String> {
    tokio::time::timeout(READ_TIMEOUT, read_header(tcp))
        .await
        .map_err(|_| format!("no PROXY header within {}s", READ_TIMEOUT.as_secs()))?
}

async fn read_header(tcp: &mut TcpStream) -> Result<Origin, String> {
    let mut buf = vec![0u8; V2_MAX];
    loop {
        // Peek, so that nothing past the header is taken from the stream.
        let n = tcp
            .peek(&mut buf)
            .await
            .map_err(|e| format!("reading the PROXY header: {e}"))?;
        if n == 0 {
            return Err("the connection closed before a PROXY header".into());
        }
        if let Some(len) = header_len(&buf[..n])? {
            tcp.read_exact(&mut buf[..len])
                .await
                .map_err(|e| format!("reading the PROXY header: {e}"))?;
            return parse(&buf[..len]);
        }
        // Part of the header has arrived; the rest is a segment away.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The length of the header `bytes` starts with, `None` while it may still be incomplete.
fn header_len(bytes: &[u8]) -> Result<Option<usize>, String> {
    if bytes.starts_with(b"PROXY ") {
        let window = &bytes[..bytes.len().min(V1_MAX)];
        return match window.windows(2).position(|w| w == b"\r\n") {
            Some(at) => Ok(Some(at + 2)),
            None if bytes.len() >= V1_MAX => Err(format!(
                "PROXY v1 header without CRLF in its first {V1_MAX} bytes"
            )),
            None => Ok(None),
        };
    }
    if bytes.starts_with(V2_SIGNATURE) {
        let Some(fixed) = bytes.get(..16) else {
            return Ok(None);
        };
        let len = 16 + usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
        if len > V2_MAX {
            return Err(format!(
                "PROXY v2 header of {len} bytes, more than the {V2_MAX} accepted"
            ));
        }
        return Ok((bytes.len() >= len).then_some(len));
    }
    let prefix_of = |sig: &[u8]| sig.starts_with(&bytes[..bytes.len().min(sig.len())]);
    if prefix_of(b"PROXY ") || prefix_of(V2_SIGNATURE) {
        return Ok(None);
    }
    Err("the connection does not start with a PROXY header (v1 or v2)".into())
}

/// Parses a complete header ([`header_len`] bytes).
fn parse(header: &[u8]) -> Result<Origin, String> {
    if header.starts_with(V2_SIGNATURE) {
        parse_v2(header)
    } else {
        parse_v1(header)
    }
}

/// `PROXY TCP4 SRC DST SPORT DPORT\r\n`, `PROXY TCP6 …` or `PROXY UNKNOWN …\r\n`.
fn parse_v1(header: &[u8]) -> Result<Origin, String> {
    let line = header
        .strip_suffix(b"\r\n")
        .and_then(|l| std::str::from_utf8(l).ok())
        .ok_or("PROXY v1 header is not ASCII text ending in CRLF")?;
    let fields: Vec<&str> = line.split(' ').collect();
    match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(Origin::Proxy),
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let v6 = *family == "TCP6";
            let addr = |text: &str| -> Result<IpAddr, String> {
                let ip = if v6 {
                    text.parse::<Ipv6Addr>().map(IpAddr::V6)
                } else {
                    text.parse::<Ipv4Addr>().map(IpAddr::V4)
                };
                ip.map_err(|_| format!("PROXY v1 header: `{text}` is not a {family} address"))
            };
            let src = addr(src)?;
            addr(dst)?;
            let sport = port(sport)?;
            port(dport)?;
            Ok(Origin::Client(SocketAddr::new(src, sport)))
        }
        _ => Err("PROXY v1 header is not `PROXY TCP4|TCP6 SRC DST SPORT DPORT`".into()),
    }
}

/// A decimal port, without a sign or leading zeros.
fn port(text: &str) -> Result<u16, String> {
    let ok = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    ok.then(|| text.parse::<u16>().ok())
        .flatten()
        .ok_or_else(|| format!("PROXY v1 header: `{text}` is not a port"))
}

/// The binary header: signature, version and command, family, length, addresses, TLVs.
fn parse_v2(header: &[u8]) -> Result<Origin, String> {
    let (fixed, rest) = header.split_at(16);
    let (version, command) = (fixed[12] >> 4, fixed[12] & 0x0f);
    if version != 2 {
        return Err(format!("PROXY v2 header with version {version}"));
    }
    match command {
        0 => return Ok(Origin::Proxy), // LOCAL: the proxy's own connection
        1 => {}
        other => return Err(format!("PROXY v2 header with command {other}")),
    }
    let need = |n: usize| -> Result<&[u8], String> {
        rest.get(..n).ok_or_else(|| {
            format!(
                "PROXY v2 addresses need {n} bytes, the header has {}",
                rest.len()
            )
        })
    };
    // The low nibble is the transport (1 stream, 2 datagram), the high one the address family.
    match fixed[13] >> 4 {
        1 => {
            let a = need(12)?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Ok(Origin::Client(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([a[8], a[9]]),
            )))
        }
        2 => {
            let a = need(36)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[..16]);
            let ip = Ipv6Addr::from(octets);
            Ok(Origin::Client(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([a[32], a[33]]),
            )))
        }
        // UNSPEC or a UNIX socket: no address to use.
        0 | 3 => Ok(Origin::Proxy),
        other => Err(format!("PROXY v2 header with address family {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&u16::try_from(addresses.len()).unwrap().to_be_bytes());
        h.extend_from_slice(addresses);
        h
    }

    fn sock(text: &str) -> Origin {
        Origin::Client(text.parse().unwrap())
    }

    #[test]
    fn version_1_headers_are_read_and_bounded() {
        let h = b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n";
        let len = header_len(h).unwrap().unwrap();
        assert_eq!(&h[len..len + 3], b"GET", "exactly the header is consumed");
        assert_eq!(parse(&h[..len]).unwrap(), sock("203.0.113.7:56324"));
        let h = b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\n";
        assert_eq!(parse(h).unwrap(), sock("[2001:db8::7]:4000"));
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").unwrap(), Origin::Proxy);
        assert_eq!(
            parse(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n").unwrap(),
            Origin::Proxy
        );
        // Incomplete: wait for more; too long without CRLF: refused.
        assert_eq!(header_len(b"PROXY TCP4 203.0").unwrap(), None);
        assert_eq!(header_len(b"PRO").unwrap(), None);
        assert!(header_len(&[b"PROXY ".as_slice(), &[b'1'; 200]].concat()).is_err());
        for bad in [
            "PROXY TCP4 203.0.113.7 10.0.0.1 56324\r\n",
            "PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
            "PROXY TCP6 203.0.113.7 2001:db8::1 1 2\r\n",
            "PROXY TCP4 203.0.113.7 10.0.0.1 65536 443\r\n",
            "PROXY TCP4 203.0.113.7 10.0.0.1 0443 443\r\n",
            "PROXY TCP4 203.0.113.7 10.0.0.1 -1 443\r\n",
            "PROXY TCP4  203.0.113.7 10.0.0.1 1 443\r\n",
            "PROXY UDP4 203.0.113.7 10.0.0.1 1 443\r\n",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(parse(b"PROXY TCP4 \xff 10.0.0.1 1 443\r\n").is_err());
    }

    #[test]
    fn version_2_headers_are_read_and_bounded() {
        let mut a4 = vec![203, 0, 113, 7, 10, 0, 0, 1];
        a4.extend_from_slice(&56324u16.to_be_bytes());
        a4.extend_from_slice(&443u16.to_be_bytes());
        let h = v2(1, 0x11, &a4);
        assert_eq!(header_len(&h).unwrap(), Some(28));
        assert_eq!(parse(&h).unwrap(), sock("203.0.113.7:56324"));
        // TLVs after the addresses are skipped; bytes after the header are left alone.
        let mut with_tlv = a4.clone();
        with_tlv.extend_from_slice(&[0x04, 0x00, 0x01, 0x00]);
        let mut h = v2(1, 0x11, &with_tlv);
        h.extend_from_slice(b"\x16\x03\x01");
        assert_eq!(header_len(&h).unwrap(), Some(32));
        assert_eq!(parse(&h[..32]).unwrap(), sock("203.0.113.7:56324"));
        let mut a6 = Vec::new();
        a6.extend_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().unwrap().octets());
        a6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        a6.extend_from_slice(&[0x0f, 0xa0, 0x01, 0xbb]);
        assert_eq!(
            parse(&v2(1, 0x21, &a6)).unwrap(),
            sock("[2001:db8::7]:4000")
        );
        // LOCAL (a health check), UNSPEC and UNIX keep the peer.
        assert_eq!(parse(&v2(0, 0x00, &[])).unwrap(), Origin::Proxy);
        assert_eq!(parse(&v2(1, 0x00, &[])).unwrap(), Origin::Proxy);
        assert_eq!(parse(&v2(1, 0x31, &[0; 216])).unwrap(), Origin::Proxy);
        // Incomplete, oversized, short or unknown: waited for or refused.
        assert_eq!(header_len(&h[..20]).unwrap(), None);
        assert_eq!(header_len(&V2_SIGNATURE[..5]).unwrap(), None);
        let mut huge = v2(1, 0x11, &a4);
        huge[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(header_len(&huge).is_err());
        assert!(
            parse(&v2(1, 0x11, &a4[..8])).is_err(),
            "addresses cut short"
        );
        assert!(parse(&v2(1, 0x21, &a4)).is_err(), "IPv6 needs 36 bytes");
        assert!(parse(&v2(2, 0x11, &a4)).is_err(), "unknown command");
        assert!(parse(&v2(1, 0x41, &a4)).is_err(), "unknown family");
        let mut v3 = v2(1, 0x11, &a4);
        v3[12] = 0x31;
        assert!(parse(&v3).is_err(), "version 3");
    }

    #[test]
    fn anything_else_is_not_a_proxy_header() {
        for start in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"\x16\x03\x01\x02\x00",
            b"proxy tcp4",
            b"\r\n\r\nX",
        ] {
            assert!(header_len(start).is_err(), "{start:?}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..400 {
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed.to_le_bytes()[0]
                })
                .collect();
            for prefix in [&b"PROXY "[..], V2_SIGNATURE] {
                bytes.splice(..0, prefix.iter().copied());
                if let Ok(Some(n)) = header_len(&bytes) {
                    let _ = parse(&bytes[..n]);
                }
                bytes.drain(..prefix.len());
            }
        }
    }
}
