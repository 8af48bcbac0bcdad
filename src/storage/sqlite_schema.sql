-- faro embedded store, schema version 1. Idempotent: run at every start.
CREATE TABLE IF NOT EXISTS records (
    -- OR rather than IN: SQLite evaluates a CHECK's IN list through an ephemeral table built
    -- for every row written.
    collection  TEXT    NOT NULL CHECK (collection = 'services' OR collection = 'settlements'
                                        OR collection = 'worksites' OR collection = 'territories'),
    id          TEXT    NOT NULL,
    geometry    BLOB    NOT NULL,   -- OGC WKB, WGS84 lon/lat
    properties  TEXT    NOT NULL,   -- JSON object, validated by faro
    min_lon     REAL    NOT NULL,
    min_lat     REAL    NOT NULL,
    max_lon     REAL    NOT NULL,
    max_lat     REAL    NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (collection, id)
);

CREATE TABLE IF NOT EXISTS tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('operator', 'editor', 'admin')),
    secret_hash TEXT NOT NULL UNIQUE,   -- SHA-256 of the secret, hex
    created_at  TEXT NOT NULL,
    revoked_at  TEXT,
    territories TEXT NOT NULL DEFAULT '[]',  -- JSON array of territory ids; empty: everywhere
    expires_at  TEXT,
    last_used_at TEXT
);

-- The log only grows (nothing deletes from it), so a plain INTEGER PRIMARY KEY gives the same
-- increasing ids as AUTOINCREMENT without its sqlite_sequence row updated on every insert.
-- (Files made before keep their AUTOINCREMENT table; both behave the same.)
CREATE TABLE IF NOT EXISTS audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    collection  TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    before      TEXT,
    after       TEXT
);
