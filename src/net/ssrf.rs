//! The SSRF guard: which URLs the server may call for a tenant.
//!
//! A tenant admin can make the server send requests (an MCP ping, later webhooks), so a URL is
//! only acceptable when it is `http(s)` and every address its host stands for is a public
//! unicast address: never loopback, private, link-local (the cloud metadata service at
//! 169.254.169.254), shared (CGNAT), multicast, documentation, benchmark or reserved space, in
//! either IP version or in an IPv6 form that embeds such an IPv4 address.
//!
//! Checking the name is not enough: between the check and the connection, DNS may answer
//! differently (rebinding). So [`resolve`] returns the checked addresses and the caller
//! connects to those and nothing else (see `mcp::client_for`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// Why a URL was refused (the message is meant for the admin who entered it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn refused(message: impl Into<String>) -> Refused {
    Refused(message.into())
}

/// What the guard allows beyond public addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Policy {
    /// Internal addresses (loopback, private…) are allowed too: `mcp.allow_private_networks`.
    pub allow_private_networks: bool,
}

/// A URL that passed the guard and the addresses it may be reached at.
#[derive(Debug, Clone)]
pub struct CheckedUrl {
    pub url: Url,
    /// The host as the URL names it (a domain without its trailing dot, or an IP literal).
    pub host: String,
    /// Every address the host resolved to: all of them passed, and only they may be used.
    pub addrs: Vec<SocketAddr>,
}

/// Parses `uri` as an absolute `http`/`https` URL with a host. IPv4 addresses in odd spellings
/// (`2130706433`, `0x7f.1`, `017700000001`) come out in dotted form, as browsers read them.
pub fn parse_http_url(uri: &str) -> Result<Url, Refused> {
    let url = Url::parse(uri.trim()).map_err(|e| refused(format!("is not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused(format!(
            "must be an http:// or https:// URL (not {}:)",
            url.scheme()
        )));
    }
    if url.host().is_none() {
        return Err(refused("must name a host"));
    }
    Ok(url)
}

/// The URL's host and port, with the literal addresses checked and names that can only mean
/// this machine refused; `Ok(None)` addresses mean "a domain: resolve it".
fn host_of(url: &Url, policy: Policy) -> Result<(String, u16, Option<IpAddr>), Refused> {
    let port = url
        .port_or_known_default()
        .ok_or_else(|| refused("must have a port"))?;
    match url.host() {
        Some(Host::Ipv4(ip)) => Ok((ip.to_string(), port, Some(IpAddr::V4(ip)))),
        Some(Host::Ipv6(ip)) => Ok((ip.to_string(), port, Some(IpAddr::V6(ip)))),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name.is_empty() {
                return Err(refused("must name a host"));
            }
            if !policy.allow_private_networks
                && (name == "localhost" || name.ends_with(".localhost"))
            {
                return Err(refused(format!(
                    "points at this machine ({name}); only public addresses are allowed"
                )));
            }
            Ok((name, port, None))
        }
        None => Err(refused("must name a host")),
    }
}

/// Checks every resolved address of `host`; the first blocked one refuses the whole URL.
fn check_addrs(host: &str, addrs: &[SocketAddr], policy: Policy) -> Result<(), Refused> {
    if addrs.is_empty() {
        return Err(refused(format!(
            "host {host} does not resolve to an address"
        )));
    }
    if policy.allow_private_networks {
        return Ok(());
    }
    match addrs.iter().find(|a| is_blocked(a.ip())) {
        Some(bad) if bad.ip().to_string() == host => Err(refused(format!(
            "points at {host}, which is not a public address; only public addresses are allowed"
        ))),
        Some(bad) => Err(refused(format!(
            "names host {host}, which resolves to {}, not a public address; only public \
             addresses are allowed",
            bad.ip()
        ))),
        None => Ok(()),
    }
}

/// Checks `uri` now, resolving its host with the system resolver (blocking: call it off the
/// async workers).
pub fn check_blocking(uri: &str, policy: Policy) -> Result<CheckedUrl, Refused> {
    use std::net::ToSocketAddrs;
    let url = parse_http_url(uri)?;
    let (host, port, literal) = host_of(&url, policy)?;
    let addrs: Vec<SocketAddr> = match literal {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| refused(format!("host {host} cannot be resolved ({e})")))?
            .collect(),
    };
    check_addrs(&host, &addrs, policy)?;
    Ok(CheckedUrl { url, host, addrs })
}

