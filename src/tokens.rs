//! Bearer tokens: generation, hashing, and the lookup every request makes.
//!
//! A token is `faro_` followed by 32 random bytes in hex; only its SHA-256 is stored. Tokens
//! carry 256 bits of entropy, so a fast hash is the right tool (no password stretching needed).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use crate::domain::Principal;
use crate::storage::{Store, StoreError, TokenRecord};

const PREFIX: &str = "faro_";

/// A fresh token secret, shown once to its holder.
pub fn generate_secret() -> Result<String, getrandom::Error> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{PREFIX}{}", hex::encode(bytes)))
}

/// The stored form of a secret: lowercase hex SHA-256.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Why a presented token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is unknown or revoked")]
    Unknown,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Resolves secrets to principals through the store, remembering the last good answer so
/// that authenticated reads keep working while the database is unreachable. Revocation takes
/// effect at once whenever the store answers.
pub struct TokenVerifier {
    store: Arc<dyn Store>,
    last_known: RwLock<HashMap<String, TokenRecord>>,
}

impl TokenVerifier {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            last_known: RwLock::new(HashMap::new()),
        }
    }

    pub async fn verify(&self, secret: &str) -> Result<Principal, TokenError> {
        let well_formed = secret.len() == PREFIX.len() + 64
            && secret.starts_with(PREFIX)
            && secret[PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit());
        if !well_formed {
            return Err(TokenError::Malformed);
        }
        let hash = hash_secret(secret);
        let found = match self.store.find_token(&hash).await {
            Ok(found) => {
                // Every authenticated request gets here: take the write lock only on a change.
                let known = self.last_known.read().ok().map(|c| c.get(&hash).cloned());
                if known.as_ref() != Some(&found)
                    && let Ok(mut cache) = self.last_known.write()
                {
                    match &found {
                        Some(t) => cache.insert(hash, t.clone()),
                        None => cache.remove(&hash),
                    };
                }
                found
            }
            Err(StoreError::Unavailable { .. }) => self
                .last_known
                .read()
                .ok()
                .and_then(|c| c.get(&hash).cloned()),
            Err(e) => return Err(e.into()),
        };
        let token = found.ok_or(TokenError::Unknown)?;
        Ok(Principal::Token {
            id: token.id,
            name: token.name,
            role: token.role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_hex_and_hash_to_sha256() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("faro_") && a.len() == 69);
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
