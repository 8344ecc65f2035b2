//! The merchant's branding on buyer pages and sign-in emails (`BRAND_*`, `SUPPORT_*`), and
//! the colour maths that keeps the configured colour readable (WCAG 2 contrast).

use std::fmt;

use llmxt_domain::config::{ConfigError, Env, SiteUrl};
use llmxt_domain::email::Email;

/// `BRAND_COLOR` when unset: a slate that carries white text at AA contrast.
pub const DEFAULT_BRAND_COLOR: Rgb = Rgb(0x33, 0x41, 0x55);
/// Longest accepted `BRAND_NAME`, in characters.
pub const MAX_BRAND_NAME_CHARS: usize = 60;
/// WCAG 2 AA contrast for normal text.
pub const AA_TEXT_CONTRAST: f64 = 4.5;

/// How buyers see the site on our pages and emails.
#[derive(Debug, Clone, PartialEq)]
pub struct BrandConfig {
    /// `BRAND_NAME`, else the site's host.
    pub name: String,
    /// `BRAND_COLOR`, else [`DEFAULT_BRAND_COLOR`].
    pub color: Rgb,
    /// `BRAND_LOGO_URL`: an `https://` image, the only other origin a page loads from.
    pub logo_url: Option<String>,
    /// `SUPPORT_EMAIL` or `SUPPORT_URL`: named wherever a page says to contact support.
    pub support: Option<Support>,
}

/// Where buyers get help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    /// `SUPPORT_EMAIL`.
    Email(Email),
    /// `SUPPORT_URL` (`https://`).
    Url(String),
}

impl Support {
    /// The link target: `mailto:` for an address.
    pub fn href(&self) -> String {
        match self {
            Self::Email(email) => format!("mailto:{}", email.as_str()),
            Self::Url(url) => url.clone(),
        }
    }

    /// What the link says: the address, or the URL without its scheme.
    pub fn label(&self) -> &str {
        match self {
            Self::Email(email) => email.as_str(),
            Self::Url(url) => url.trim_start_matches("https://").trim_end_matches('/'),
        }
    }
}

impl BrandConfig {
    /// Reads `BRAND_NAME`, `BRAND_COLOR`, `BRAND_LOGO_URL`, `SUPPORT_EMAIL` and `SUPPORT_URL`.
    pub fn from_env(env: &Env, site_url: &SiteUrl) -> Result<Self, ConfigError> {
        let name = match env.optional("BRAND_NAME") {
            Some(name) => {
                if name.chars().count() > MAX_BRAND_NAME_CHARS || name.chars().any(char::is_control)
                {
                    return Err(ConfigError::new(
                        "BRAND_NAME",
                        format!("must be one line of at most {MAX_BRAND_NAME_CHARS} characters"),
                    ));
                }
                name
            }
            None => site_host(site_url).to_owned(),
        };
        let color = match env.optional("BRAND_COLOR") {
            Some(text) => Rgb::parse(&text).ok_or_else(|| {
                ConfigError::new("BRAND_COLOR", "must be a colour as #rrggbb, e.g. #0b5fff")
            })?,
            None => DEFAULT_BRAND_COLOR,
        };
        let logo_url = env
            .optional("BRAND_LOGO_URL")
            .map(|url| {
                if https_url(&url).is_some() {
                    Ok(url)
                } else {
                    Err(ConfigError::new(
                        "BRAND_LOGO_URL",
                        "must be an https:// URL of an image, with no quotes or spaces",
                    ))
                }
            })
            .transpose()?;
        let email = env.optional("SUPPORT_EMAIL");
        let url = env.optional("SUPPORT_URL");
        let support = match (email, url) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "SUPPORT_URL",
                    "is set together with SUPPORT_EMAIL: set only one of them",
                ));
            }
            (Some(email), None) => Some(Support::Email(Email::parse(&email).map_err(|_| {
                ConfigError::new(
                    "SUPPORT_EMAIL",
                    "must be an email address, e.g. help@example.com",
                )
            })?)),
            (None, Some(url)) if https_url(&url).is_some() => Some(Support::Url(url)),
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "SUPPORT_URL",
                    "must be an https:// URL, e.g. https://example.com/help",
                ));
            }
            (None, None) => None,
        };
        Ok(Self {
            name,
            color,
            logo_url,
            support,
        })
    }

    /// The logo's origin (`https://host[:port]`), the one extra source pages allow images from.
    pub fn logo_origin(&self) -> Option<&str> {
        self.logo_url.as_deref().and_then(https_url)
    }
}

