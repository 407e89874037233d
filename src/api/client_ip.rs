//! Who the client is on the network: the TCP peer, or — behind trusted reverse proxies — the
//! nearest untrusted address of `X-Forwarded-For`.
//!
//! The header is written by every proxy on the way, each appending the address it received
//! the request from, so only its right-hand end can be believed: an entry added by a trusted
//! proxy is true, anything left of the first untrusted entry may be invented by the client.

use std::net::{IpAddr, SocketAddr};

use actix_web::HttpRequest;
use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The networks of reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses addresses (`10.0.0.1`, `::1`) and networks (`10.0.0.0/8`).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| {
                let e = e.trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("'{e}' is not an IP address or network such as 10.0.0.0/8")
                    })
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn contains(&self, ip: &IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`, given the request headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(&peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all(X_FORWARDED_FOR)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            // An entry that is not an address ends what can be believed: the last trusted hop
            // is then the best answer.
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = ip;
            if !self.contains(&ip) {
                break;
            }
        }
        client
    }
}

/// An `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

/// The client's address as configured for this server (see [`TrustedProxies`]).
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let state = req.app_data::<actix_web::web::Data<crate::startup::AppState>>();
    Some(match state {
        Some(state) => state.settings.trusted_proxies.client(peer, req.headers()),
        None => peer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(
                HeaderName::from_static(X_FORWARDED_FOR),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("10.0.0.5"), &xff(&["203.0.113.9"])),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_claim_another_address() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.client(ip("198.51.100.1"), &xff(&["203.0.113.9"])),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let p = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        // The client forged "1.1.1.1"; the edge proxy appended the real address.
        let headers = xff(&["1.1.1.1, 203.0.113.9", "10.0.0.7"]);
        assert_eq!(p.client(ip("127.0.0.1"), &headers), ip("203.0.113.9"));
        assert_eq!(
            p.client(ip("10.0.0.2"), &xff(&["[2001:db8::1]:443"])),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn garbage_in_the_chain_stops_at_the_last_trusted_hop() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.client(ip("10.0.0.2"), &xff(&["203.0.113.9, nonsense, 10.0.0.9"])),
            ip("10.0.0.9")
        );
        assert_eq!(p.client(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
    }

    #[test]
    fn bad_entries_are_refused_with_their_text() {
        let err = TrustedProxies::parse(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(err.contains("10.0.0.0/33"), "{err}");
        assert!(TrustedProxies::parse(&["proxy.local".into()]).is_err());
    }
}
