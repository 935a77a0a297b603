//! End-to-end harness: runs the real `sesame` binary with its own YAML and
//! database in a temp dir, on a free loopback port, and talks HTTP to it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[path = "burst.rs"]
pub mod burst;
#[path = "db.rs"]
pub mod db;
#[path = "flow.rs"]
pub mod flow;
#[path = "jose.rs"]
pub mod jose;

/// The argon2id hash of "wonderland", the test users' password.
pub const ALICE_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$NsHg1qjI2jqUgdLfsM+dKA$BpKVbbPKfz1wafWi/RkozYWTB0CYgl6+ub/G00BwWoU";

/// The claims of a JWT, unverified (tests check signatures separately).
pub fn jwt_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url payload"),
    )
    .expect("JSON claims")
}

/// What one run of a `sesame` command said.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run `sesame ARGS...` to completion (a command, not the server).
pub fn sesame(args: &[&str]) -> Ran {
    sesame_env(args, &[])
}

/// [`sesame`] with these environment variables set.
pub fn sesame_env(args: &[&str], env: &[(&str, &str)]) -> Ran {
    let out = Command::new(env!("CARGO_BIN_EXE_sesame"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("SESAME_CONFIG")
        .output()
        .expect("run sesame");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running sesame process; killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Server {
    /// Start sesame with `yaml`, where `{port}` and `{db}` are replaced by the
    /// chosen port and database URL. Retries with another port if it was taken.
    pub fn start(yaml: &str, db_url: &str) -> Server {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        Server::start_in(dir, yaml, db_url)
    }

    pub fn start_in(dir: PathBuf, yaml: &str, db_url: &str) -> Server {
        Server::start_in_env(dir, yaml, db_url, &[])
    }

    /// [`Server::start_in`] with these environment variables set for the
    /// server (for `${NAME}` in its config).
    pub fn start_in_env(dir: PathBuf, yaml: &str, db_url: &str, env: &[(&str, &str)]) -> Server {
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let text = yaml
                .replace("{port}", &port.to_string())
                .replace("{db}", db_url);
            let cfg = dir.join("sesame.yaml");
            std::fs::write(&cfg, text).expect("write config");
            match Server::spawn(&dir, &cfg, port, env) {
                Ok(s) => return s,
                Err(e) => last_err = e,
            }
        }
        panic!("sesame did not start: {last_err}");
    }

    /// Start sesame again in `dir` on `port` with the config file already
    /// there (a restart of a stopped server).
    pub fn restart(dir: &std::path::Path, port: u16) -> Server {
        Server::spawn(dir, &dir.join("sesame.yaml"), port, &[])
            .unwrap_or_else(|e| panic!("sesame did not restart: {e}"))
    }

    fn spawn(
        dir: &std::path::Path,
        cfg: &std::path::Path,
        port: u16,
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sesame"))
            .arg("serve")
            .arg("-c")
            .arg(cfg)
            .envs(env.iter().copied())
            .env("SESAME_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr_pipe = child.stderr.take().expect("stderr");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("sesame listening on") {
                    let _ = tx.send(());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(()) => Ok(Server {
                child,
                port,
                dir: dir.to_path_buf(),
                stderr,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                Err(stderr.lock().unwrap().clone())
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// The server's process id (to send it signals: `kill -HUP <pid>`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ask the server to reload its configuration (SIGHUP); it reloads asynchronously.
    pub fn hup(&self) {
        let ok = Command::new("kill")
            .arg("-HUP")
            .arg(self.pid().to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -HUP failed");
    }

    /// The configuration file the server was started with.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("sesame.yaml")
    }

    /// Everything the server logged so far, without terminal colours.
    pub fn logs(&self) -> String {
        let raw = self.stderr.lock().unwrap().clone();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // CSI: ESC [ ... final byte in @..~
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) && c != '[' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// The log once it holds `needle`. The server's log reaches the test
    /// through a pipe read on another thread, so a line written before an
    /// answer may arrive after it.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let logs = self.logs();
            if logs.contains(needle) {
                return logs;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} in the log: {logs}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop gracefully (SIGTERM) and wait.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that does not follow redirects and keeps cookies (a browser).
pub fn browser() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// An HTTP client without cookies or redirects (an application's back end).
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A server with the database it runs on (dropped after the server).
pub struct Running {
    pub server: Server,
    pub db: db::TestDb,
}

impl std::ops::Deref for Running {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

/// One server per database under test (SQLite always; MariaDB and PostgreSQL
/// when their feature is built, which then requires their `SESAME_TEST_*_URL`).
pub fn start_all(yaml: &str) -> Vec<Running> {
    db::test_databases()
        .into_iter()
        .map(|db| Running {
            server: Server::start(yaml, &db.url),
            db,
        })
        .collect()
}

/// A server on a fresh SQLite database.
pub fn start_sqlite(yaml: &str) -> Running {
    let db = db::sqlite();
    Running {
        server: Server::start(yaml, &db.url),
        db,
    }
}

/// A server on a fresh SQLite database whose `plugins/` holds `scripts`
/// (name, source) before it starts.
pub fn start_with_scripts(yaml: &str, scripts: &[(&str, &str)]) -> Running {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    for (name, src) in scripts {
        let p = dir.join("plugins").join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("plugins dir");
        std::fs::write(p, src).expect("write script");
    }
    let db = db::sqlite();
    Running {
        server: Server::start_in(dir, yaml, &db.url),
        db,
    }
}
