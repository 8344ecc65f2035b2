//! jsonwebtoken's crypto provider for this project, shared by the cookie token and the edge
//! pass: HS256 with the `hmac`/`sha2` crates the binaries already link, EdDSA (Ed25519) with
//! `ed25519-dalek`, every other algorithm refused (docs/benchmark-choices.md: a full provider
//! costs hundreds of kilobytes per function).

use jsonwebtoken::crypto::{CryptoProvider, JwkUtils, JwtSigner, JwtVerifier};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};

use crate::crypto::HmacSha256;

/// jsonwebtoken's crypto provider for this project: HS256 through `hmac`/`sha2`, EdDSA
/// (Ed25519) through `ed25519-dalek`, every other algorithm refused.
pub static JWT_CRYPTO: CryptoProvider = CryptoProvider {
    signer_factory: signer_for,
    verifier_factory: verifier_for,
    jwk_utils: JwkUtils::new_unimplemented(),
};

/// Installs [`JWT_CRYPTO`] as the process's provider (a second call is refused by
/// jsonwebtoken and harmless: ours is the only provider).
pub fn install_jwt_crypto() {
    let _ = JWT_CRYPTO.install_default();
}

struct Hs256(HmacSha256);

impl Hs256 {
    fn new(secret: &[u8]) -> jsonwebtoken::errors::Result<Self> {
        use hmac::Mac;
        HmacSha256::new_from_slice(secret)
            .map(Self)
            .map_err(|_| ErrorKind::InvalidKeyFormat.into())
    }
}

impl signature::Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        use hmac::Mac;
        let mut mac = self.0.clone();
        mac.update(message);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl signature::Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        use hmac::Mac;
        let mut mac = self.0.clone();
        mac.update(message);
        // Constant-time comparison inside `hmac`.
        mac.verify_slice(signature)
            .map_err(signature::Error::from_source)
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

/// Signs with an Ed25519 key given as PKCS#8 DER (`EncodingKey::from_ed_der`).
struct Ed25519Signer(ed25519_dalek::SigningKey);

impl signature::Signer<Vec<u8>> for Ed25519Signer {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(ed25519_dalek::Signer::sign(&self.0, message)
            .to_bytes()
            .to_vec())
    }
}

impl JwtSigner for Ed25519Signer {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

/// Verifies with an Ed25519 public key given as its 32 raw bytes
/// (`DecodingKey::from_ed_components`).
struct Ed25519Verifier(ed25519_dalek::VerifyingKey);

impl signature::Verifier<Vec<u8>> for Ed25519Verifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> Result<(), signature::Error> {
        let signature = ed25519_dalek::Signature::from_slice(signature)?;
        // Strict: refuses the malleable and small-order edge cases plain `verify` lets through.
        self.0.verify_strict(message, &signature)
    }
}

impl JwtVerifier for Ed25519Verifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

fn signer_for(
    algorithm: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    match algorithm {
        Algorithm::HS256 => Ok(Box::new(Hs256::new(key.try_get_hmac_secret()?)?)),
        Algorithm::EdDSA if key.family() == AlgorithmFamily::Ed => {
            use ed25519_dalek::pkcs8::DecodePrivateKey;
            let signing = ed25519_dalek::SigningKey::from_pkcs8_der(key.inner())
                .map_err(|_| ErrorKind::InvalidEddsaKey)?;
            Ok(Box::new(Ed25519Signer(signing)))
        }
        Algorithm::EdDSA => Err(ErrorKind::InvalidKeyFormat.into()),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn verifier_for(
    algorithm: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    match algorithm {
        Algorithm::HS256 => Ok(Box::new(Hs256::new(key.try_get_hmac_secret()?)?)),
        Algorithm::EdDSA if key.family() == AlgorithmFamily::Ed => {
            let bytes =
                <[u8; 32]>::try_from(key.as_bytes()).map_err(|_| ErrorKind::InvalidEddsaKey)?;
            let verifying = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| ErrorKind::InvalidEddsaKey)?;
            Ok(Box::new(Ed25519Verifier(verifying)))
        }
        Algorithm::EdDSA => Err(ErrorKind::InvalidKeyFormat.into()),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}
