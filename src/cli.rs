//! The command line: serve, check, migrate, keygen, hash, test, explain.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::config::{self, Config, GrantType, LogFormat};
use crate::fixture::{self, report::FileResult, report::Totals};
use crate::http::App;
use crate::http::Role;
use crate::jose::Alg;
use crate::offline::Offline;
use crate::runtime::Runtime;
use crate::store::Store;

/// sesame — an OpenID Connect provider and OAuth 2.0 authorization server,
/// declared in one YAML file.
#[derive(Debug, Parser)]
#[command(name = "sesame", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (applies pending database migrations first).
    Serve(ConfigArg),
    /// Validate the configuration; print every problem and exit 1 if there is one.
    Check(ConfigArg),
    /// Apply pending database migrations and exit.
    Migrate(ConfigArg),
    /// Print a new private signing key as PKCS#8 PEM.
    Keygen {
        /// Signature algorithm the key is for.
        #[arg(long, value_enum, default_value_t = Alg::RS256)]
        alg: Alg,
    },
    /// Read a password or client secret on stdin and print its argon2id hash
    /// (a PHC string for `password_hash` or `secret_hash`).
    Hash,
    /// Run the test cases of fixture files through the configuration's
    /// scripts, as the server would (no server, no database); exit 1 if one fails.
    Test(TestArgs),
    /// Print what sesame would issue for one request (ID token, access token,
    /// userinfo, introspection) and how the scope decision was reached.
    Explain(ExplainArgs),
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Also write the results as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Fixture files, or folders of them (default: tests/NAME/*.yaml beside
    /// the configuration NAME.yaml).
    #[arg(value_name = "FILES")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Tenant id (may be left out when there is one tenant).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Client id.
    #[arg(long)]
    pub client: String,
    /// Username (not for client_credentials).
    #[arg(long)]
    pub user: Option<String>,
    /// Requested scopes, space-separated (client_credentials: default the client's).
    #[arg(long)]
    pub scope: Option<String>,
    /// The grant.
    #[arg(long, default_value = "authorization_code", value_parser = ["authorization_code", "refresh_token", "client_credentials"])]
    pub grant: String,
    /// The client's address, as scripts see it in ctx.request.ip.
    #[arg(long)]
    pub ip: Option<std::net::IpAddr>,
    /// The User-Agent, as scripts see it in ctx.request.user_agent.
    #[arg(long)]
    pub user_agent: Option<String>,
    /// The time: unix seconds or RFC 3339 (default: now).
    #[arg(long)]
    pub now: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// Configuration file.
    #[arg(short, long, env = "SESAME_CONFIG", default_value = "sesame.yaml")]
    pub config: PathBuf,
}

/// Parse arguments and run; the exit code is 0 on success, 1 for invalid config or input.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(a) => serve(&a.config),
        Command::Check(a) => check(&a.config),
        Command::Migrate(a) => migrate(&a.config),
        Command::Keygen { alg } => keygen(alg),
        Command::Hash => hash(),
        Command::Test(a) => test(&a),
        Command::Explain(a) => explain(&a),
    }
}

/// Logs go to stderr: text (colours only on a terminal) or one JSON object
/// per line. `SESAME_LOG` sets the filter (`info` by default); the HTTP
/// libraries' own chatter stays at `warn` unless a directive names them
/// (`SESAME_LOG=debug,hyper=debug`).
fn init_logs(format: LogFormat) {
    init_logs_with(format, "info");
}

/// Text logs at `SESAME_LOG`, or at `default` (the offline commands).
fn init_logs_at(default: &str) {
    init_logs_with(LogFormat::Text, default);
}

fn init_logs_with(format: LogFormat, default: &str) {
    use std::io::IsTerminal;
    let wanted = std::env::var("SESAME_LOG").unwrap_or_else(|_| default.to_string());
    let mut directives = wanted.clone();
    for lib in ["hyper", "h2", "warp", "mio", "tokio_util"] {
        if !wanted.contains(lib) {
            directives.push_str(&format!(",{lib}=warn"));
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("SESAME_LOG={wanted:?} is not a valid filter ({e}); using info");
        tracing_subscriber::EnvFilter::new("info,hyper=warn,h2=warn,warp=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

fn load_or_report(path: &Path) -> Option<Config> {
    match config::load(path) {
        Ok(c) => Some(c),
        Err(errors) => {
            report(path, &errors.0);
            None
        }
    }
}

fn report(path: &Path, errors: &[config::ConfigError]) {
    eprintln!("{}: invalid configuration", path.display());
    for e in errors {
        eprintln!("  {e}");
    }
}

fn check(path: &Path) -> ExitCode {
    let Some(config) = load_or_report(path) else {
        return ExitCode::from(1);
    };
    let scripts = match crate::plugin::Scripts::compile(&config) {
        Ok(s) => s,
        Err(errors) => {
            report(path, &errors);
            return ExitCode::from(1);
        }
    };
    for w in config::warnings(&config) {
        eprintln!("warning: {w}");
    }
    let clients: usize = config.tenants.iter().map(|t| t.clients.len()).sum();
    let users: usize = config.tenants.iter().map(|t| t.users.len()).sum();
    println!(
        "{}: ok ({} tenant(s), {} client(s), {} user(s), {} script(s))",
        path.display(),
        config.tenants.len(),
        clients,
        users,
        scripts.len()
    );
    ExitCode::SUCCESS
}

/// The configuration, its scripts compiled, ready to run the core offline.
fn load_offline(path: &Path) -> Option<Offline> {
    let config = load_or_report(path)?;
    Offline::new(config)
        .map_err(|errors| report(path, &errors))
        .ok()
}

/// A runtime for the core's async functions, on this thread.
fn local_runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| eprintln!("cannot start the async runtime: {e}"))
        .ok()
}

fn test(a: &TestArgs) -> ExitCode {
    init_logs_at("warn");
    let path = &a.config.config;
    let Some(offline) = load_offline(path) else {
        return ExitCode::from(1);
    };
    let files = match fixture::fixture_files(&a.files, &fixture::default_dir(path)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("test: {e}");
            return ExitCode::from(1);
        }
    };
    let Some(rt) = local_runtime() else {
        return ExitCode::from(1);
    };
    let results: Vec<FileResult> = files
        .iter()
        .map(|f| {
            let fixture = fixture::read_file(f);
            let cases = fixture.cases.map(|cases| {
                cases
                    .iter()
                    .map(|c| rt.block_on(fixture::run_case(&offline, c)))
                    .collect()
            });
            FileResult {
                name: f.display().to_string(),
                cases,
            }
        })
        .collect();
    print!("{}", fixture::text(&results));
    if let Some(junit) = &a.junit {
        if let Err(e) = std::fs::write(junit, fixture::junit(&results)) {
            eprintln!("test: cannot write {}: {e}", junit.display());
            return ExitCode::from(1);
        }
    }
    let totals = Totals::of(&results);
    if totals.cases == 0 && totals.errors == 0 {
        eprintln!("test: no test cases in {} file(s)", files.len());
    }
    if totals.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn explain(a: &ExplainArgs) -> ExitCode {
    init_logs_at("warn");
    let now = match a.now.as_deref().map(parse_now) {
        None => crate::now(),
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("explain: --now: {e}");
            return ExitCode::from(2);
        }
    };
    let grant = match a.grant.as_str() {
        "refresh_token" => GrantType::RefreshToken,
        "client_credentials" => GrantType::ClientCredentials,
        _ => GrantType::AuthorizationCode,
    };
    let path = &a.config.config;
    let Some(offline) = load_offline(path) else {
        return ExitCode::from(1);
    };
    let Some(rt) = local_runtime() else {
        return ExitCode::from(1);
    };
    let query = crate::explain::Query {
        tenant: a.tenant.clone(),
        client: a.client.clone(),
        user: a.user.clone(),
        scope: a.scope.clone(),
        grant,
        ip: a.ip,
        user_agent: a.user_agent.clone(),
        now,
    };
    match rt.block_on(crate::explain::explain(&offline, &query)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("explain: {e}");
            ExitCode::from(1)
        }
    }
}

/// Unix seconds or an RFC 3339 time.
fn parse_now(s: &str) -> Result<i64, String> {
    match s.parse::<i64>() {
        Ok(n) => Ok(n),
        Err(_) => fixture::format::Now::Rfc3339(s.to_string()).seconds(),
    }
}

fn connect(config: &Config) -> Result<Store, String> {
    Store::connect(
        &config.database.url,
        config.database.pool_size,
        config.database.connect_timeout,
        &config.base_dir,
    )
    .map_err(|e| e.to_string())
}

fn migrate(path: &Path) -> ExitCode {
    let Some(config) = load_or_report(path) else {
        return ExitCode::from(1);
    };
    init_logs(config.server.log_format);
    let result = connect(&config).and_then(|store| store.migrate().map_err(|e| e.to_string()));
    match result {
        Ok(applied) if applied.is_empty() => {
            println!("database is up to date");
            ExitCode::SUCCESS
        }
        Ok(applied) => {
            for v in applied {
                println!("applied {v}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("migrate: {e}");
            ExitCode::from(1)
        }
    }
}

fn keygen(alg: Alg) -> ExitCode {
    match crate::jose::keygen_pem(alg) {
        Ok(pem) => {
            print!("{pem}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("keygen: {e}");
            ExitCode::from(1)
        }
    }
}

fn hash() -> ExitCode {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("hash: cannot read stdin: {e}");
        return ExitCode::from(1);
    }
    if input.last() == Some(&b'\n') {
        input.pop();
        if input.last() == Some(&b'\r') {
            input.pop();
        }
    }
    if input.is_empty() {
        eprintln!("hash: the input is empty");
        return ExitCode::from(1);
    }
    match crate::oauth::password::hash(&input) {
        Ok(phc) => {
            println!("{phc}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hash: {e}");
            ExitCode::from(1)
        }
    }
}

fn serve(path: &Path) -> ExitCode {
    let Some(config) = load_or_report(path) else {
        return ExitCode::from(1);
    };
    init_logs(config.server.log_format);
    // Blocking threads run database work on pooled connections: more of them
    // than connections would only wait for one (and wake each other).
    let blocking_threads = config.database.pool_size as usize + 2;
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(blocking_threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(serve_async(path.to_path_buf(), config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("sesame: {e}");
            ExitCode::from(1)
        }
    }
}

async fn serve_async(path: PathBuf, config: Config) -> Result<(), String> {
    let store = connect(&config)?;
    let migrating = store.clone();
    let applied = tokio::task::spawn_blocking(move || migrating.migrate())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    for v in applied {
        tracing::info!(version = %v, "applied migration");
    }
    let admin_listen = config.server.admin_listen;
    let listen = config.server.listen;
    let runtime = Runtime::build(config, &store, None)
        .await
        .map_err(|e| format!("invalid configuration:\n{e}"))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let admin = match admin_listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .map_err(|e| format!("cannot listen on {at} (server.admin_listen): {e}"))?,
        ),
        None => None,
    };
    // Every node keys its forms' CSRF tokens with the same secret.
    let csrf_secret = store
        .find_or_insert_server_secret("csrf", rand::random(), crate::now())
        .await
        .map_err(|e| format!("cannot read the server secret: {e}"))?;
    let metrics = crate::metrics::Metrics::new(store.wait_histogram());
    let services = crate::oauth::Services::with(&csrf_secret, metrics);
    let app = App::new(runtime, store.clone(), services);
    app.services.metrics.serving(&app.runtime.load().generation);
    // Listening for SIGHUP before the announcement: from then on it reloads.
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hup) => {
            tokio::spawn(reload_on_sighup(app.clone(), path, hup));
        }
        Err(e) => tracing::warn!(error = %e, "SIGHUP reload unavailable"),
    }
    #[cfg(not(unix))]
    let _ = path;
    tokio::spawn(purge_periodically(store));
    announce(addr, &app.runtime.load());
    // One shutdown signal for every listener.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let until_stopped = move || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let admin = match admin {
        Some(listener) => {
            let served = crate::http::serve(app.clone(), Role::Admin, listener, until_stopped());
            Some(tokio::spawn(served))
        }
        None => None,
    };
    let role = Role::Public {
        metrics: admin.is_none(),
    };
    crate::http::serve(app, role, listener, until_stopped()).await;
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Tell the operator where to look.
fn announce(addr: std::net::SocketAddr, runtime: &Runtime) {
    tracing::info!(%addr, tenants = runtime.tenants.len(), "sesame listening");
    println!("sesame listening on http://{addr}");
    for t in &runtime.tenants {
        println!(
            "  tenant {:<12} {}/.well-known/openid-configuration",
            t.id, t.issuer
        );
        let mut clients: Vec<_> = t.clients.values().collect();
        clients.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(c) = clients
            .iter()
            .find(|c| !c.redirect_uris.is_empty() && !c.is_public())
        {
            let mut url = url::Url::parse(&t.endpoint("/authorize")).ok();
            if let Some(u) = url.as_mut() {
                u.query_pairs_mut()
                    .append_pair("response_type", "code")
                    .append_pair("client_id", &c.id)
                    .append_pair("redirect_uri", &c.redirect_uris[0])
                    .append_pair("scope", "openid profile email")
                    .append_pair("state", "try-me");
                println!("  point a browser at: {u}");
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}

/// SIGHUP: reload the configuration file.
#[cfg(unix)]
async fn reload_on_sighup(app: Arc<App>, path: PathBuf, mut hup: tokio::signal::unix::Signal) {
    while hup.recv().await.is_some() {
        tracing::info!(config = %path.display(), "SIGHUP: reloading configuration");
        let serving = app.runtime.load().generation.clone();
        match reload(&app, &path).await {
            Ok(summary) => {
                let now = app.runtime.load();
                app.services.metrics.reload(true);
                app.services.metrics.serving(&now.generation);
                tracing::info!(
                    event = "config.reloaded",
                    previous = %serving,
                    generation = %now.generation,
                    summary = %summary,
                    "configuration reloaded"
                );
            }
            Err(problems) => {
                app.services.metrics.reload(false);
                for e in &problems {
                    tracing::error!(event = "config.rejected", generation = %serving, error = %e, "reload rejected, still serving the previous configuration");
                }
            }
        }
    }
}

/// Build a new generation from the file and swap it in whole, only if it is
/// valid and changes nothing that only takes effect at start.
async fn reload(app: &App, path: &Path) -> Result<String, Vec<String>> {
    let config = config::load(path)
        .map_err(|errors| errors.0.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    let previous = app.runtime.load_full();
    let restart_only = config::restart_only_changes(&previous.config, &config);
    if !restart_only.is_empty() {
        return Err(restart_only
            .iter()
            .map(|key| format!("{key}: changing it needs a restart"))
            .collect());
    }
    let runtime = Runtime::build(config, &app.store, Some(&previous))
        .await
        .map_err(|errors| errors.0.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    let summary = summarize(&previous, &runtime);
    app.runtime.store(Arc::new(runtime));
    Ok(summary)
}

/// One line on what a reload changed: tenants and clients added, removed or
/// changed (a finer plan belongs to the live-configuration work).
fn summarize(old: &Runtime, new: &Runtime) -> String {
    if old.generation == new.generation {
        return "no change".to_string();
    }
    let mut parts = Vec::new();
    for t in &new.config.tenants {
        match old.config.tenants.iter().find(|o| o.id == t.id) {
            None => parts.push(format!("+tenant {}", t.id)),
            Some(o) => {
                for c in &t.clients {
                    match o.clients.iter().find(|oc| oc.id == c.id) {
                        None => parts.push(format!("+client {}/{}", t.id, c.id)),
                        Some(oc) if json(oc) != json(c) => {
                            parts.push(format!("~client {}/{}", t.id, c.id))
                        }
                        Some(_) => {}
                    }
                }
                for oc in &o.clients {
                    if !t.clients.iter().any(|c| c.id == oc.id) {
                        parts.push(format!("-client {}/{}", t.id, oc.id));
                    }
                }
            }
        }
    }
    for o in &old.config.tenants {
        if !new.config.tenants.iter().any(|t| t.id == o.id) {
            parts.push(format!("-tenant {}", o.id));
        }
    }
    if parts.is_empty() {
        "settings or scripts changed".to_string()
    } else {
        parts.join(", ")
    }
}

/// A value as JSON, to compare configurations by value.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Delete expired rows now and then, in batches, off the request path.
async fn purge_periodically(store: Store) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        match store.purge_expired(crate::now(), 500).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged expired rows"),
            Err(e) => tracing::warn!(error = %e, "purge failed"),
        }
    }
}
