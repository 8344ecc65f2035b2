//! Buyer email addresses: stored trimmed and ASCII-lower-cased, masked in logs.
//!
//! Only ASCII letters are folded: Unicode case folding would map look-alikes such as the
//! Kelvin sign (`\u{212A}`) onto `k`, so a payment made with a look-alike address could
//! grant another address Pro. Addresses with control, zero-width or bidi-control characters
//! are refused outright.

use std::fmt;

/// Longest address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_LENGTH: usize = 254;

/// A normalised email address. `Debug` and `Display` show it masked; use
/// [`Email::as_str`] where the full address is really needed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Why a value is not an email address we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid email address")]
pub struct InvalidEmail;

impl Email {
    /// Trims, lower-cases ASCII letters only and checks the shape `local@domain`.
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let normalised = raw.trim().to_ascii_lowercase();
        let valid_chars = normalised
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !is_invisible(c));
        let well_formed = match normalised.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty() && !domain.is_empty() && !domain.contains('@')
            }
            None => false,
        };
        if normalised.len() > MAX_EMAIL_LENGTH || !valid_chars || !well_formed {
            return Err(InvalidEmail);
        }
        Ok(Self(normalised))
    }

    /// The full normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `j***@example.com`: enough to correlate logs, not enough to identify.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

/// Zero-width, bidi-control and other invisible format characters: they make two addresses
/// look alike.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_whitespace() {
        let email = Email::parse("  John.Doe@Example.COM \n").expect("valid");
        assert_eq!(email.as_str(), "john.doe@example.com");
    }

    #[test]
    fn rejects_malformed_addresses() {
        let too_long = format!("{}@example.com", "a".repeat(250));
        for raw in [
            "",
            "   ",
            "no-at-sign",
            "@example.com",
            "a@",
            "a@b@c",
            "a b@c.d",
            "a\u{0}@b.c",
            too_long.as_str(),
        ] {
            assert_eq!(Email::parse(raw), Err(InvalidEmail), "{raw:?}");
        }
    }

    #[test]
    fn folds_ascii_case_only() {
        let kelvin = Email::parse("\u{212A}im@example.com").expect("valid, but distinct");
        assert_ne!(kelvin, Email::parse("kim@example.com").expect("valid"));
        assert_eq!(kelvin.as_str(), "\u{212A}im@example.com");
        assert_eq!(
            Email::parse("ÉLODIE@Example.com").expect("valid").as_str(),
            "Élodie@example.com"
        );
    }

    #[test]
    fn rejects_invisible_and_bidi_characters() {
        for raw in [
            "ki\u{200B}m@example.com",
            "kim\u{200D}@example.com",
            "\u{FEFF}kim@example.com",
            "kim@exa\u{202E}mple.com",
            "kim@example.com\u{2066}",
            "k\u{2060}im@example.com",
            "kim\u{7F}@example.com",
            "kim@example.com\u{E0041}",
        ] {
            assert_eq!(Email::parse(raw), Err(InvalidEmail), "{raw:?}");
        }
    }

    #[test]
    fn debug_and_display_are_masked() {
        let email = Email::parse("john.doe@example.com").expect("valid");
        assert_eq!(email.masked(), "j***@example.com");
        assert_eq!(format!("{email}"), "j***@example.com");
        assert!(!format!("{email:?}").contains("john.doe"));
    }
}
