//! What the three functions share at the HTTP edge: reading requests, building responses,
//! and the one mapping from errors to status codes.
#![forbid(unsafe_code)]

use lambda_http::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, LOCATION, SET_COOKIE};
use lambda_http::http::{HeaderMap, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use llmxt_domain::config::ConfigError;
use llmxt_domain::token::{CookieIssuer, IssuedCookie, TokenError, VerifiedToken};
use serde_json::{Value, json};

/// Every error a function answers with, mapped to its status in [`ApiError::status`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Malformed input (`400`).
    #[error("{0}")]
    BadRequest(&'static str),
    /// Missing or invalid signature (`401`).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// No such route (`404`).
    #[error("not found")]
    NotFound,
    /// Wrong HTTP method (`405`).
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// Body over the limit (`413`).
    #[error("request body too large")]
    PayloadTooLarge,
    /// Storage failed or is unreachable; the caller should retry (`503`).
    #[error("temporarily unavailable, retry later")]
    Unavailable,
    /// Anything else on our side (`500`).
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short JSON body with a safe message: `{"error": "..."}`.
    pub fn into_response(self) -> Response<Body> {
        let mut response = json_response(self.status(), &json!({ "error": self.to_string() }));
        if let Self::MethodNotAllowed(allowed) = self {
            response
                .headers_mut()
                .insert("allow", HeaderValue::from_static(allowed));
        }
        response
    }
}

impl From<&llmxt_store::store::StoreError> for ApiError {
    fn from(error: &llmxt_store::store::StoreError) -> Self {
        use llmxt_store::store::StoreError;
        match error {
            StoreError::Unavailable(_) | StoreError::Contention => Self::Unavailable,
            StoreError::MissingTable(_)
            | StoreError::Corrupt(_)
            | StoreError::Credentials(_)
            | StoreError::Rejected(_)
            | StoreError::NotFound(_) => Self::Internal,
        }
    }
}

/// `X-Content-Type-Options: nosniff` on a response: browsers must not guess another type
/// than the one sent. Every builder here adds it; call it on a response built elsewhere.
pub fn no_sniff(response: &mut Response<Body>) {
    add_no_sniff(response.headers_mut());
}

fn add_no_sniff(headers: &mut HeaderMap) {
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
}

/// A JSON response that is never cached.
pub fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    add_no_sniff(headers);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An HTML response that is never cached and runs no scripts.
pub fn html_response(status: StatusCode, html: String) -> Response<Body> {
    let mut response = Response::new(Body::Text(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    add_no_sniff(headers);
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

/// An HTML page whose forms may post back to the same origin (and nowhere else); like
/// [`html_response`] otherwise.
pub fn html_form_response(status: StatusCode, html: String) -> Response<Body> {
    let mut response = html_response(status, html);
    response.headers_mut().insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    );
    response
}

/// A `303 See Other` to `location` (after a form post), optionally setting a cookie.
pub fn see_other(location: &str, set_cookie: Option<&str>) -> Response<Body> {
    let mut response = redirect(location, set_cookie);
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
}

/// A `302` to `location`, optionally setting a cookie. `location` must be built from
/// configuration, never from the request.
pub fn redirect(location: &str, set_cookie: Option<&str>) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    add_no_sniff(headers);
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, value);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if let Some(cookie) = set_cookie {
        add_set_cookie(headers, cookie);
    }
    response
}

/// `response` setting an issued cookie: the cookie, and its edge pass when one came with it.
pub fn with_cookie(mut response: Response<Body>, cookie: Option<&IssuedCookie>) -> Response<Body> {
    for set_cookie in cookie.into_iter().flat_map(IssuedCookie::set_cookies) {
        add_set_cookie(response.headers_mut(), set_cookie);
    }
    response
}

/// Appends a `Set-Cookie` header.
pub fn add_set_cookie(headers: &mut HeaderMap, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        headers.append(SET_COOKIE, value);
    }
}

/// A header's value, when present and visible ASCII.
pub fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// `HEAD`, and requests a browser or link checker makes ahead of a visit
/// (`Sec-Purpose: prefetch`, `Purpose: prefetch`, `X-Moz: prefetch`): they must not spend a
/// one-time claim, create a checkout or open a portal session.
pub fn is_prefetch(request: &Request) -> bool {
    let says_prefetch = |name: &str| {
        header(request, name).is_some_and(|value| value.to_ascii_lowercase().contains("prefetch"))
    };
    request.method() == lambda_http::http::Method::HEAD
        || says_prefetch("sec-purpose")
        || says_prefetch("purpose")
        || says_prefetch("x-moz")
}

/// The raw request body.
pub fn body_bytes(request: &Request) -> &[u8] {
    request.body().as_ref()
}

/// One query parameter, percent-decoded; `None` when absent or given more than once
/// (an ambiguous query is not guessed at).
pub fn query_param(request: &Request, name: &str) -> Option<String> {
    let params = request.query_string_parameters_ref()?;
    match params.all(name) {
        Some(values) if values.len() == 1 => values.first().map(|v| (*v).to_owned()),
        _ => None,
    }
}

