//! Bearer tokens: generation, hashing, and the lookup every request makes.
//!
//! A token is `faro_` followed by 32 random bytes in hex; only its SHA-256 is stored. Tokens
//! carry 256 bits of entropy, so a fast hash is the right tool (no password stretching needed).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

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

/// How long a verified token is trusted without asking the store again, unless the store says
/// tokens changed (a revoke, seen through NOTIFY on PostgreSQL or the change poller on
/// SQLite) first.
pub const VERIFIED_TTL: Duration = Duration::from_secs(10);

/// A token the store confirmed, and when.
#[derive(Debug, Clone)]
struct Verified {
    token: TokenRecord,
    at: Instant,
    epoch: u64,
}

/// Resolves secrets to principals. A verified token is cached for [`VERIFIED_TTL`] or until
/// the store reports a change to tokens, so requests do not hit the store each time; a
/// revoke is seen at the next request after the change is reported. While the database is
/// unreachable, the last good answer for a token stands, so authenticated reads keep working.
pub struct TokenVerifier {
    store: Arc<dyn Store>,
    epoch: Arc<AtomicU64>,
    verified: RwLock<HashMap<String, Verified>>,
}

impl TokenVerifier {
    /// `epoch` grows whenever tokens may have changed in the store (see
    /// [`crate::catalog::Catalog::token_epoch`]).
    pub fn new(store: Arc<dyn Store>, epoch: Arc<AtomicU64>) -> Self {
        Self {
            store,
            epoch,
            verified: RwLock::new(HashMap::new()),
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
        let epoch = self.epoch.load(Ordering::Acquire);
        let cached = self
            .verified
            .read()
            .ok()
            .and_then(|c| c.get(&hash).cloned());
        if let Some(v) = &cached
            && v.epoch == epoch
            && v.at.elapsed() < VERIFIED_TTL
        {
            return Ok(principal(&v.token));
        }
        let found = match self.store.find_token(&hash).await {
            Ok(found) => {
                if let Ok(mut cache) = self.verified.write() {
                    match &found {
                        Some(t) => cache.insert(
                            hash,
                            Verified {
                                token: t.clone(),
                                at: Instant::now(),
                                epoch,
                            },
                        ),
                        None => cache.remove(&hash),
                    };
                }
                found
            }
            // The store is down: the last good answer stands; a token never seen cannot be
            // checked, which is a 503 (never a silent 401, nor an anonymous answer).
            Err(e @ StoreError::Unavailable { .. }) => match cached {
                Some(v) => Some(v.token),
                None => return Err(e.into()),
            },
            Err(e) => return Err(e.into()),
        };
        let token = found.ok_or(TokenError::Unknown)?;
        Ok(principal(&token))
    }
}

fn principal(token: &TokenRecord) -> Principal {
    Principal::Token {
        id: token.id,
        name: token.name.clone(),
        role: token.role,
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
