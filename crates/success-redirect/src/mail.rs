//! Sign-in emails through SES v2 (`aws-sdk-sesv2`, lean features like the DynamoDB client).
//! The client is built on the first email, not at cold start: most invocations never send
//! one.

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use llmxt_core::config::RestoreConfig;
use llmxt_core::email::Email;
use tokio::sync::OnceCell;

/// Sends sign-in links from `RESTORE_EMAIL_FROM`.
#[derive(Debug)]
pub struct Mailer {
    config: RestoreConfig,
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
    pub fn new(config: RestoreConfig) -> Self {
        Self {
            config,
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> &aws_sdk_sesv2::Client {
        self.client
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .http_client(llmxt_core::store::https_client());
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

    /// Sends the sign-in email: plain text and simple HTML, naming the site and saying to
    /// ignore it if unrequested. The error is SES's, for the log only.
    pub async fn send(&self, email: SignInEmail<'_>) -> Result<(), String> {
        let subject = format!("Your sign-in link for {}", email.site);
        let text = format!(
            "Someone, hopefully you, asked to restore Pro access on {site}.\n\n\
             Open this link within {minutes} minutes and press the button to sign in on that device:\n\n\
             {link}\n\n\
             If you did not ask for this, ignore this email: nothing changes without the link.\n",
            site = email.site,
            minutes = email.valid_minutes,
            link = email.link,
        );
        let html = format!(
            "<p>Someone, hopefully you, asked to restore Pro access on <strong>{site}</strong>.</p>\
             <p><a href=\"{link}\">Sign in on that device</a> (valid for {minutes} minutes), then press the button.</p>\
             <p>If you did not ask for this, ignore this email: nothing changes without the link.</p>",
            site = escape(email.site),
            link = escape(email.link),
            minutes = email.valid_minutes,
        );
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
    crate::pages::escape_html(text)
}