/// Path and query exactly as received (still percent-encoded), for request signatures.
pub fn path_and_query(request: &Request) -> String {
    let raw_path = request.raw_http_path();
    let path = if raw_path.is_empty() {
        request.uri().path()
    } else {
        raw_path
    };
    match request.uri().query() {
        Some(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.to_owned(),
    }
}

/// The value of one cookie from the `Cookie` header(s) (the first, when sent several times).
pub fn cookie<'a>(request: &'a Request, name: &'a str) -> Option<&'a str> {
    cookies(request, name).next()
}

/// Every value sent for a cookie name, in order: a sibling subdomain can plant a second
/// cookie of the same name.
pub fn cookies<'a>(request: &'a Request, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    request
        .headers()
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// Longest unauthenticated header value written to a log.
pub const MAX_LOGGED_HEADER_CHARS: usize = 64;

/// An unauthenticated value made safe to log: at most [`MAX_LOGGED_HEADER_CHARS`] characters
/// (then `…`), control characters replaced, so a client cannot flood or forge log lines.
pub fn loggable(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(MAX_LOGGED_HEADER_CHARS)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    if value.chars().count() > MAX_LOGGED_HEADER_CHARS {
        out.push('…');
    }
    out
}

/// Whether the client prefers JSON (`Accept: application/json`).
pub fn wants_json(request: &Request) -> bool {
    header(request, "accept").is_some_and(|accept| accept.contains("application/json"))
}

/// Sets up JSON-capable logging as the Lambda runtime recommends (`AWS_LAMBDA_LOG_FORMAT`,
/// `AWS_LAMBDA_LOG_LEVEL`, or `RUST_LOG`).
pub fn init_tracing() {
    lambda_http::tracing::init_default_subscriber();
}

/// Returns the configuration, or says the one-line reason and exits: a function with bad
/// configuration must not start. In a terminal that is one line on stderr; on Lambda
/// (`AWS_LAMBDA_RUNTIME_API` set) the structured log line with the variable comes first,
/// for log searches and alarms.
pub fn config_or_exit<T>(config: Result<T, ConfigError>) -> T {
    match config {
        Ok(config) => config,
        Err(error) => {
            if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
                tracing::error!(variable = error.variable, "{error}");
            }
            eprintln!("{error}");
            std::process::exit(1);
        }
    }
}

pub use llmxt_domain::token::{COOKIE_NAME, COOKIE_NAMES};

/// An entitlement token that passed every check, with the cookie name it came under.
#[derive(Debug, Clone)]
pub struct PresentedToken {
    /// One of [`COOKIE_NAMES`].
    pub name: &'static str,
    /// The verified token.
    pub token: VerifiedToken,
}

/// Every entitlement token the request carries that may be read: under the name cookies are
/// issued under, and under the other name only as [`CookieIssuer::reads`] allows (before
/// `COOKIE_OLD_NAME_UNTIL`, and only when no cookie under the issued name came). The valid
/// ones in order, and the names under which an invalid one came, with why.
pub fn presented_tokens(
    request: &Request,
    issuer: &CookieIssuer,
    now: i64,
) -> (Vec<PresentedToken>, Vec<(&'static str, TokenError)>) {
    let mut valid = Vec::new();
    let mut rejected = Vec::new();
    let issued_name_present = cookies(request, issuer.name()).any(|value| !value.is_empty());
    for name in COOKIE_NAMES {
        if !issuer.reads(name, issued_name_present, now) {
            continue;
        }
        for value in cookies(request, name).filter(|value| !value.is_empty()) {
            match issuer.signer().verify(value, now) {
                Ok(token) => valid.push(PresentedToken { name, token }),
                Err(error) => rejected.push((name, error)),
            }
        }
    }
    (valid, rejected)
}

/// Whether valid cookies of more than one email came: a sibling subdomain or a plain-http
/// page planted one. Billing, plan changes and checkout then ask the buyer to sign in
/// rather than guess whose they are.
pub fn several_emails(valid: &[PresentedToken]) -> bool {
    valid.first().is_some_and(|first| {
        valid
            .iter()
            .any(|p| p.token.claims.email != first.token.claims.email)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_values_are_truncated_and_stripped_of_control_characters() {
        assert_eq!(loggable("msg_123"), "msg_123");
        let long = "x".repeat(10_000);
        assert_eq!(loggable(&long).chars().count(), MAX_LOGGED_HEADER_CHARS + 1);
        assert!(loggable(&long).ends_with('…'));
        assert_eq!(loggable("a\nb\rc"), "a\u{FFFD}b\u{FFFD}c");
    }

    #[test]
    fn every_response_built_here_says_nosniff() {
        let responses = [
            json_response(StatusCode::OK, &json!({})),
            html_response(StatusCode::OK, String::new()),
            html_form_response(StatusCode::OK, String::new()),
            redirect("https://example.com/", None),
            see_other("https://example.com/", Some("a=b")),
            ApiError::NotFound.into_response(),
            ApiError::MethodNotAllowed("GET").into_response(),
            ApiError::PayloadTooLarge.into_response(),
        ];
        for response in responses {
            assert_eq!(
                response.headers()["x-content-type-options"],
                "nosniff",
                "{:?}",
                response.status()
            );
        }
    }

    #[test]
    fn status_mapping() {
        assert_eq!(ApiError::BadRequest("x").status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            ApiError::Unauthorized("x").status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            ApiError::MethodNotAllowed("GET").status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            ApiError::PayloadTooLarge.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            ApiError::Unavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            ApiError::Internal.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
