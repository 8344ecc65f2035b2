//! The buyer-facing HTML pages: one branded shell ([`Shell`], built once from `BRAND_*` and
//! `SUPPORT_*`), a [`Page`] builder for the card inside it, escaped text, links built from
//! configuration only.
//!
//! The stylesheet is inline and allowed by its SHA-256 in the Content-Security-Policy (no
//! `'unsafe-inline'`); so is the one small script (the pending page's automatic retry). No
//! request goes to another origin except the configured logo.

use crate::brand::{AA_TEXT_CONTRAST, BrandConfig, Rgb};
use crate::config::SuccessConfig;
use crate::html::escape_html;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lambda_http::http::StatusCode;
use lambda_http::http::header::HeaderValue;
use lambda_http::{Body, Response};
use llmxt_http::html_response;
use sha2::{Digest, Sha256};

use crate::SuccessDeps;
use crate::words;

/// The page's one script: follows the `#next` link after `data-after` seconds (the pending
/// page's retry, a prefetched page's continue). Browsers without scripts press the link.
pub const RETRY_SCRIPT: &str = "var n=document.getElementById(\"next\");if(n)setTimeout(function(){location.replace(n.href)},1000*n.getAttribute(\"data-after\"));";

/// Light and dark palettes: page background, card, text, muted text, lines, error text and
/// error background. The link colour is derived from the brand colour per scheme.
const LIGHT: Palette = Palette {
    page: Rgb(0xf3, 0xf4, 0xf6),
    card: Rgb(0xff, 0xff, 0xff),
    text: Rgb(0x1b, 0x1f, 0x24),
    muted: Rgb(0x4b, 0x52, 0x5c),
    line: Rgb(0xd4, 0xd8, 0xde),
    error: Rgb(0xa1, 0x12, 0x1a),
    error_bg: Rgb(0xfd, 0xec, 0xed),
};
const DARK: Palette = Palette {
    page: Rgb(0x10, 0x12, 0x16),
    card: Rgb(0x1b, 0x1e, 0x24),
    text: Rgb(0xec, 0xee, 0xf1),
    muted: Rgb(0xb6, 0xbc, 0xc6),
    line: Rgb(0x3a, 0x40, 0x4a),
    error: Rgb(0xff, 0xb4, 0xb4),
    error_bg: Rgb(0x3d, 0x1a, 0x1d),
};

#[derive(Debug, Clone, Copy)]
struct Palette {
    page: Rgb,
    card: Rgb,
    text: Rgb,
    muted: Rgb,
    line: Rgb,
    error: Rgb,
    error_bg: Rgb,
}

impl Palette {
    /// The brand colour made readable as link text on both of this scheme's backgrounds.
    fn link(&self, brand: Rgb) -> Rgb {
        let light = self.page.luminance() > 0.18;
        // The harder background: the darker one for dark text, the lighter one for light text.
        let harder = if light == (self.page.luminance() < self.card.luminance()) {
            self.page
        } else {
            self.card
        };
        brand.readable_on(harder, AA_TEXT_CONTRAST)
    }

    fn variables(&self, brand: Rgb) -> String {
        format!(
            "--page:{};--card:{};--text:{};--muted:{};--line:{};--link:{};--alert-fg:{};--alert-bg:{}",
            self.page,
            self.card,
            self.text,
            self.muted,
            self.line,
            self.link(brand),
            self.error,
            self.error_bg
        )
    }
}

/// The shell every page shares, built once at cold start: the branded stylesheet and the
/// Content-Security-Policy parts that allow it.
#[derive(Debug, Clone)]
pub struct Shell {
    brand: BrandConfig,
    site: String,
    css: String,
    style_src: String,
    script_src: String,
    img_src: Option<String>,
}

impl Shell {
    /// The shell for this configuration.
    pub fn new(config: &SuccessConfig) -> Self {
        let brand = config.brand.clone();
        let css = stylesheet(brand.color);
        Self {
            style_src: format!("'sha256-{}'", sha256_base64(&css)),
            script_src: format!("'sha256-{}'", sha256_base64(RETRY_SCRIPT)),
            img_src: brand.logo_origin().map(str::to_owned),
            site: config.site_url.as_str().to_owned(),
            css,
            brand,
        }
    }

