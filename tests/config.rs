//! `faro serve` configuration, run as a user would: the config file and its precedence under
//! the environment and the flags, its errors, and which request headers may change the links.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Variables that would change the result if the test's own environment had them.
const FARO_VARS: [&str; 7] = [
    "FARO_CONFIG",
    "FARO_LISTEN",
    "FARO_NO_DEMO",
    "FARO_PUBLIC_URL",
    "FARO_TRUSTED_PROXIES",
    "FARO_POOL_SIZE",
    "DATABASE_URL",
];

/// `faro` run in `dir` with a clean environment plus `env`.
fn faro(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faro"));
    cmd.current_dir(dir).args(args);
    for var in FARO_VARS {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "info").env("NO_COLOR", "1");
    for &(k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A running server, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `faro serve ARGS` in `dir` and waits for the address it logs.
fn serve(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    let mut child = faro(dir, &all, env)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start faro");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read to the end, so that the server never writes to a closed pipe.
        let mut log = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("faro listening on http://").nth(1) {
                let addr = rest.split('/').next().unwrap_or_default().to_owned();
                let _ = tx.send(Ok(addr));
            }
            log.push_str(&line);
            log.push('\n');
        }
        let _ = tx.send(Err(log));
    });
    let addr = match rx.recv_timeout(Duration::from_mins(1)) {
        Ok(Ok(addr)) => addr,
        Ok(Err(log)) => {
            let _ = child.kill();
            panic!("faro exited before listening:\n{log}");
        }
        Err(e) => {
            let _ = child.kill();
            panic!("faro did not log its address: {e}");
        }
    };
    Server { child, addr }
}

/// `GET path` with the given headers; the JSON body. Without a `Host` among them the request
/// is HTTP/1.0 (HTTP/1.1 requires one).
fn get(addr: &str, path: &str, headers: &[(&str, &str)]) -> serde_json::Value {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let version = if headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        "1.1"
    } else {
        "1.0"
    };
    let mut request = format!("GET {path} HTTP/{version}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(name);
        request.push_str(": ");
        request.push_str(value);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"),
        "{response}"
    );
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    // The landing page is small, but a server may still send it in chunks.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// The `href` of every link of the landing page.
fn landing_links(addr: &str, headers: &[(&str, &str)]) -> Vec<String> {
    let doc = get(addr, "/?f=json", headers);
    let links: Vec<String> = doc["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["href"].as_str().unwrap().to_owned())
        .collect();
    assert!(links.len() >= 4, "{doc}");
    links
}

/// Asserts every link starts with `base/`.
fn assert_links_start_with(links: &[String], base: &str) {
    for link in links {
        assert!(
            link.starts_with(&format!("{base}/")),
            "{link} does not start with {base}/"
        );
    }
    assert!(links.contains(&format!("{base}/collections")), "{links:?}");
}

fn db(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("f.db").display())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_file_value_is_beaten_by_the_environment_which_is_beaten_by_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("settings.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.2:0\"\ndatabase_url = \"{}\"\ndemo = false\n\
             public_url = \"https://file.example/faro/\"\n",
            db(dir.path())
        ),
    )
    .unwrap();
    let config = file.to_str().unwrap();

    // The file alone (named by the variable).
    let server = serve(dir.path(), &[], &[("FARO_CONFIG", config)]);
    assert!(server.addr.starts_with("127.0.0.2:"), "{}", server.addr);
    assert_links_start_with(
        &landing_links(&server.addr, &[("Host", "faro.lan")]),
        "https://file.example/faro",
    );
    drop(server);

    // The environment beats the file.
    let env = [
        ("FARO_LISTEN", "127.0.0.3:0"),
        ("FARO_PUBLIC_URL", "https://env.example"),
    ];
    let server = serve(dir.path(), &["--config", config], &env);
    assert!(server.addr.starts_with("127.0.0.3:"), "{}", server.addr);
    assert_links_start_with(
        &landing_links(&server.addr, &[("Host", "faro.lan")]),
        "https://env.example",
    );
    drop(server);

    // A flag beats both.
    let server = serve(
        dir.path(),
        &[
            "--config",
            config,
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            "http://flag.example/x",
        ],
        &env,
    );
    assert!(server.addr.starts_with("127.0.0.1:"), "{}", server.addr);
    assert_links_start_with(
        &landing_links(&server.addr, &[("Host", "faro.lan")]),
        "http://flag.example/x",
    );
}

#[test]
fn faro_toml_in_the_working_directory_is_read_when_no_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("faro.toml"),
        format!(
            "listen = \"127.0.0.4:0\"\ndatabase_url = \"{}\"\ndemo = false\n",
            db(dir.path())
        ),
    )
    .unwrap();
    let server = serve(dir.path(), &[], &[]);
    assert!(server.addr.starts_with("127.0.0.4:"), "{}", server.addr);
    drop(server);
    // The store settings of the other commands come from the same file.
    let out = faro(dir.path(), &["token", "list"], &[]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("f.db").exists());
    assert!(!dir.path().join("faro.db").exists());
    // ... and a flag of the subcommand beats the file.
    let other = format!("sqlite://{}", dir.path().join("other.db").display());
    let out = faro(
        dir.path(),
        &["token", "list", "--database-url", &other],
        &[],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("other.db").exists());
}

