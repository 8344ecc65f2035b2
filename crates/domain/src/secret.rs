//! Secret values that never show up in `Debug` output or logs.

use std::fmt;

/// Bytes of a secret key. `Debug` prints `Secret(<redacted>)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps raw key bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The raw key bytes, for signing only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length of the key in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_key() {
        let secret = Secret::new(b"super-secret-key".to_vec());
        let printed = format!("{secret:?}");
        assert!(!printed.contains("super"), "{printed}");
        assert_eq!(printed, "Secret(<redacted>)");
    }
}