    /// The inline stylesheet.
    pub fn css(&self) -> &str {
        &self.css
    }

    /// The Content-Security-Policy of a page: its styles by hash, the retry script by hash
    /// when the page runs it, images from the logo's origin only, forms to this origin only
    /// when the page has one, never framed.
    pub fn content_security_policy(&self, forms: bool, script: bool) -> String {
        let mut policy = format!("default-src 'none'; style-src {}", self.style_src);
        if let Some(origin) = &self.img_src {
            policy.push_str(&format!("; img-src {origin}"));
        }
        if script {
            policy.push_str(&format!("; script-src {}", self.script_src));
        }
        let form_action = if forms { "'self'" } else { "'none'" };
        policy.push_str(&format!(
            "; base-uri 'none'; form-action {form_action}; frame-ancestors 'none'"
        ));
        policy
    }

    /// The support contact as a link (`id` on the footer's, which tests look for).
    fn support_link(&self, id: &str) -> Option<String> {
        self.brand.support.as_ref().map(|support| {
            format!(
                "<a{id} href=\"{}\">{}</a>",
                escape_html(&support.href()),
                escape_html(support.label())
            )
        })
    }

    fn render(&self, title: &str, main: &str, script: bool) -> String {
        let name = escape_html(&self.brand.name);
        let site = escape_html(&self.site);
        let logo = self
            .brand
            .logo_url
            .as_deref()
            .map(|url| {
                format!(
                    "<img id=\"logo\" src=\"{}\" alt=\"\" height=\"32\">",
                    escape_html(url)
                )
            })
            .unwrap_or_default();
        let support = self
            .support_link(" id=\"support\"")
            .map(|link| format!("<p>{}</p>", words::questions_contact(&link)))
            .unwrap_or_default();
        let script = if script {
            format!("<script>{RETRY_SCRIPT}</script>")
        } else {
            String::new()
        };
        format!(
            "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"color-scheme\" content=\"light dark\">\
             <title>{title} · {name}</title><style>{css}</style></head>\
             <body><div class=\"wrap\"><header><a id=\"brand\" href=\"{site}\">{logo}<span>{name}</span></a></header>\
             <main>{main}</main>\
             <footer>{support}<p><a id=\"back\" href=\"{site}\">{back}</a></p></footer></div>{script}</body></html>",
            lang = words::LANG,
            title = escape_html(title),
            back = words::back_to(&name),
            css = self.css,
        )
    }
}

fn sha256_base64(text: &str) -> String {
    STANDARD.encode(Sha256::digest(text.as_bytes()))
}

