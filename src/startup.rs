//! Building and running the HTTP server. The server binds its own listener, so port 0 picks a
//! free port (tests use this) and the log says which.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Compress, ErrorHandlers, from_fn};
use actix_web::{App, HttpServer, web};

use crate::catalog::Catalog;
use crate::config::{Config, LinkConfig, redact_url};
use crate::http::{self, AppState};

/// What a server is built with besides its catalog and listener.
#[derive(Clone)]
pub struct ServeOptions {
    pub links: LinkConfig,
    pub clock: http::Clock,
    /// Positions a written geometry may have at most.
    pub max_vertices: usize,
    /// Bytes of encoded tiles kept in memory (0: none).
    pub tile_cache_bytes: usize,
    /// The viewer's base map tile URL template, if any (`--basemap-url`).
    pub basemap_url: Option<String>,
    /// Requests a second per client; 0: no limit (`--rate-limit`).
    pub rate_limit: u32,
    /// Origins allowed to read cross-origin (`--cors-origin`).
    pub cors_origins: Vec<String>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            links: LinkConfig::default(),
            clock: http::Clock::system(),
            max_vertices: crate::domain::DEFAULT_MAX_VERTICES,
            tile_cache_bytes: crate::tiles::cache::DEFAULT_CAPACITY_MB * 1024 * 1024,
            basemap_url: None,
            rate_limit: 0,
            cors_origins: Vec::new(),
        }
    }
}

/// The application one worker serves: every route of [`http::configure`] behind faro's
/// middleware (JSON errors, compression, the rate limit, metrics and the request log,
/// security headers, CORS when origins are configured). The server builds one
/// per worker; benches call it in process.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let cors = (!state.cors_origins.is_empty()).then(|| http::limits::cors(&state.cors_origins));
    App::new()
        .app_data(state)
        .wrap(ErrorHandlers::new().default_handler(http::json_errors))
        .wrap(Compress::default())
        .wrap(from_fn(http::limits::rate_limit))
        .wrap(from_fn(http::observe))
        .wrap(http::limits::security_headers())
        .wrap(actix_web::middleware::Condition::new(
            cors.is_some(),
            cors.unwrap_or_default(),
        ))
        .configure(http::configure)
        .default_service(web::to(http::not_found))
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    catalog: Arc<Catalog>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("opening the store at {url}: {source}")]
    Store {
        url: String,
        source: crate::storage::StoreError,
    },
    #[error("loading the demo data: {0}")]
    Demo(#[from] crate::demo::DemoError),
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

impl Application {
    /// Opens the store, loads the demo data if asked and the store is empty, builds the index
    /// and binds the listener.
    pub async fn build(config: &Config) -> Result<Self, StartupError> {
        let store = crate::storage::open(&config.database_url, config.pool_size)
            .await
            .map_err(|source| StartupError::Store {
                url: redact_url(&config.database_url),
                source,
            })?;
        let catalog = Catalog::open(store)
            .await
            .map_err(|source| StartupError::Store {
                url: redact_url(&config.database_url),
                source,
            })?;
        if config.demo {
            let n = crate::demo::load_if_empty(&catalog).await?;
            if n > 0 {
                tracing::info!(records = n, "loaded the demo dataset into the empty store");
            }
        }
        let listener = TcpListener::bind(config.listen).map_err(|source| StartupError::Bind {
            addr: config.listen.to_string(),
            source,
        })?;
        let options = ServeOptions {
            links: config.links.clone(),
            max_vertices: config.max_vertices,
            tile_cache_bytes: config.tile_cache_mb.saturating_mul(1024 * 1024),
            basemap_url: config.basemap_url.clone(),
            rate_limit: config.rate_limit,
            cors_origins: config.cors_origins.clone(),
            ..ServeOptions::default()
        };
        Self::with_options(catalog, listener, options)
    }

    /// Serves an open catalog on a bound listener, with links built from the request alone
    /// (no public URL, no trusted proxy).
    pub fn with_listener(
        catalog: Arc<Catalog>,
        listener: TcpListener,
    ) -> Result<Self, StartupError> {
        Self::with_options(catalog, listener, ServeOptions::default())
    }

    /// Serves an open catalog on a bound listener, with links built as `options.links` says
    /// and the time `open_at=now` means taken from `options.clock` (tests fix it).
    pub fn with_options(
        catalog: Arc<Catalog>,
        listener: TcpListener,
        options: ServeOptions,
    ) -> Result<Self, StartupError> {
        let addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: "listener".to_owned(),
            source,
        })?;
        let mut state = AppState::with_tile_cache(Arc::clone(&catalog), options.tile_cache_bytes);
        state.clock = options.clock;
        state.links = options.links;
        state.max_vertices = options.max_vertices;
        state.basemap_url = options.basemap_url;
        // Bursts of five seconds' worth: a map view loads dozens of tiles at once.
        state.rate_limit =
            http::limits::RateLimit::new(options.rate_limit, options.rate_limit.saturating_mul(5));
        state.cors_origins = options.cors_origins;
        let state = web::Data::new(state);
        let server = HttpServer::new(move || app(state.clone()))
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                addr: addr.to_string(),
                source,
            })?
            .run();
        // Follow other instances' writes on a shared database.
        let _ = catalog.follow();
        let counts = catalog.snapshot().counts();
        tracing::info!(
            %addr,
            store = catalog.store().backend(),
            ?counts,
            "faro listening on http://{addr}/"
        );
        Ok(Self {
            port: addr.port(),
            server,
            catalog,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Serves until the process is stopped.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