#[test]
fn file_errors_name_the_file_the_line_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let run = |text: &str| {
        std::fs::write(dir.path().join("faro.toml"), text).unwrap();
        let out = faro(dir.path(), &["serve"], &[]).output().unwrap();
        assert!(!out.status.success());
        stderr(&out)
    };
    let e = run("demo = false\nlisen = \"127.0.0.1:0\"\n");
    assert!(e.contains("faro.toml:2: unknown key `lisen`"), "{e}");
    let e = run("demo = false\nlisten = \"x\"\n");
    assert!(
        e.contains("faro.toml:2: key `listen`: `x` is not an ADDRESS:PORT"),
        "{e}"
    );
    let e = run("pool_size = \"many\"\n");
    assert!(e.contains("faro.toml:1: key `pool_size`"), "{e}");
    let e = run("trusted_proxies = [\"10.0.0.1\", \"proxy.lan\"]\n");
    assert!(
        e.contains("faro.toml:1: key `trusted_proxies`: `proxy.lan` is not an IP address"),
        "{e}"
    );
    let e = run("public_url = \"https://faro.example.org/?x=1\"\n");
    assert!(e.contains("faro.toml:1: key `public_url`"), "{e}");
    // A syntax error gives the line, and never quotes it (it could hold a password).
    let e = run("demo = false\n\ndatabase_url = \"postgres://faro:hunter2@db/faro\n");
    assert!(e.contains("faro.toml:3:"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");

    // A file named explicitly must exist.
    let out = faro(dir.path(), &["serve", "--config", "missing.toml"], &[])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("reading config file missing.toml"),
        "{}",
        stderr(&out)
    );
    // A bad value from the environment or a flag names it.
    std::fs::remove_file(dir.path().join("faro.toml")).unwrap();
    let out = faro(dir.path(), &["serve"], &[("FARO_PUBLIC_URL", "ftp://x")])
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("environment variable FARO_PUBLIC_URL: "),
        "{}",
        stderr(&out)
    );
    let out = faro(dir.path(), &["serve", "--trusted-proxy", "10.0.0.1/8"], &[])
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("--trusted-proxy: `10.0.0.1/8` has host bits set"),
        "{}",
        stderr(&out)
    );
}

/// Headers a client (or a proxy) could send to point links elsewhere.
const FORWARDED: [(&str, &str); 4] = [
    ("Host", "faro.lan:8080"),
    ("Forwarded", "for=192.0.2.60;proto=https;host=proxy.example"),
    ("X-Forwarded-Host", "other.example"),
    ("X-Forwarded-Proto", "https"),
];

#[test]
fn forwarded_headers_change_links_only_from_a_trusted_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let base = ["--listen", "127.0.0.1:0", "--no-demo"];
    let env = [("DATABASE_URL", db(dir.path()))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // No trusted proxy: the Host header, whatever else the client says.
    let server = serve(dir.path(), &base, &env);
    assert_links_start_with(
        &landing_links(&server.addr, &FORWARDED),
        "http://faro.lan:8080",
    );
    // Without a Host header, the address the client connected to.
    assert_links_start_with(
        &landing_links(&server.addr, &FORWARDED[1..]),
        &format!("http://{}", server.addr),
    );
    drop(server);

    // Another proxy is trusted, not loopback: still ignored.
    let mut args = base.to_vec();
    args.extend(["--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "::1"]);
    let server = serve(dir.path(), &args, &env);
    assert_links_start_with(
        &landing_links(&server.addr, &FORWARDED),
        "http://faro.lan:8080",
    );
    drop(server);

    // Loopback trusted (through the variable's comma list): Forwarded is believed, and
    // X-Forwarded-* when there is no Forwarded.
    let mut trusted = env.clone();
    trusted.push(("FARO_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"));
    let server = serve(dir.path(), &base, &trusted);
    assert_links_start_with(
        &landing_links(&server.addr, &FORWARDED),
        "https://proxy.example",
    );
    let x_only = [FORWARDED[0], FORWARDED[2], FORWARDED[3]];
    assert_links_start_with(
        &landing_links(&server.addr, &x_only),
        "https://other.example",
    );
}

#[test]
fn the_public_url_wins_over_every_header() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = db(dir.path());
    let server = serve(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--no-demo",
            "--trusted-proxy",
            "127.0.0.0/8",
            "--public-url",
            "https://faro.example.org/base/",
        ],
        &[("DATABASE_URL", &database_url)],
    );
    assert_links_start_with(
        &landing_links(&server.addr, &FORWARDED),
        "https://faro.example.org/base",
    );
    // Links deeper in the API too.
    let collections = get(&server.addr, "/collections", &FORWARDED);
    let text = collections.to_string();
    assert!(
        text.contains("https://faro.example.org/base/collections"),
        "{text}"
    );
    assert!(
        !text.contains("proxy.example") && !text.contains("faro.lan"),
        "{text}"
    );
}
