//! Sign-in emails through SES v2 (`aws-sdk-sesv2`, lean features like the DynamoDB client).
//! The client is built on the first email, not at cold start: most invocations never send
//! one.

use crate::brand::{BrandConfig, Support};
use crate::config::RestoreConfig;
use crate::words;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use llmxt_domain::email::Email;
use tokio::sync::OnceCell;

/// Sends sign-in links from `RESTORE_EMAIL_FROM`, in the site's brand.
#[derive(Debug)]
pub struct Mailer {
    config: RestoreConfig,
    brand: BrandConfig,
    client: OnceCell<aws_sdk_sesv2::Client>,
}

/// One email to send.
#[derive(Debug, Clone)]
pub struct SignInEmail<'a> {
    /// The recipient.
    pub to: &'a Email,
    /// The site's host, named in the email.
    pub site: &'a str,
    /// The sign-in link.
    pub link: &'a str,
    /// Minutes the link stays valid.
    pub valid_minutes: i64,
}

impl Mailer {
    /// A mailer for this configuration.
    pub fn new(config: RestoreConfig, brand: BrandConfig) -> Self {
        Self {
            config,
            brand,
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> &aws_sdk_sesv2::Client {
        self.client
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .http_client(llmxt_store::store::https_client());
                if let Some(endpoint) = &self.config.ses_endpoint {
                    let region =
                        std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
                    loader = loader
                        .endpoint_url(endpoint)
                        .region(aws_config::Region::new(region))
                        .credentials_provider(aws_sdk_sesv2::config::Credentials::new(
                            "local",
                            "local",
                            None,
                            None,
                            "ses-local",
                        ));
                }
                aws_sdk_sesv2::Client::new(&loader.load().await)
            })
            .await
    }

    /// Sends the sign-in email: a text and an HTML part in the site's brand, naming the site,
    /// saying to ignore it if unrequested, and the support contact when one is configured.
    /// The error is SES's, for the log only.
    pub async fn send(&self, email: SignInEmail<'_>) -> Result<(), String> {
        let (subject, text, html) = compose(&self.brand, &email);
        let content = |text: String| {
            Content::builder()
                .data(text)
                .charset("UTF-8")
                .build()
                .map_err(|e| e.to_string())
        };
        let message = Message::builder()
            .subject(content(subject)?)
            .body(
                Body::builder()
                    .text(content(text)?)
                    .html(content(html)?)
                    .build(),
            )
            .build();
        self.client()
            .await
            .send_email()
            .from_email_address(&self.config.from)
            .destination(
                Destination::builder()
                    .to_addresses(email.to.as_str())
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| aws_sdk_sesv2::error::DisplayErrorContext(e).to_string())
    }
}

fn escape(text: &str) -> String {
    crate::html::escape_html(text)
}