/// The stylesheet: system fonts, a light and a dark scheme, the brand colour on the primary
/// button (with a text colour derived for contrast) and, made readable, on links and focus
/// rings; targets at least 24 px, primary buttons 44 px.
fn stylesheet(brand: Rgb) -> String {
    format!(
        ":root{{color-scheme:light dark;{light};--brand:{brand};--on-brand:{on_brand}}}\
         @media (prefers-color-scheme:dark){{:root{{{dark}}}}}\
         *{{box-sizing:border-box}}\
         body{{margin:0;background:var(--page);color:var(--text);border-top:4px solid var(--brand);\
         font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}}\
         .wrap{{max-width:36rem;margin:0 auto;padding:1rem}}\
         header a{{display:inline-flex;align-items:center;gap:.6rem;min-height:44px;color:var(--text);\
         font-weight:650;font-size:1.15rem;text-decoration:none}}\
         header img{{height:32px;width:auto;max-width:10rem}}\
         main{{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1.5rem;margin:.75rem 0 1.25rem}}\
         h1{{font-size:1.5rem;line-height:1.25;margin:0 0 1rem}}\
         p{{margin:0 0 1rem}}\
         a{{color:var(--link);text-underline-offset:.15em}}\
         p a,li a{{display:inline-block;min-height:24px;line-height:24px}}\
         .actions{{display:flex;flex-wrap:wrap;align-items:center;gap:.75rem 1.25rem;margin-top:1.5rem}}\
         .actions a,footer a{{display:inline-flex;align-items:center;min-height:24px;min-width:24px}}\
         .actions .button,button{{display:inline-flex;align-items:center;justify-content:center;min-height:44px;\
         padding:.6rem 1.25rem;border:2px solid transparent;border-radius:8px;background:var(--brand);\
         color:var(--on-brand);font:inherit;font-weight:650;text-decoration:none;cursor:pointer}}\
         form{{margin:0}}\
         label{{display:block;font-weight:650;margin-bottom:.35rem}}\
         input{{display:block;width:100%;min-height:44px;padding:.5rem .75rem;margin-bottom:1rem;font:inherit;\
         color:var(--text);background:var(--card);border:1px solid var(--muted);border-radius:8px}}\
         :focus-visible{{outline:3px solid var(--link);outline-offset:2px}}\
         .alert,.notice{{padding:.75rem 1rem;border-radius:6px;border-left:4px solid}}\
         .alert{{color:var(--alert-fg);background:var(--alert-bg);border-color:var(--alert-fg);font-weight:650}}\
         .notice{{border-color:var(--link);background:var(--page)}}\
         .summary{{display:grid;grid-template-columns:auto 1fr;gap:.35rem 1rem;margin:0 0 1rem}}\
         .summary dt{{color:var(--muted)}}.summary dd{{margin:0;font-weight:650}}\
         footer{{color:var(--muted);font-size:.95rem;padding-bottom:2rem}}\
         footer p{{margin:.25rem 0}}",
        light = LIGHT.variables(brand),
        dark = DARK.variables(brand),
        on_brand = brand.readable_text(),
    )
}

/// One page: the card's heading, an optional error (`role="alert"`) or notice
/// (`role="status"`), text, then one primary action and secondary links.
#[derive(Debug, Default)]
pub(crate) struct Page {
    title: String,
    alert: Option<String>,
    notice: Option<String>,
    body: String,
    primary: Option<String>,
    links: Vec<String>,
    forms: bool,
    retry: bool,
}

