//! What a trusted reverse proxy forwards: the host the client asked for and
//! the client's address.

use std::net::IpAddr;

use warp::http::HeaderMap;

use crate::runtime::Runtime;

/// The host the client asked for: `Host`, or what a trusted proxy forwarded.
pub fn request_host(headers: &HeaderMap, trusted: bool) -> Option<String> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if trusted {
        if let Some(h) = get("x-forwarded-host") {
            return h.split(',').next().map(|h| h.trim().to_string());
        }
        if let Some(fwd) = get("forwarded") {
            let first = fwd.split(',').next().unwrap_or("");
            for part in first.split(';') {
                if let Some((k, v)) = part.trim().split_once('=') {
                    if k.eq_ignore_ascii_case("host") {
                        return Some(v.trim_matches('"').to_string());
                    }
                }
            }
        }
    }
    get("host").map(str::to_string)
}

/// The client's address: the peer, or, behind trusted proxies, the rightmost
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    trusted: bool,
    runtime: &Runtime,
) -> Option<IpAddr> {
    if !trusted {
        return peer;
    }
    let Some(xff) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) else {
        return peer;
    };
    let mut last = peer;
    for hop in xff.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if runtime.trusts_proxy(ip) => last = Some(ip),
            Ok(ip) => return Some(ip),
            Err(_) => return last,
        }
    }
    last
}
