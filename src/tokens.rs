//! Bearer tokens: generation, hashing, and the lookup every request makes.
//!
//! A token is `faro_` followed by 32 random bytes in hex; only its SHA-256 is stored. Tokens
//! carry 256 bits of entropy, so a fast hash is the right tool (no password stretching needed).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Rome;

use crate::domain::{Collection, Principal, RecordId, Role};
use crate::storage::{NewToken, Store, StoreError, TokenRecord};

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
    #[error("the token expired")]
    Expired,
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
    /// When this instance last recorded each token's use (by token id).
    touched: std::sync::Mutex<HashMap<i64, Instant>>,
}

/// How often an instance records that a token was used: `last_used_at` is for people
/// reviewing tokens, so a minute's precision is plenty and spares a write per request.
pub const TOUCH_INTERVAL: Duration = Duration::from_mins(1);

impl TokenVerifier {
    /// `epoch` grows whenever tokens may have changed in the store (see
    /// [`crate::catalog::Catalog::token_epoch`]).
    pub fn new(store: Arc<dyn Store>, epoch: Arc<AtomicU64>) -> Self {
        Self {
            store,
            epoch,
            verified: RwLock::new(HashMap::new()),
            touched: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The principal of a live token, recording its use now and then (off the request's
    /// path; a failure to record is only logged).
    fn accept(&self, token: &TokenRecord) -> Result<Principal, TokenError> {
        let now = chrono::Utc::now();
        if token.is_dead_at(now) {
            return Err(if token.revoked_at.is_some() {
                TokenError::Unknown
            } else {
                TokenError::Expired
            });
        }
        let due = {
            let mut touched = self
                .touched
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = touched
                .get(&token.id)
                .is_none_or(|at| at.elapsed() >= TOUCH_INTERVAL);
            if due {
                touched.insert(token.id, Instant::now());
            }
            due
        };
        if due && let Ok(handle) = tokio::runtime::Handle::try_current() {
            let (store, id) = (Arc::clone(&self.store), token.id);
            handle.spawn(async move {
                if let Err(e) = store.touch_token(id, now).await {
                    tracing::debug!(token = id, error = %e, "could not record a token's use");
                }
            });
        }
        Ok(principal(token))
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
            return self.accept(&v.token);
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
        self.accept(&token)
    }
}

/// When a token given `--expires TEXT` (or `"expires"` over HTTP) stops working: `TEXT` is a
/// duration from `now` (`90d`, `12h`, `2w`), a date (`2027-03-31`: the token works through that
/// day, Europe/Rome), or an RFC 3339 instant. The answer must lie in the future.
pub fn parse_expiry(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let at = if let Some((n, unit)) = text
        .char_indices()
        .last()
        .filter(|(_, c)| matches!(c, 'h' | 'd' | 'w'))
        .and_then(|(i, c)| text[..i].parse::<u32>().ok().map(|n| (n, c)))
    {
        let hours = i64::from(n)
            * match unit {
                'h' => 1,
                'd' => 24,
                _ => 24 * 7,
            };
        if hours == 0 || hours > 24 * 366 * 10 {
            return Err(format!("`{text}` is not between 1 hour and 10 years"));
        }
        now + chrono::Duration::hours(hours)
    } else if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let next = date
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .ok_or_else(|| format!("`{text}` is out of range"))?;
        Rome.from_local_datetime(&next)
            .earliest()
            .ok_or_else(|| format!("`{text}` has no midnight in Europe/Rome"))?
            .with_timezone(&Utc)
    } else if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        t.with_timezone(&Utc)
    } else {
        return Err(format!(
            "`{text}` is neither a duration (90d, 12h, 2w), a date (2027-03-31) nor an RFC 3339 time"
        ));
    };
    if at <= now {
        return Err(format!("`{text}` is not in the future"));
    }
    Ok(at)
}

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// A bad request: the message names the field (`role`, `name`, `territory`, `expires`).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("generating a token: {0}")]
    Random(getrandom::Error),
}

/// What a new token grants, as asked for (by `faro token create` or `POST /admin/tokens`).
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub name: String,
    pub role: Role,
    /// Territory ids; empty: the whole network.
    pub territories: Vec<String>,
    pub expires: Option<String>,
}

/// Checks a request (the territories must exist, admins are never scoped), stores the token
/// and answers it with its secret, which is shown this once.
pub async fn create(
    store: &dyn Store,
    request: &TokenRequest,
) -> Result<(TokenRecord, String), CreateError> {
    let invalid = |field, message: String| CreateError::Invalid { field, message };
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(invalid("name", "must be 1 to 200 characters".to_owned()));
    }
    if request.role == Role::Admin && !request.territories.is_empty() {
        return Err(invalid(
            "territory",
            "an admin token is for the whole network; scope operators and editors".to_owned(),
        ));
    }
    let mut territories = Vec::new();
    for t in &request.territories {
        let id = RecordId::parse(t.trim()).map_err(|e| invalid("territory", e.to_string()))?;
        if store.get(Collection::Territories, &id).await?.is_none() {
            return Err(invalid("territory", format!("no territory with id `{id}`")));
        }
        if !territories.contains(&id) {
            territories.push(id);
        }
    }
    let expires_at = request
        .expires
        .as_deref()
        .map(|e| parse_expiry(e, Utc::now()))
        .transpose()
        .map_err(|m| invalid("expires", m))?;
    let secret = generate_secret().map_err(CreateError::Random)?;
    let token = store
        .create_scoped_token(&NewToken {
            name,
            role: request.role,
            secret_hash: &hash_secret(&secret),
            territories: &territories,
            expires_at,
        })
        .await?;
    Ok((token, secret))
}

fn principal(token: &TokenRecord) -> Principal {
    Principal::Token {
        id: token.id,
        name: token.name.clone(),
        role: token.role,
        territories: token.territories.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_durations_dates_or_instants_in_the_future() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let hours = |t: &str| (parse_expiry(t, now).unwrap() - now).num_hours();
        assert_eq!(hours("90d"), 90 * 24);
        assert_eq!(hours("12h"), 12);
        assert_eq!(hours("2w"), 14 * 24);
        // Through 31 March in Rome: until midnight CEST (UTC+2) of 1 April.
        assert_eq!(
            parse_expiry("2027-03-31", now).unwrap().to_rfc3339(),
            "2027-03-31T22:00:00+00:00"
        );
        assert_eq!(
            parse_expiry("2027-01-01T00:00:00+01:00", now)
                .unwrap()
                .to_rfc3339(),
            "2026-12-31T23:00:00+00:00"
        );
        for bad in [
            "0d",
            "2026-11-30",
            "soon",
            "",
            "-3d",
            "2026-12-01T09:00:00Z",
        ] {
            assert!(parse_expiry(bad, now).is_err(), "{bad}");
        }
    }

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