impl Page {
    /// A page headed `title` (plain text).
    pub(crate) fn new(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            ..Self::default()
        }
    }

    /// A paragraph of plain text.
    pub(crate) fn text(mut self, text: &str) -> Self {
        self.body.push_str(&format!("<p>{}</p>", escape_html(text)));
        self
    }

    /// Trusted HTML, built by the caller from escaped parts.
    pub(crate) fn html(mut self, html: &str) -> Self {
        self.body.push_str(html);
        self
    }

    /// An error above the text, announced to screen readers and styled as an error.
    pub(crate) fn alert(mut self, text: &str) -> Self {
        self.alert = Some(text.to_owned());
        self
    }

    /// A neutral notice above the text, announced politely.
    pub(crate) fn notice(mut self, text: &str) -> Self {
        self.notice = Some(text.to_owned());
        self
    }

    /// "If you need help, contact …" with the configured contact; nothing when none is set.
    pub(crate) fn support(mut self, shell: &Shell, lead: &str) -> Self {
        if let Some(link) = shell.support_link("") {
            self.body.push_str(&format!(
                "<p>{}</p>",
                words::lead_contact(&escape_html(lead), &link)
            ));
        }
        self
    }

    /// The primary action: a button-styled link.
    pub(crate) fn primary(mut self, id: &str, href: &str, label: &str) -> Self {
        self.primary = Some(format!(
            "<a class=\"button\" id=\"{}\" href=\"{}\">{}</a>",
            escape_html(id),
            escape_html(href),
            escape_html(label)
        ));
        self
    }

    /// The primary action as a button in a form posting `fields` back to `action` (this
    /// origin).
    pub(crate) fn primary_post(
        mut self,
        id: &str,
        action: &str,
        fields: &[(&str, &str)],
        label: &str,
    ) -> Self {
        let hidden: String = fields
            .iter()
            .map(|(name, value)| {
                format!(
                    "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                    escape_html(name),
                    escape_html(value)
                )
            })
            .collect();
        self.primary = Some(format!(
            "<form method=\"post\" action=\"{}\">{hidden}<button type=\"submit\" id=\"{}\">{}</button></form>",
            escape_html(action),
            escape_html(id),
            escape_html(label)
        ));
        self.forms = true;
        self
    }

    /// A secondary link.
    pub(crate) fn link(mut self, id: &str, href: &str, label: &str) -> Self {
        self.links.push(format!(
            "<a id=\"{}\" href=\"{}\">{}</a>",
            escape_html(id),
            escape_html(href),
            escape_html(label)
        ));
        self
    }

    /// The page has a form of its own (in [`Page::html`]) posting back to this origin.
    pub(crate) fn with_forms(mut self) -> Self {
        self.forms = true;
        self
    }

    /// Follows the primary link (id `next`) by itself after `seconds`: the pending page.
    pub(crate) fn retry_after(mut self, next: &str, seconds: u32, label: &str) -> Self {
        self.primary = Some(format!(
            "<a class=\"button\" id=\"next\" data-after=\"{seconds}\" href=\"{}\">{}</a>",
            escape_html(next),
            escape_html(label)
        ));
        self.retry = true;
        self
    }

    /// The complete HTML of this page in the shell.
    pub(crate) fn render(&self, shell: &Shell) -> String {
        let mut main = format!("<h1>{}</h1>", escape_html(&self.title));
        if let Some(alert) = &self.alert {
            main.push_str(&format!(
                "<p class=\"alert\" role=\"alert\" id=\"alert\">{}</p>",
                escape_html(alert)
            ));
        }
        if let Some(notice) = &self.notice {
            main.push_str(&format!(
                "<p class=\"notice\" role=\"status\" id=\"notice\">{}</p>",
                escape_html(notice)
            ));
        }
        main.push_str(&self.body);
        if self.primary.is_some() || !self.links.is_empty() {
            main.push_str("<div class=\"actions\">");
            main.push_str(self.primary.as_deref().unwrap_or_default());
            for link in &self.links {
                main.push_str(link);
            }
            main.push_str("</div>");
        }
        shell.render(&self.title, &main, self.retry)
    }

    /// The page as a response with `status`, never cached, with its Content-Security-Policy.
    pub(crate) fn respond(self, deps: &SuccessDeps, status: StatusCode) -> Response<Body> {
        let shell = &deps.shell;
        let mut response = html_response(status, self.render(shell));
        if let Ok(policy) =
            HeaderValue::from_str(&shell.content_security_policy(self.forms, self.retry))
        {
            response
                .headers_mut()
                .insert("content-security-policy", policy);
        }
        response
    }
}

