//! Configuration: defaults < environment < flags (clap reads both), validated once here into
//! typed values. The database URL's password never reaches a log.

use std::net::SocketAddr;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default store: the embedded SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://faro.db";

/// Validated settings of `faro serve`.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    /// Load the demo dataset into an empty store at start.
    pub demo: bool,
    /// Connections in the PostgreSQL pool.
    pub pool_size: usize,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--listen `{0}` is not an ADDRESS:PORT (like 127.0.0.1:8080)")]
    Listen(String),
    #[error("--pool-size must be 1 to 1000, got {0}")]
    PoolSize(usize),
    #[error("--database-url `{0}`: use sqlite://PATH or postgres://USER@HOST/DB")]
    DatabaseUrl(String),
}

impl Config {
    pub fn new(
        listen: &str,
        database_url: &str,
        demo: bool,
        pool_size: usize,
    ) -> Result<Self, ConfigError> {
        let listen = listen
            .parse()
            .map_err(|_| ConfigError::Listen(listen.to_owned()))?;
        if !(1..=1000).contains(&pool_size) {
            return Err(ConfigError::PoolSize(pool_size));
        }
        let database_url = database_url.trim().to_owned();
        if database_url.is_empty() {
            return Err(ConfigError::DatabaseUrl(database_url));
        }
        Ok(Self {
            listen,
            database_url,
            demo,
            pool_size,
        })
    }
}

/// A database URL with any password replaced by `***`, for logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://faro:s3cret@db:5432/faro"),
            "postgres://faro:***@db:5432/faro"
        );
        assert_eq!(redact_url("sqlite://faro.db"), "sqlite://faro.db");
    }

    #[test]
    fn bad_listen_addresses_are_rejected() {
        assert!(Config::new("localhost", "sqlite://x.db", true, 8).is_err());
        assert!(Config::new("127.0.0.1:0", "sqlite://x.db", true, 8).is_ok());
        assert!(Config::new("127.0.0.1:0", "sqlite://x.db", true, 0).is_err());
    }
}