/// The host of the site URL, without scheme or port.
fn site_host(site_url: &SiteUrl) -> &str {
    let authority = site_url
        .origin()
        .split_once("://")
        .map_or(site_url.origin(), |(_, rest)| rest);
    authority.split(':').next().unwrap_or(authority)
}

/// The origin of a plain `https://` URL (host, no credentials, no characters that could break
/// out of an HTML attribute or a header), or `None`.
fn https_url(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let bad = |c: char| c.is_whitespace() || c.is_control() || "\"'<>\\`;,".contains(c);
    if authority.is_empty() || authority.contains('@') || url.chars().any(bad) {
        return None;
    }
    Some(&url[..("https://".len() + authority.len())])
}

/// An sRGB colour.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// Pure white.
pub const WHITE: Rgb = Rgb(0xff, 0xff, 0xff);
/// Pure black.
pub const BLACK: Rgb = Rgb(0, 0, 0);

impl Rgb {
    /// Parses `#rrggbb` (either case).
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix('#')?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        Some(Self(channel(0)?, channel(2)?, channel(4)?))
    }

    /// WCAG 2 relative luminance, 0 (black) to 1 (white).
    pub fn luminance(self) -> f64 {
        let linear = |channel: u8| {
            let c = f64::from(channel) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * linear(self.0) + 0.7152 * linear(self.1) + 0.0722 * linear(self.2)
    }

    /// WCAG 2 contrast ratio with `other`, 1 to 21.
    pub fn contrast(self, other: Rgb) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    /// This colour moved `share` (0 to 1) of the way towards `target`.
    pub fn mix(self, target: Rgb, share: f64) -> Rgb {
        let channel = |from: u8, to: u8| {
            let value = f64::from(from) + (f64::from(to) - f64::from(from)) * share.clamp(0.0, 1.0);
            value.round().clamp(0.0, 255.0) as u8
        };
        Rgb(
            channel(self.0, target.0),
            channel(self.1, target.1),
            channel(self.2, target.2),
        )
    }

    /// Text colour for this background: white when it reaches AA, else near-black, else black
    /// (one of white and black always reaches 4.58:1).
    pub fn readable_text(self) -> Rgb {
        [WHITE, Rgb(0x11, 0x11, 0x11), BLACK]
            .into_iter()
            .find(|text| text.contrast(self) >= AA_TEXT_CONTRAST)
            .unwrap_or(BLACK)
    }

    /// This colour, darkened or lightened just enough to reach `min` contrast on
    /// `background` (towards black on a light background, towards white on a dark one).
    pub fn readable_on(self, background: Rgb, min: f64) -> Rgb {
        let target = if background.luminance() > 0.18 {
            BLACK
        } else {
            WHITE
        };
        (0..=20)
            .map(|step| self.mix(target, f64::from(step) / 20.0))
            .find(|candidate| candidate.contrast(background) >= min)
            .unwrap_or(target)
    }
}

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