/// A page that explains `text` (plain text) and links back to the site (and to checkout when
/// configured).
pub(crate) fn message_page(
    deps: &SuccessDeps,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response<Body> {
    let mut page = Page::new(title).text(text);
    if let Some(url) = &deps.config.checkout_url {
        page = page.link("checkout", url, words::GO_TO_CHECKOUT);
    }
    page.respond(deps, status)
}

/// Like [`message_page`], with the email sign-in link as the primary action: the way back for
/// a buyer whose claim was spent, expired or never came.
pub(crate) fn message_with_sign_in(
    deps: &SuccessDeps,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Response<Body> {
    sign_in_page(deps, title, text).respond(deps, status)
}

/// The [`message_with_sign_in`] page, to add to.
pub(crate) fn sign_in_page(deps: &SuccessDeps, title: &str, text: &str) -> Page {
    Page::new(title)
        .text(text)
        .primary("sign-in", &restore_url(deps), words::GET_SIGN_IN_LINK)
}

/// Cookies of several emails came with the request (one may have been planted by a sibling
/// subdomain or a plain-http page): billing, plan changes and checkout do not guess whose
/// they are, and ask the buyer to sign in, which replaces them with one account cookie.
pub(crate) fn several_accounts(deps: &SuccessDeps, route: &'static str) -> Response<Body> {
    tracing::warn!(
        route,
        outcome = "several_emails",
        "cookies of several emails presented"
    );
    message_with_sign_in(
        deps,
        StatusCode::CONFLICT,
        words::SEVERAL_ACCOUNTS_TITLE,
        words::SEVERAL_ACCOUNTS_TEXT,
    )
}

/// `429` with a `Retry-After` of `retry_seconds`, whose page states the same wait.
pub(crate) fn too_many(deps: &SuccessDeps, page: Page, retry_seconds: i64) -> Response<Body> {
    let mut response = page.respond(deps, StatusCode::TOO_MANY_REQUESTS);
    if let Ok(value) = HeaderValue::from_str(&retry_seconds.max(1).to_string()) {
        response
            .headers_mut()
            .insert(lambda_http::http::header::RETRY_AFTER, value);
    }
    response
}

/// Seconds from `now` to the end of its window of `window_seconds` (a minute, an hour).
pub(crate) fn until_window_end(now: i64, window_seconds: i64) -> i64 {
    (now / window_seconds + 1) * window_seconds - now
}

/// What the restore form shows above it.
#[derive(Debug, Clone, Copy)]
pub enum FormMessage<'a> {
    /// Neutral (`role="status"`), e.g. "if a purchase exists, we have sent a link".
    Notice(&'a str),
    /// An error (`role="alert"`), e.g. an expired link or too many requests.
    Error(&'a str),
}

/// The restore form (one labelled email field), with an optional message above it; without a
/// sender, the page saying sign-in links are not enabled.
pub(crate) fn restore_form(
    deps: &SuccessDeps,
    status: StatusCode,
    message: Option<FormMessage<'_>>,
) -> Response<Body> {
    let title = words::RESTORE_TITLE;
    if deps.mailer.is_none() {
        return Page::new(title)
            .text(words::RESTORE_DISABLED_TEXT)
            .support(&deps.shell, words::RESTORE_DISABLED_SUPPORT)
            .respond(deps, status);
    }
    let mut page = Page::new(title);
    page = match message {
        Some(FormMessage::Notice(text)) => page.notice(text),
        Some(FormMessage::Error(text)) => page.alert(text),
        None => page,
    };
    page.text(words::RESTORE_FORM_TEXT)
        .html(&format!(
            "<form method=\"post\" action=\"/upgrade/restore\">\
             <label for=\"email\">{}</label>\
             <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" required>\
             <button type=\"submit\" id=\"send\">{}</button></form>",
            words::EMAIL_LABEL,
            words::SEND_SIGN_IN_LINK,
        ))
        .with_forms()
        .respond(deps, status)
}

/// The HTML answer for an unknown `/upgrade/*` path.
pub(crate) fn not_found(deps: &SuccessDeps) -> Response<Body> {
    Page::new(words::NOT_FOUND_TITLE)
        .text(words::NOT_FOUND_TEXT)
        .primary("home", deps.config.site_url.as_str(), words::GO_TO_SITE)
        .link("restore", &restore_url(deps), words::RESTORE_TITLE)
        .respond(deps, StatusCode::NOT_FOUND)
}

/// `/upgrade/restore` on the site's own origin (never from request headers).
pub(crate) fn restore_url(deps: &SuccessDeps) -> String {
    format!("{}/upgrade/restore", deps.config.site_url.origin())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use llmxt_domain::config::Env;

    fn shell(pairs: &[(&str, &str)]) -> Shell {
        let mut all = vec![
            (
                "ENTITLEMENT_SECRET",
                "pages-test-secret-0123456789abcdef0123",
            ),
            ("NEXT_PUBLIC_SITE_URL", "https://shop.example.com"),
        ];
        all.extend_from_slice(pairs);
        Shell::new(&SuccessConfig::from_env(&Env::from_pairs(all.iter().copied())).unwrap())
    }

    #[test]
    fn palettes_reach_aa_for_every_text_colour_and_any_brand_colour() {
        for hex in [
            "#334155", "#ffdd00", "#ffffff", "#000000", "#0b5fff", "#00ff7f", "#7f7f7f",
        ] {
            let brand = Rgb::parse(hex).unwrap();
            for palette in [LIGHT, DARK] {
                for background in [palette.page, palette.card] {
                    for (what, text) in [
                        ("text", palette.text),
                        ("muted", palette.muted),
                        ("link", palette.link(brand)),
                    ] {
                        let ratio = text.contrast(background);
                        assert!(
                            ratio >= AA_TEXT_CONTRAST,
                            "{hex}: {what} {text} on {background}: {ratio:.2}"
                        );
                    }
                }
                assert!(palette.error.contrast(palette.error_bg) >= AA_TEXT_CONTRAST);
                // Input borders and focus rings: 3:1 against the card.
                assert!(palette.muted.contrast(palette.card) >= 3.0);
            }
            assert!(brand.readable_text().contrast(brand) >= AA_TEXT_CONTRAST);
        }
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_stylesheet_and_script_by_hash() {
        let shell = shell(&[("BRAND_COLOR", "#ffdd00")]);
        let policy = shell.content_security_policy(false, false);
        let expected = STANDARD.encode(Sha256::digest(shell.css().as_bytes()));
        assert!(
            policy.contains(&format!("style-src 'sha256-{expected}'")),
            "{policy}"
        );
        assert!(
            !policy.contains("unsafe-inline") && !policy.contains("script-src"),
            "{policy}"
        );
        assert!(!policy.contains("img-src"), "no logo, no images: {policy}");
        assert!(policy.contains("form-action 'none'") && policy.contains("frame-ancestors 'none'"));
        let html = Page::new("T").render(&shell);
        assert!(html.contains(&format!("<style>{}</style>", shell.css())));
        assert!(
            !html.contains("style=\""),
            "inline style attributes need 'unsafe-hashes'"
        );
        assert!(!html.contains("<script"), "{html}");

        let with_script = shell.content_security_policy(true, true);
        let script = STANDARD.encode(Sha256::digest(RETRY_SCRIPT.as_bytes()));
        assert!(with_script.contains(&format!("script-src 'sha256-{script}'")));
        assert!(with_script.contains("form-action 'self'"));
        let html = Page::new("T")
            .retry_after("?a=1", 2, "Check again")
            .render(&shell);
        assert!(html.contains(&format!("<script>{RETRY_SCRIPT}</script>")));
        // Another colour, another stylesheet, another hash.
        assert_ne!(shell.css(), self::shell(&[]).css());
    }

    #[test]
    fn the_logo_origin_alone_is_allowed_for_images() {
        let shell = shell(&[(
            "BRAND_LOGO_URL",
            "https://cdn.acme.example/img/logo.svg?v=2",
        )]);
        let policy = shell.content_security_policy(false, false);
        assert!(
            policy.contains("; img-src https://cdn.acme.example;"),
            "{policy}"
        );
        let html = Page::new("T").render(&shell);
        assert!(
            html.contains("<img id=\"logo\" src=\"https://cdn.acme.example/img/logo.svg?v=2\"")
        );
    }

    #[test]
    fn the_shell_names_the_brand_and_support_only_when_configured() {
        let plain = shell(&[]);
        let html = Page::new("Hello <you>")
            .support(&plain, "If this persists,")
            .render(&plain);
        assert!(html.contains("<h1>Hello &lt;you&gt;</h1>"));
        assert!(html.contains("<main>") && html.matches("<h1").count() == 1);
        assert!(html.contains("Back to shop.example.com"), "{html}");
        assert!(!html.contains("ontact"), "no contact, no sentence: {html}");

        let branded = shell(&[
            ("BRAND_NAME", "Acme & Co"),
            ("SUPPORT_EMAIL", "help@acme.example"),
        ]);
        let html = Page::new("Hello")
            .support(&branded, "If this persists,")
            .render(&branded);
        assert!(html.contains("<span>Acme &amp; Co</span>"));
        assert!(html.contains("Back to Acme &amp; Co"));
        assert!(html.contains(
            "<p>If this persists, contact <a href=\"mailto:help@acme.example\">help@acme.example</a>.</p>"
        ), "{html}");
        assert!(html.contains("Questions? Contact"));
    }
}
