//! Who is asking: the client's address for per-IP limits, and whether a form post comes from
//! our own pages.

use std::net::IpAddr;

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

use crate::SuccessDeps;

/// The client's address, as a key for per-IP limits. With `CLIENT_IP_HEADER` set, the
/// address the merchant's own proxy put in that header (`x-forwarded-for`: its last hop;
/// `cloudfront-viewer-address`: without the port); when that header is missing or not an
/// address, and without the setting, API Gateway's `sourceIp`. IPv6 addresses are keyed by
/// their /64 network (one subscriber usually holds a whole /64).
pub fn client_ip(deps: &SuccessDeps, request: &Request) -> String {
    let from_header = deps
        .config
        .limits
        .client_ip_header
        .as_deref()
        .and_then(|name| {
            let value = llmxt_http::header(request, name)?;
            let parsed = address_in_header(name, value);
            if parsed.is_none() {
                tracing::warn!(
                    header = name,
                    value = llmxt_http::loggable(value),
                    "CLIENT_IP_HEADER holds no address; using sourceIp"
                );
            }
            parsed
        });
    let address = from_header.or_else(|| source_ip(request).parse().ok());
    match address {
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(address) => address.to_string(),
        None => source_ip(request),
    }
}

/// The address in a proxy header's value.
fn address_in_header(name: &str, value: &str) -> Option<IpAddr> {
    let value = match name {
        // Each proxy appends the address it saw: the last entry is the merchant's proxy's.
        "x-forwarded-for" => value.rsplit(',').next()?,
        _ => value,
    }
    .trim();
    // CloudFront always appends the port (`198.51.100.7:46532`, `2001:db8::1:46532`), so a
    // v6 address cannot be told from one with a port by parsing: strip it first.
    if name != "cloudfront-viewer-address"
        && let Ok(address) = value.parse()
    {
        return Some(address);
    }
    let (host, port) = value.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The caller's address as API Gateway saw it.
fn source_ip(request: &Request) -> String {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .http
            .source_ip
            .clone()
            .unwrap_or_else(|| "unknown".to_owned()),
        _ => "local".to_owned(),
    }
}

/// Whether a form post may act: sent as `application/x-www-form-urlencoded` by one of our
/// own pages (`Sec-Fetch-Site: same-origin`, or an `Origin` equal to the site's or to the
/// origin the request reached). A cross-site page can neither post such a form to us
/// unnoticed (modern browsers send both headers) nor use `text/plain` to dodge a preflight.
pub fn same_origin_form(deps: &SuccessDeps, request: &Request) -> bool {
    let form_encoded = llmxt_http::header(request, "content-type").is_some_and(|value| {
        value.split(';').next().is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if !form_encoded {
        return false;
    }
    if llmxt_http::header(request, "sec-fetch-site") == Some("same-origin") {
        return true;
    }
    let Some(origin) = llmxt_http::header(request, "origin") else {
        return false;
    };
    origin == deps.config.site_url.origin() || api_origin(request).is_some_and(|api| api == origin)
}

/// `https://` + the domain the request reached (API Gateway's `domainName`).
fn api_origin(request: &Request) -> Option<String> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .domain_name
            .as_deref()
            .map(|domain| format!("https://{domain}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_headers_give_the_clients_address() {
        let parse = |name: &str, value: &str| address_in_header(name, value).map(|a| a.to_string());
        assert_eq!(
            parse("x-forwarded-for", "198.51.100.7, 10.0.0.1, 203.0.113.9").as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(
            parse("cloudfront-viewer-address", "198.51.100.7:46532").as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!(
            parse("cloudfront-viewer-address", "2001:db8::1:46532").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            parse("cloudfront-viewer-address", "2001:db8::1:443").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            parse("cloudfront-viewer-address", "[2001:db8::7]:443").as_deref(),
            Some("2001:db8::7")
        );
        assert_eq!(
            parse("x-real-ip", " 198.51.100.8 ").as_deref(),
            Some("198.51.100.8")
        );
        assert_eq!(
            parse("x-real-ip", "2001:db8::9").as_deref(),
            Some("2001:db8::9")
        );
        for junk in ["", "unknown", "198.51.100.7:port", "1.2.3.4.5"] {
            assert_eq!(parse("x-real-ip", junk), None, "{junk}");
        }
    }
}
