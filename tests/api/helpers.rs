//! `spawn_app()`: a faro server on a free port over a fresh database, with tokens for each role.
//!
//! The backend is SQLite (a new file per test) unless `FARO_TEST_BACKEND=postgres`, in which case
//! each test gets a new database on the server at `FARO_TEST_DATABASE_URL`, dropped afterwards.

use std::net::TcpListener;
use std::sync::Arc;

use faro::catalog::Catalog;
use faro::domain::Role;
use faro::startup::Application;
use faro::storage::{self, Store};
use serde_json::Value;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub catalog: Arc<Catalog>,
    pub operator: String,
    pub editor: String,
    pub admin: String,
    pub database_url: String,
    _db: TestDatabase,
}

/// A database that lives as long as the test.
pub enum TestDatabase {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres { admin_url, name } = self {
            crate::skip::drop_database(admin_url, name);
        }
    }
}

pub fn backend() -> String {
    std::env::var("FARO_TEST_BACKEND").unwrap_or_else(|_| "sqlite".to_owned())
}

/// A fresh, empty database URL for one test.
pub async fn fresh_database() -> (String, TestDatabase) {
    if backend() == "postgres" {
        let admin_url = std::env::var("FARO_TEST_DATABASE_URL")
            .expect("FARO_TEST_BACKEND=postgres needs FARO_TEST_DATABASE_URL");
        let name = format!("faro_test_{}", hex::encode(rand::random::<[u8; 6]>()));
        let (client, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test PostgreSQL server");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("FARO_TEST_DATABASE_URL has no database part"),
        };
        (url, TestDatabase::Postgres { admin_url, name })
    } else {
        fresh_sqlite()
    }
}

/// A new SQLite file in a temporary folder.
pub fn fresh_sqlite() -> (String, TestDatabase) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("faro.db").display());
    (url, TestDatabase::Sqlite(dir))
}

/// A server with the demo data loaded.
pub async fn spawn_app() -> TestApp {
    spawn_on(fresh_database().await, true).await
}

/// A server with the demo data on the embedded store, whatever the backend under test.
pub async fn spawn_sqlite_app() -> TestApp {
    spawn_on(fresh_sqlite(), true).await
}

/// A server with the demo data whose clock always says `now` (for `open_at=now`).
pub async fn spawn_app_at(now: chrono::DateTime<chrono::Utc>) -> TestApp {
    spawn_app_with(faro::startup::ServeOptions {
        clock: faro::http::Clock::fixed(now),
        ..Default::default()
    })
    .await
}

async fn spawn_on(db: (String, TestDatabase), demo: bool) -> TestApp {
    spawn_with(db, demo, faro::startup::ServeOptions::default()).await
}

/// A server with the demo data and these options.
pub async fn spawn_app_with(options: faro::startup::ServeOptions) -> TestApp {
    spawn_with(fresh_database().await, true, options).await
}

async fn spawn_with(
    (database_url, db): (String, TestDatabase),
    demo: bool,
    options: faro::startup::ServeOptions,
) -> TestApp {
    if std::env::var_os("RUST_LOG").is_some() {
        faro::telemetry::init();
    }
    let store: Arc<dyn Store> = storage::open(&database_url, 4).await.expect("open store");
    let catalog = Catalog::open(Arc::clone(&store))
        .await
        .expect("open catalog");
    if demo {
        faro::demo::load_if_empty(&catalog)
            .await
            .expect("load demo");
    }
    let token = |role: Role| {
        let store = Arc::clone(&store);
        async move {
            let secret = faro::tokens::generate_secret().unwrap();
            store
                .create_token(
                    &format!("test {role}"),
                    role,
                    &faro::tokens::hash_secret(&secret),
                )
                .await
                .unwrap();
            secret
        }
    };
    let operator = token(Role::Operator).await;
    let editor = token(Role::Editor).await;
    let admin = token(Role::Admin).await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app =
        Application::with_options(Arc::clone(&catalog), listener, options).expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        // Idle connections are dropped before the server's keep-alive (5 s) closes them: a
        // request sent on a connection the server is closing fails as an incomplete message
        // (seen when a test spends seconds between two requests on a loaded machine).
        client: reqwest::Client::builder()
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap(),
        catalog,
        operator,
        editor,
        admin,
        database_url,
        _db: db,
    }
}

impl TestApp {
    /// A new token of `role` confined to `territories` (ids), through the same path as
    /// `faro token create` (the ids must name territories).
    pub async fn scoped_token(&self, role: Role, territories: &[&str]) -> String {
        let request = faro::tokens::TokenRequest {
            name: format!("test {role} of {}", territories.join(",")),
            role,
            territories: territories.iter().map(|t| (*t).to_owned()).collect(),
            expires: None,
        };
        faro::tokens::create(self.catalog.store().as_ref(), &request)
            .await
            .unwrap()
            .1
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// GET as anonymous.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// GET with a bearer token.
    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// GET, asserting the status, returning the JSON body.
    pub async fn json(&self, token: Option<&str>, path: &str, status: u16) -> Value {
        let resp = match token {
            Some(t) => self.get_as(t, path).await,
            None => self.get(path).await,
        };
        let got = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert_eq!(got, status, "GET {path}: body {body}");
        body
    }
}

impl TestApp {
    /// The current `ETag` of an item, read with the admin token.
    pub async fn etag(&self, path: &str) -> String {
        let resp = self.get_as(&self.admin, path).await;
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.headers()["etag"].to_str().unwrap().to_owned()
    }
}

/// Asserts an `ETag` is strong and carries this version (and an incarnation after it).
pub fn assert_etag_version(etag: &str, version: i64) {
    let inner = etag
        .strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or_else(|| panic!("ETag {etag} is not a quoted strong tag"));
    let (v, incarnation) = inner
        .split_once('-')
        .unwrap_or_else(|| panic!("ETag {etag} has no incarnation"));
    assert_eq!(v, version.to_string(), "ETag {etag}");
    assert!(
        !incarnation.is_empty() && incarnation.bytes().all(|b| b.is_ascii_hexdigit()),
        "ETag {etag}"
    );
}

/// Asserts a 4xx error body names something.
pub fn assert_error(body: &Value, code: &str, mentions: &str) {
    assert_eq!(body["error"], code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(mentions),
        "message `{message}` should mention `{mentions}`"
    );
}

/// Ids of a FeatureCollection's features, in order.
/// The ids of a FeatureCollection's features, in order (a front door of `/nearest` has none).
pub fn ids(fc: &Value) -> Vec<String> {
    fc["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter_map(|f| f["id"].as_str().map(str::to_owned))
        .collect()
}
