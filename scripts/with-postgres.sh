#!/usr/bin/env bash
# Runs a command with a PostgreSQL + PostGIS server to test against.
#
#   scripts/with-postgres.sh cargo test --test postgres_store
#
# If FARO_TEST_DATABASE_URL (or DATABASE_URL) is already set, the command just runs with
# FARO_TEST_DATABASE_URL exported (and nothing else: the TLS tests then say they are skipped).
# Otherwise (as root) this installs postgresql-15, postgresql-15-postgis-3 and openssl when
# they are missing, makes a throwaway CA and a server certificate for localhost and 127.0.0.1,
# starts a throwaway cluster on a free loopback port (trust auth, fsync off, ssl on with that
# certificate; plain connections work too) in a temporary folder, exports
#
#   FARO_TEST_DATABASE_URL  postgresql://postgres@127.0.0.1:PORT/postgres (an admin URL)
#   FARO_TEST_PG_SSLROOTCERT  the CA certificate (PEM) that signed the server's certificate
#   FARO_TEST_PG_CTL        the pg_ctl binary
#   FARO_TEST_PGDATA        the cluster's data folder
#   FARO_TEST_PG_USER       the user pg_ctl must run as (`runuser -u "$FARO_TEST_PG_USER" -- ...`)
#   FARO_TEST_PGLOG         a log file that user may write, for `pg_ctl start -l`
#
# (the server's port and addresses are in its postgresql.conf, so a plain `pg_ctl -w start`
# after a `pg_ctl -m fast -w stop` brings it back as it was: tests use that to simulate an
# outage), runs the command, and always stops the cluster and removes the folder. The exit code
# is the command's.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

if [[ -n "${FARO_TEST_DATABASE_URL:-}" || -n "${DATABASE_URL:-}" ]]; then
    export FARO_TEST_DATABASE_URL="${FARO_TEST_DATABASE_URL:-$DATABASE_URL}"
    exec "$@"
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "$0: FARO_TEST_DATABASE_URL is not set and installing/starting PostgreSQL needs root" >&2
    exit 2
fi

PG_MAJOR=15
pgbin() { echo "/usr/lib/postgresql/$PG_MAJOR/bin"; }
have_postgres() {
    [[ -x "$(pgbin)/initdb" && -x "$(pgbin)/pg_ctl" && -x "$(pgbin)/postgres" ]] &&
        [[ -f "/usr/share/postgresql/$PG_MAJOR/extension/postgis.control" ]]
}
missing=()
have_postgres || missing+=("postgresql-$PG_MAJOR" "postgresql-$PG_MAJOR-postgis-3")
command -v openssl >/dev/null || missing+=(openssl)
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "with-postgres: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
    have_postgres || { echo "with-postgres: PostgreSQL/PostGIS still missing after apt-get" >&2; exit 1; }
    command -v openssl >/dev/null || { echo "with-postgres: openssl still missing after apt-get" >&2; exit 1; }
fi
PGBIN=$(pgbin)

free_port() {
    python3 - <<'EOF' 2>/dev/null && return 0
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
    # No python: try random high ports until one is not listening.
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

TMP=$(mktemp -d /tmp/faro-pg.XXXXXX)
chown postgres:postgres "$TMP"
chmod 700 "$TMP"
PGDATA="$TMP/data"
LOG="$TMP/postgres.log"

cleanup() {
    local rc=$?
    if [[ -f "$PGDATA/postmaster.pid" ]]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 --no-sync >/dev/null

# A throwaway CA and a server certificate signed by it for localhost and 127.0.0.1 (EC P-256,
# valid two days). The keys stay in $TMP, which is removed at the end; the CA key is deleted
# as soon as it has signed.
TLS="$TMP/tls"
mkdir "$TLS"
tls_log="$TMP/openssl.log"
make_certificates() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=faro with-postgres test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$TLS/ca.key" -out "$TLS/ca.crt" &&
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=localhost" -keyout "$TLS/server.key" -out "$TLS/server.csr" &&
    printf '%s\n' \
        "basicConstraints = critical, CA:FALSE" \
        "keyUsage = critical, digitalSignature, keyEncipherment" \
        "extendedKeyUsage = serverAuth" \
        "subjectAltName = DNS:localhost, IP:127.0.0.1" >"$TLS/server.ext" &&
    openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.crt" -CAkey "$TLS/ca.key" \
        -CAcreateserial -days 2 -sha256 -extfile "$TLS/server.ext" -out "$TLS/server.crt"
}
if ! make_certificates >"$tls_log" 2>&1; then
    cat "$tls_log" >&2
    echo "with-postgres: could not make the TLS certificates" >&2
    exit 1
fi
rm -f "$TLS/ca.key" "$TLS/ca.srl" "$TLS/server.csr" "$TLS/server.ext" "$tls_log"
chown -R postgres:postgres "$TLS"
chmod 600 "$TLS/server.key"

PORT=""
for _ in 1 2 3 4 5; do
    PORT=$(free_port) || { echo "with-postgres: no free port found" >&2; exit 1; }
    # Everything the server needs goes in its config file, so that tests can stop and start it
    # again with a plain `pg_ctl start`.
    cat >"$PGDATA/postgresql.auto.conf" <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$TMP'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
ssl = on
ssl_cert_file = '$TLS/server.crt'
ssl_key_file = '$TLS/server.key'
EOF
    chown postgres:postgres "$PGDATA/postgresql.auto.conf"
    if runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOG" -w -t 60 start >/dev/null; then
        break
    fi
    # The port was taken between picking and binding: try another.
    tail -5 "$LOG" >&2 || true
    PORT=""
done
[[ -n "$PORT" ]] || { echo "with-postgres: the server did not start" >&2; exit 1; }

export FARO_TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
export FARO_TEST_PG_CTL="$PGBIN/pg_ctl"
export FARO_TEST_PGDATA="$PGDATA"
export FARO_TEST_PG_USER=postgres
export FARO_TEST_PGLOG="$LOG"
export FARO_TEST_PG_SSLROOTCERT="$TLS/ca.crt"
echo "with-postgres: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT ($PGDATA), TLS with CA $TLS/ca.crt" >&2

set +e
"$@"
rc=$?
set -e
exit "$rc"
