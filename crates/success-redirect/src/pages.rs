//! The small HTML pages of the buyer-facing routes: one shell, escaped text, links built
//! from configuration only.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use llmxt_http::{html_form_response, html_response};

use crate::SuccessDeps;

/// A complete page: `head_extra` goes into `<head>` (e.g. a refresh), `body` is trusted HTML
/// built by the caller from escaped parts. Its forms may post nowhere.
pub(crate) fn page(
    status: StatusCode,
    title: &str,
    head_extra: &str,
    body: &str,
) -> Response<Body> {
    html_response(status, render(title, head_extra, body))
}

/// Like [`page`], for pages whose forms post back to this origin.
pub(crate) fn form_page(status: StatusCode, title: &str, body: &str) -> Response<Body> {
    html_form_response(status, render(title, "", body))
}

fn render(title: &str, head_extra: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{head_extra}\
         <title>{title}</title></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem\">\
         <h1>{title}</h1>{body}</body></html>"
    )
}

/// A page that explains `text` and links back to the site (and to checkout when configured).
pub(crate) fn message_page(
    deps: &SuccessDeps,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response<Body> {
    let site = escape_html(deps.config.site_url.as_str());
    let checkout = deps
        .config
        .checkout_url
        .as_deref()
        .map(|url| format!(" · <a href=\"{}\">Go to checkout</a>", escape_html(url)))
        .unwrap_or_default();
    page(
        status,
        title,
        "",
        &format!("<p>{text}</p><p><a href=\"{site}\">Back to the site</a>{checkout}</p>"),
    )
}

/// Like [`message_page`], with the email sign-in link offered: the way back for a buyer whose
/// claim was spent, expired or never came.
pub(crate) fn message_with_sign_in(
    deps: &SuccessDeps,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response<Body> {
    let restore = escape_html(&restore_url(deps));
    let site = escape_html(deps.config.site_url.as_str());
    page(
        status,
        title,
        "",
        &format!(
            "<p>{text}</p><p><a id=\"sign-in\" href=\"{restore}\">Get a sign-in link by email</a> \
             · <a href=\"{site}\">Back to the site</a></p>"
        ),
    )
}

/// `/upgrade/restore` on the site's own origin (never from request headers).
pub(crate) fn restore_url(deps: &SuccessDeps) -> String {
    format!("{}/upgrade/restore", deps.config.site_url.origin())
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