/// The subject, text part and HTML part of a sign-in email.
///
/// The HTML link opens in a new tab (`target="_blank"`): mail viewers, the SES emulator's
/// mailbox among them, show a message in a frame, and our pages refuse to be framed.
pub fn compose(brand: &BrandConfig, email: &SignInEmail<'_>) -> (String, String, String) {
    let subject = words::sign_in_subject(&brand.name);
    let support_text = brand
        .support
        .as_ref()
        .map(|support| format!("{}\n", words::questions_contact(&support_label(support))))
        .unwrap_or_default();
    let text = format!(
        "{name}\n\n{asked}\n\n{open}\n\n{link}\n\n{ignore}\n{support_text}",
        name = brand.name,
        asked = words::asked_to_restore(email.site),
        open = words::open_within(email.valid_minutes),
        link = email.link,
        ignore = words::IGNORE_IF_UNASKED,
    );
    let name = escape(&brand.name);
    let logo = brand
        .logo_url
        .as_deref()
        .map(|url| {
            format!(
                "<img src=\"{}\" alt=\"\" height=\"32\" style=\"vertical-align:middle;margin-right:8px\">",
                escape(url)
            )
        })
        .unwrap_or_default();
    let support_html = brand
        .support
        .as_ref()
        .map(|support| {
            format!(
                "<p style=\"margin:16px 0 0;color:#4b525c;font-size:14px\">{}</p>",
                words::questions_contact(&format!(
                    "<a href=\"{}\" target=\"_blank\" rel=\"noopener\" style=\"color:#1d4ed8\">{}</a>",
                    escape(&support.href()),
                    escape(support.label())
                ))
            )
        })
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\"><title>{subject}</title></head>\
         <body style=\"margin:0;padding:24px 12px;background:#f3f4f6;color:#1b1f24;\
         font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif\">\
         <div style=\"max-width:32rem;margin:0 auto;background:#ffffff;border-top:4px solid {brand_color};\
         border-radius:8px;padding:24px\">\
         <p style=\"margin:0 0 16px;font-weight:600;font-size:18px\">{logo}{name}</p>\
         <h1 style=\"margin:0 0 12px;font-size:20px\">{heading}</h1>\
         <p style=\"margin:0 0 16px\">{asked}</p>\
         <p style=\"margin:0 0 16px\"><a id=\"sign-in-link\" href=\"{link}\" target=\"_blank\" rel=\"noopener\" \
         style=\"display:inline-block;padding:12px 20px;border-radius:8px;background:{brand_color};\
         color:{on_brand};font-weight:600;text-decoration:none\">{button}</a></p>\
         <p style=\"margin:0 0 16px\">{works_once}</p>\
         <p style=\"margin:0;color:#4b525c;font-size:14px\">{ignore}</p>\
         {support_html}</div></body></html>",
        lang = words::LANG,
        subject = escape(&subject),
        brand_color = brand.color,
        on_brand = brand.color.readable_text(),
        heading = words::SIGN_IN_HERE_TITLE,
        asked = words::asked_to_restore(&format!("<strong>{}</strong>", escape(email.site))),
        button = words::sign_in_to(&name),
        link = escape(email.link),
        works_once = words::link_works_once(email.valid_minutes),
        ignore = words::IGNORE_IF_UNASKED,
    );
    (subject, text, html)
}

fn support_label(support: &Support) -> String {
    match support {
        Support::Email(email) => email.as_str().to_owned(),
        Support::Url(url) => url.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::brand::Rgb;

    #[test]
    fn both_parts_carry_the_brand_and_the_html_link_opens_outside_any_frame() {
        let brand = BrandConfig {
            name: "Acme <Notes>".to_owned(),
            color: Rgb::parse("#ffdd00").unwrap(),
            logo_url: Some("https://cdn.acme.example/logo.png".to_owned()),
            support: Some(Support::Email(Email::parse("help@acme.example").unwrap())),
        };
        let to = Email::parse("buyer@example.com").unwrap();
        let link = "https://acme.example/upgrade/restore?token=abc&x=1";
        let (subject, text, html) = compose(
            &brand,
            &SignInEmail {
                to: &to,
                site: "acme.example",
                link,
                valid_minutes: 15,
            },
        );
        assert_eq!(subject, "Your sign-in link for Acme <Notes>");
        assert!(text.starts_with("Acme <Notes>\n"));
        assert!(
            text.contains(link) && text.contains("help@acme.example"),
            "{text}"
        );
        assert!(html.contains(
            "href=\"https://acme.example/upgrade/restore?token=abc&amp;x=1\" target=\"_blank\" rel=\"noopener\""
        ), "{html}");
        assert!(html.contains("Acme &lt;Notes&gt;") && !html.contains("<Notes>"));
        assert!(html.contains("src=\"https://cdn.acme.example/logo.png\""));
        assert!(
            html.contains("background:#ffdd00;color:#111111"),
            "derived text colour: {html}"
        );
        assert!(html.contains("mailto:help@acme.example"));

        let plain = BrandConfig {
            support: None,
            logo_url: None,
            ..brand
        };
        let (_, text, html) = compose(
            &plain,
            &SignInEmail {
                to: &to,
                site: "acme.example",
                link,
                valid_minutes: 15,
            },
        );
        assert!(!text.contains("Contact") && !html.contains("Contact") && !html.contains("<img"));
    }
}