impl fmt::Debug for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 0.01
    }

    #[test]
    fn contrast_matches_the_wcag_reference_values() {
        assert!(close(WHITE.contrast(BLACK), 21.0));
        assert!(close(BLACK.contrast(WHITE), 21.0));
        assert!(close(WHITE.contrast(WHITE), 1.0));
        // Known pairs (WebAIM's checker): #767676 on white is the lightest AA grey.
        assert!(close(Rgb::parse("#767676").unwrap().contrast(WHITE), 4.54));
        assert!(close(Rgb::parse("#777777").unwrap().contrast(WHITE), 4.48));
        assert!(close(Rgb::parse("#0000ff").unwrap().contrast(WHITE), 8.59));
        assert!(close(Rgb::parse("#ff0000").unwrap().luminance(), 0.2126));
    }

    #[test]
    fn every_brand_colour_gets_readable_text() {
        for hex in [
            "#ffffff", "#ffff00", "#00ff00", "#777777", "#767676", "#808080", "#0b5fff", "#ff6600",
            "#000000", "#334155", "#00ffff", "#ff00ff", "#959595",
        ] {
            let background = Rgb::parse(hex).unwrap();
            let text = background.readable_text();
            assert!(
                text.contrast(background) >= AA_TEXT_CONTRAST,
                "{hex} with {text}"
            );
        }
        assert_eq!(Rgb::parse("#0b5fff").unwrap().readable_text(), WHITE);
        assert_eq!(
            Rgb::parse("#ffff00").unwrap().readable_text(),
            Rgb(0x11, 0x11, 0x11)
        );
        // Every grey: the lightest AA choice never fails.
        for v in 0..=255u8 {
            let grey = Rgb(v, v, v);
            assert!(
                grey.readable_text().contrast(grey) >= AA_TEXT_CONTRAST,
                "{grey}"
            );
        }
    }

    #[test]
    fn a_too_light_colour_is_darkened_for_text_and_a_dark_one_lightened() {
        let yellow = Rgb::parse("#ffdd00").unwrap();
        let on_white = yellow.readable_on(WHITE, AA_TEXT_CONTRAST);
        assert!(on_white.contrast(WHITE) >= AA_TEXT_CONTRAST, "{on_white}");
        assert!(on_white.luminance() < yellow.luminance());
        let navy = Rgb::parse("#001a66").unwrap();
        let night = Rgb::parse("#111418").unwrap();
        let on_night = navy.readable_on(night, AA_TEXT_CONTRAST);
        assert!(on_night.contrast(night) >= AA_TEXT_CONTRAST, "{on_night}");
        assert!(on_night.luminance() > navy.luminance());
        // Already readable: unchanged.
        let blue = Rgb::parse("#0b5fff").unwrap();
        assert_eq!(blue.readable_on(WHITE, AA_TEXT_CONTRAST), blue);
    }

    #[test]
    fn colours_parse_only_as_rrggbb() {
        assert_eq!(Rgb::parse("#0B5fFf"), Some(Rgb(0x0b, 0x5f, 0xff)));
        assert_eq!(Rgb(0x0b, 0x5f, 0xff).to_string(), "#0b5fff");
        for bad in [
            "0b5fff", "#fff", "#0b5fffa", "#gggggg", "blue", "#0b5ff ", "",
        ] {
            assert_eq!(Rgb::parse(bad), None, "{bad}");
        }
    }

    fn brand(pairs: &[(&str, &str)]) -> Result<BrandConfig, ConfigError> {
        let site = SiteUrl::parse("https://shop.example.com:8443/app").unwrap();
        BrandConfig::from_env(&Env::from_pairs(pairs.iter().copied()), &site)
    }

    #[test]
    fn defaults_name_the_site_host_and_a_neutral_colour() {
        let config = brand(&[]).unwrap();
        assert_eq!(config.name, "shop.example.com");
        assert_eq!(config.color, DEFAULT_BRAND_COLOR);
        assert!(WHITE.contrast(DEFAULT_BRAND_COLOR) >= AA_TEXT_CONTRAST);
        assert_eq!((config.logo_url, config.support), (None, None));
    }

    #[test]
    fn settings_are_read_and_validated_with_one_line_errors() {
        let config = brand(&[
            ("BRAND_NAME", " Acme Notes "),
            ("BRAND_COLOR", "#FFDD00"),
            ("BRAND_LOGO_URL", "https://cdn.acme.example/logo.svg"),
            ("SUPPORT_EMAIL", "help@acme.example"),
        ])
        .unwrap();
        assert_eq!(config.name, "Acme Notes");
        assert_eq!(config.color, Rgb(0xff, 0xdd, 0x00));
        assert_eq!(config.logo_origin(), Some("https://cdn.acme.example"));
        assert_eq!(
            config.support.as_ref().map(Support::href).as_deref(),
            Some("mailto:help@acme.example")
        );
        let url = brand(&[("SUPPORT_URL", "https://acme.example/help/")]).unwrap();
        assert_eq!(
            url.support.as_ref().map(Support::label),
            Some("acme.example/help")
        );

        for (pairs, variable) in [
            (vec![("BRAND_COLOR", "red")], "BRAND_COLOR"),
            (vec![("BRAND_COLOR", "#fff")], "BRAND_COLOR"),
            (
                vec![("BRAND_LOGO_URL", "http://cdn.example/logo.png")],
                "BRAND_LOGO_URL",
            ),
            (
                vec![("BRAND_LOGO_URL", "https://cdn.example/a\".png")],
                "BRAND_LOGO_URL",
            ),
            (
                vec![("BRAND_LOGO_URL", "https://user@cdn.example/a.png")],
                "BRAND_LOGO_URL",
            ),
            (vec![("BRAND_NAME", &"x".repeat(61))], "BRAND_NAME"),
            (vec![("BRAND_NAME", "two\nlines")], "BRAND_NAME"),
            (vec![("SUPPORT_EMAIL", "not-an-address")], "SUPPORT_EMAIL"),
            (vec![("SUPPORT_URL", "javascript:alert(1)")], "SUPPORT_URL"),
            (
                vec![
                    ("SUPPORT_EMAIL", "a@b.example"),
                    ("SUPPORT_URL", "https://b.example"),
                ],
                "SUPPORT_URL",
            ),
        ] {
            let error = brand(&pairs).expect_err(variable);
            assert_eq!(error.variable, variable);
            assert!(!error.to_string().contains('\n'), "{error}");
        }
    }
}