/// Like [`check_blocking`], resolving asynchronously.
pub async fn resolve(uri: &str, policy: Policy) -> Result<CheckedUrl, Refused> {
    let url = parse_http_url(uri)?;
    let (host, port, literal) = host_of(&url, policy)?;
    let addrs: Vec<SocketAddr> = match literal {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| refused(format!("host {host} cannot be resolved ({e})")))?
            .collect(),
    };
    check_addrs(&host, &addrs, policy)?;
    Ok(CheckedUrl { url, host, addrs })
}

/// Whether `ip` is outside the public unicast space (and so must not be called).
pub fn is_blocked(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_blocked_v4(v4),
        IpAddr::V6(v6) => is_blocked_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from_be_bytes(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// IPv4 special-purpose space (IANA registry) that a server-side request must never reach.
const BLOCKED_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),       // "this network", incl. the unspecified address
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // shared address space (CGNAT)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local, incl. cloud metadata 169.254.169.254
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast (deprecated)
    ([192, 168, 0, 0], 16),  // private
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
    ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, incl. broadcast 255.255.255.255
];

fn is_blocked_v4(ip: Ipv4Addr) -> bool {
    BLOCKED_V4
        .iter()
        .any(|&(net, prefix)| in_v4(ip, net, prefix))
}

fn is_blocked_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    let v6 = |a: u16, b: u16, c: u16| Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0);
    // Forms that carry an IPv4 address: judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_blocked_v4(v4); // ::ffff:a.b.c.d
    }
    if in_v6(ip, v6(0x64, 0xff9b, 0), 96) {
        // NAT64 well-known prefix: the gateway connects to the embedded IPv4 address.
        return is_blocked_v4(Ipv4Addr::from(u128::from(ip) as u32));
    }
    if seg[0] == 0x2002 {
        // 6to4: the IPv4 address is in bits 16..48.
        let v4 = Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        );
        return is_blocked_v4(v4);
    }
    [
        (Ipv6Addr::UNSPECIFIED, 96), // ::/96: unspecified, loopback, IPv4-compatible (deprecated)
        (v6(0x64, 0xff9b, 1), 48),   // local-use NAT64
        (v6(0x100, 0, 0), 64),       // discard-only
        (v6(0x2001, 0, 0), 23),      // IETF protocol assignments (Teredo, benchmarking, ORCHID…)
        (v6(0x2001, 0xdb8, 0), 32),  // documentation
        (v6(0x3fff, 0, 0), 20),      // documentation (RFC 9637)
        (v6(0x5f00, 0, 0), 16),      // SRv6 SIDs
        (v6(0xfc00, 0, 0), 7),       // unique local (ULA)
        (v6(0xfe80, 0, 0), 10),      // link-local
        (v6(0xfec0, 0, 0), 10),      // site-local (deprecated)
        (v6(0xff00, 0, 0), 8),       // multicast
    ]
    .iter()
    .any(|&(net, prefix)| in_v6(ip, net, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(s: &str) -> bool {
        is_blocked(s.parse().unwrap())
    }

    #[test]
    fn internal_and_special_addresses_are_blocked() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.1.2.3",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.10",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "2001:db8::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(blocked(ip), "{ip} must be blocked");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "198.20.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!blocked(ip), "{ip} must pass");
        }
    }

    fn check(uri: &str) -> Result<CheckedUrl, Refused> {
        check_blocking(uri, Policy::default())
    }

    #[test]
    fn urls_that_reach_this_machine_or_its_network_are_refused() {
        for uri in [
            "http://127.0.0.1/",
            "http://localhost:8080/mcp",
            "http://LOCALHOST./mcp",
            "http://api.localhost/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://017700000001/",
            "http://127.1/",
            "http://0/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://[fd00::1]:8080/",
            "http://169.254.169.254/latest/meta-data/",
            "https://10.1.2.3/mcp",
            "http://192.168.0.1./",
        ] {
            assert!(check(uri).is_err(), "{uri} must be refused");
        }
    }

    #[test]
    fn only_http_and_https_urls_are_accepted() {
        for uri in [
            "file:///etc/passwd",
            "ftp://93.184.216.34/",
            "gopher://93.184.216.34/",
            "javascript:alert(1)",
            "not a url",
            "",
            "//93.184.216.34/",
        ] {
            assert!(check(uri).is_err(), "{uri} must be refused");
        }
        let ok = check("https://93.184.216.34:8443/mcp").expect("public IP literal");
        assert_eq!(
            ok.addrs,
            vec!["93.184.216.34:8443".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn private_networks_can_be_allowed_by_configuration() {
        let policy = Policy {
            allow_private_networks: true,
        };
        let ok = check_blocking("http://127.0.0.1:9/mcp", policy).expect("allowed");
        assert_eq!(ok.host, "127.0.0.1");
        assert!(check_blocking("file:///etc/passwd", policy).is_err());
    }
}
