//! The command line: serve, check, migrate, keygen, hash, test, explain,
//! revoke, plan, keys.

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
    /// End grants (codes, refresh families, access tokens) and browser
    /// sessions in the database, for every node: by client, user, session or
    /// configuration generation; prints what was ended.
    Revoke(RevokeArgs),
    /// Compare a configuration with the one the deployment serves (as its
    /// nodes recorded it in the database) and print what would change, with
    /// warnings for what would cut off users signed in now. Exit 0: no
    /// change; 2: changes; 3: changes with warnings; 1: no plan could be made.
    Plan(PlanArgs),
    /// The tenants' signing keys: list them with their state, or retire a
    /// key of a tenant's key ring (signing.rotation) at once, for every node.
    Keys(KeysArgs),
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Compare with this generation instead of the one the live nodes serve.
    #[arg(long)]
    pub against: Option<String>,
    /// Fixture files or folders to run against the new configuration
    /// (default: tests/NAME/ beside NAME.yaml, when it exists).
    #[arg(long = "fixtures", value_name = "FILES")]
    pub fixtures: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Each tenant's keys with their state (next, signing, rotated out,
    /// expired, retired) and times.
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// Only this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Retire a (compromised) key now: it stops signing, leaves JWKS and
    /// stops verifying on every node within its next ring check; a fresh key
    /// signs in its place if it was signing.
    Retire {
        #[command(flatten)]
        config: ConfigArg,
        /// Tenant id (may be left out when there is one tenant).
        #[arg(long)]
        tenant: Option<String>,
        /// The key's `kid`, as JWKS and `sesame keys list` show it (a
        /// thumbprint may start with `-`: `--kid -Xy…` is taken as a value).
        #[arg(long, allow_hyphen_values = true)]
        kid: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Tenant id (may be left out when there is one tenant).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only the grants of this client.
    #[arg(long)]
    pub client: Option<String>,
    /// Only the grants of this user: a username of the tenant, or a `sub`.
    #[arg(long)]
    pub user: Option<String>,
    /// Only grants with a code or token issued by this configuration
    /// generation (as `/readyz` and the reload log show it).
    #[arg(long)]
    pub generation: Option<String>,
    /// End this one browser session (its `sid`), and nothing else.
    #[arg(
        long,
        allow_hyphen_values = true,
        conflicts_with_all = ["client", "user", "generation", "sessions"]
    )]
    pub session: Option<String>,
    /// Also sign the user (or, with no --user and no --client, everyone of the
    /// tenant) out of their browser sessions.
    #[arg(long)]
    pub sessions: bool,
    /// With no filter: end every grant of the tenant.
    #[arg(long)]
    pub all: bool,
    /// Count what would be ended; change nothing.
    #[arg(long)]
    pub dry_run: bool,
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
        // Hooks run on this thread there: give it the stack of a hook thread.
        Command::Test(a) => crate::plugin::engine::on_script_stack(|| test(&a)),
        Command::Explain(a) => crate::plugin::engine::on_script_stack(|| explain(&a)),
        Command::Revoke(a) => revoke(&a),
        // Fixtures run hooks on this thread.
        Command::Plan(a) => crate::plugin::engine::on_script_stack(|| plan(&a)),
        Command::Keys(a) => keys(&a.command),
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

/// The store of a one-shot command (see `Store::connect_for_command`).
fn connect(config: &Config) -> Result<Store, String> {
    Store::connect_for_command(
        &config.database.url,
        config.database.connect_timeout,
        &config.base_dir,
    )
    .map_err(|e| e.to_string())
}

fn revoke(a: &RevokeArgs) -> ExitCode {
    let path = &a.config.config;
    let Some(config) = load_or_report(path) else {
        return ExitCode::from(1);
    };
    init_logs(config.server.log_format);
    let Some(offline) = load_offline(path) else {
        return ExitCode::from(1);
    };
    let tenant = match offline.tenant(a.tenant.as_deref()) {
        Ok((t, _)) => t,
        Err(e) => {
            eprintln!("revoke: {e}");
            return ExitCode::from(2);
        }
    };
    let nothing_named =
        a.client.is_none() && a.user.is_none() && a.generation.is_none() && a.session.is_none();
    if nothing_named && !a.all && !a.sessions {
        eprintln!(
            "revoke: name what to end (--client, --user, --generation, --session), \
             or pass --all to end every grant of tenant {}",
            tenant.id
        );
        return ExitCode::from(2);
    }
    if let Some(c) = a.client.as_deref().filter(|c| tenant.client(c).is_none()) {
        eprintln!("revoke: tenant {} has no client {c}", tenant.id);
        return ExitCode::from(2);
    }
    // A username of the tenant, else taken as a sub (the user may be gone
    // from the configuration, and their grants with them).
    let user_sub = a.user.as_deref().map(|u| {
        tenant
            .user(u)
            .map(|user| user.sub.clone())
            .unwrap_or_else(|| u.to_string())
    });
    let filter = crate::store::RevokeFilter {
        client_id: a.client.clone(),
        user_sub: user_sub.clone(),
        generation: a.generation.clone(),
        sid: a.session.clone(),
        sessions: a.sessions,
        backchannel_clients: tenant.backchannel_clients(),
    };
    let Some(rt) = local_runtime() else {
        return ExitCode::from(1);
    };
    let now = crate::now();
    // Unrecorded client_credentials JWTs carry no user: a revocation by
    // tenant, client or generation also ends them, through a marker kept
    // until the longest of them would have expired.
    let marker = (user_sub.is_none() && a.session.is_none()).then(|| {
        let longest = tenant
            .clients
            .values()
            .map(|c| c.lifetimes.access_token)
            .chain([tenant.lifetimes.access_token])
            .max()
            .unwrap_or_default();
        crate::store::RevocationMarker {
            client_id: a.client.clone().unwrap_or_default(),
            generation: a.generation.clone().unwrap_or_default(),
            issued_before: now,
            expires_at: now + longest.as_secs() as i64 + 1,
        }
    });
    let result = connect(&config).and_then(|store| {
        rt.block_on(async {
            let revoked = store
                .revoke_matching(&tenant.id, filter, now, a.dry_run)
                .await?;
            if let Some(m) = marker.clone().filter(|_| !a.dry_run) {
                store.add_revocation_marker(&tenant.id, m).await?;
            }
            Ok::<_, crate::store::StoreError>(revoked)
        })
        .map_err(|e| e.to_string())
    });
    let r = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("revoke: {e}");
            return ExitCode::from(1);
        }
    };
    if !a.dry_run {
        tracing::warn!(
            event = "grants.revoked",
            tenant = %tenant.id,
            client_id = a.client.as_deref(),
            sub = user_sub.as_deref(),
            generation = a.generation.as_deref(),
            sid = a.session.as_deref(),
            grants = r.grants,
            codes = r.codes,
            refresh_tokens = r.refresh_tokens,
            access_tokens = r.access_tokens,
            sessions = r.sessions,
            backchannel_logouts = r.logouts,
            unrecorded_jwts = marker.is_some(),
            "grants revoked by an operator"
        );
    }
    println!(
        "{} {} grant(s): {} code(s), {} refresh token(s), {} access token(s); {} session(s)",
        if a.dry_run { "would end" } else { "ended" },
        r.grants,
        r.codes,
        r.refresh_tokens,
        r.access_tokens,
        r.sessions
    );
    if r.logouts > 0 {
        println!(
            "queued {} back-channel logout message(s): the serving nodes deliver them",
            r.logouts
        );
    }
    if marker.is_some() {
        println!(
            "{} every unrecorded client_credentials JWT access token {}issued until now \
             (on every node within {}s)",
            if a.dry_run {
                "would also end"
            } else {
                "also ended"
            },
            match (&a.client, &a.generation) {
                (Some(c), Some(g)) => format!("of client {c} from generation {g} "),
                (Some(c), None) => format!("of client {c} "),
                (None, Some(g)) => format!("from generation {g} "),
                (None, None) => format!("of tenant {} ", tenant.id),
            },
            crate::oauth::MARKERS_FRESH.as_secs()
        );
    }
    ExitCode::SUCCESS
}

fn plan(a: &PlanArgs) -> ExitCode {
    init_logs_at("warn");
    let path = &a.config.config;
    let Some(offline) = load_offline(path) else {
        return ExitCode::from(crate::plan::EXIT_ERROR);
    };
    let Some(rt) = local_runtime() else {
        return ExitCode::from(crate::plan::EXIT_ERROR);
    };
    let default = fixture::default_dir(path);
    let fixtures = if a.fixtures.is_empty() && !default.is_dir() {
        None
    } else {
        match fixture::fixture_files(&a.fixtures, &default) {
            Ok(files) => {
                let results: Vec<FileResult> = files
                    .iter()
                    .map(|f| FileResult {
                        name: f.display().to_string(),
                        cases: fixture::read_file(f).cases.map(|cases| {
                            cases
                                .iter()
                                .map(|c| rt.block_on(fixture::run_case(&offline, c)))
                                .collect()
                        }),
                    })
                    .collect();
                let totals = Totals::of(&results);
                Some((
                    totals.cases,
                    totals.failed + totals.errors,
                    fixture::text(&results),
                ))
            }
            Err(e) => {
                eprintln!("plan: {e}");
                return ExitCode::from(crate::plan::EXIT_ERROR);
            }
        }
    };
    let opts = crate::plan::PlanOptions {
        against: a.against.clone(),
        fixtures,
    };
    let config = &offline.config;
    let planned = connect(config)
        .and_then(|store| rt.block_on(crate::plan::plan(config, &store, &opts, crate::now())));
    match planned {
        Ok(p) => {
            print!("{}", p.text);
            ExitCode::from(p.exit)
        }
        Err(e) => {
            eprintln!("plan: {e}");
            ExitCode::from(crate::plan::EXIT_ERROR)
        }
    }
}

fn keys(command: &KeysCommand) -> ExitCode {
    let (KeysCommand::List { config: path, .. } | KeysCommand::Retire { config: path, .. }) =
        command;
    let Some(config) = load_or_report(&path.config) else {
        return ExitCode::from(1);
    };
    init_logs(config.server.log_format);
    let Some(rt) = local_runtime() else {
        return ExitCode::from(1);
    };
    let store =
        match connect(&config).and_then(|s| s.migrate().map(|_| s).map_err(|e| e.to_string())) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("keys: {e}");
                return ExitCode::from(1);
            }
        };
    let now = crate::now();
    let done = match command {
        KeysCommand::List { tenant, .. } => rt
            .block_on(crate::key_admin::list(
                &config,
                &store,
                tenant.as_deref(),
                now,
            ))
            .map(|text| print!("{text}")),
        KeysCommand::Retire { tenant, kid, .. } => rt
            .block_on(crate::key_admin::retire(
                &config,
                &store,
                tenant.as_deref(),
                kid,
                now,
            ))
            .map(|outcome| println!("{}", crate::key_admin::describe(&outcome))),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keys: {e}");
            ExitCode::from(1)
        }
    }
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
    // The server's own pool: `database.pool_size` connections, kept open.
    let store = Store::connect(
        &config.database.url,
        config.database.pool_size,
        config.database.connect_timeout,
        &config.base_dir,
    )
    .map_err(|e| e.to_string())?;
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
    let metrics = crate::metrics::Metrics::new(store.wait_histogram(), store.batch_histogram());
    let services = crate::oauth::Services::with(&csrf_secret, metrics);
    let app = App::new(runtime, store.clone(), services);
    app.services.metrics.serving(&app.runtime.load().generation);
    // What this node serves, for `sesame plan` run from anywhere.
    let recorder =
        Arc::new(crate::plan::NodeRecorder::new(store.clone(), crate::plan::node_id(addr)).await?);
    let _first = recorder.serving(&app.runtime.load()).await;
    tokio::spawn(recorder.clone().heartbeat());
    let reloader = Arc::new(Reloader {
        app: app.clone(),
        path,
        one_at_a_time: tokio::sync::Mutex::new(()),
        recorder,
    });
    // Listening for SIGHUP before the announcement: from then on it reloads.
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(hup) => {
            tokio::spawn(reload_on_sighup(reloader.clone(), hup));
        }
        Err(e) => tracing::warn!(error = %e, "SIGHUP reload unavailable"),
    }
    if app.runtime.load().config.server.watch_config {
        // What is on disk now, before the server says it is ready: an edit
        // made from then on is seen.
        let (path, config) = (reloader.path.clone(), app.runtime.load_full());
        let seen = tokio::task::spawn_blocking(move || files_fingerprint(&path, &config.config))
            .await
            .unwrap_or_default();
        tokio::spawn(watch_config(reloader, seen));
    }
    tokio::spawn(purge_periodically(store));
    tokio::spawn(crate::keyring::keep_rings(app.clone()));
    tokio::spawn(crate::backchannel::deliver_logouts(app.clone()));
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
async fn reload_on_sighup(reloader: Arc<Reloader>, mut hup: tokio::signal::unix::Signal) {
    while hup.recv().await.is_some() {
        reloader.reload("SIGHUP").await;
    }
}

/// Reloads, one at a time (SIGHUP and the file watch may both ask).
struct Reloader {
    app: Arc<App>,
    path: PathBuf,
    one_at_a_time: tokio::sync::Mutex<()>,
    recorder: Arc<crate::plan::NodeRecorder>,
}

impl Reloader {
    /// Reload the file, log the outcome and count it.
    async fn reload(&self, why: &str) {
        let _one = self.one_at_a_time.lock().await;
        let (app, path) = (&self.app, &self.path);
        tracing::info!(config = %path.display(), "{why}: reloading configuration");
        let serving = app.runtime.load().generation.clone();
        match reload(app, path).await {
            Ok(()) => {
                let now = app.runtime.load();
                let summary = self.recorder.serving(&now).await;
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

/// How often the watch looks at the files; an edit is applied once two looks
/// in a row see the same content (editors write in several steps).
const WATCH_EVERY: Duration = Duration::from_millis(400);

/// `server.watch_config`: reload when what the configuration reads from
/// disk changes. Only the files it names are read (the config, its scripts,
/// its page files), so editors' swap and backup files never trigger it.
async fn watch_config(reloader: Arc<Reloader>, mut seen: [u8; 32]) {
    let files = |r: &Reloader| {
        let config = r.app.runtime.load_full();
        let path = r.path.clone();
        async move {
            tokio::task::spawn_blocking(move || files_fingerprint(&path, &config.config))
                .await
                .unwrap_or_default()
        }
    };
    let mut settling: Option<[u8; 32]> = None;
    let mut tick = tokio::time::interval(WATCH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = files(&reloader).await;
        if now == seen {
            settling = None;
        } else if settling != Some(now) {
            settling = Some(now);
        } else {
            settling = None;
            reloader.reload("the configuration changed on disk").await;
            // What a rejected edit left on disk is not tried again until it changes.
            seen = now;
        }
    }
}

/// A digest of the config file and every file it names: scripts, template
/// directories, branding files. A missing file counts as its absence.
fn files_fingerprint(path: &Path, config: &Config) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut add = |p: &Path| {
        h.update(p.as_os_str().as_encoded_bytes());
        h.update([0]);
        if let Ok(bytes) = std::fs::read(p) {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(&bytes);
        }
    };
    add(path);
    let resolve = |p: &Path| config.base_dir.join(p);
    for t in &config.tenants {
        let scripts = t
            .plugins
            .iter()
            .chain(t.clients.iter().flat_map(|c| c.plugins.iter()));
        for p in scripts {
            add(&config.plugin_path(p));
        }
        if let Some(dir) = &t.templates_dir {
            let dir = resolve(dir);
            let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            names.retain(|p| p.extension().is_some_and(|x| x == "html"));
            names.sort();
            for p in names {
                add(&p);
            }
        }
        let b = &t.branding;
        if let Some(css) = &b.css {
            add(&resolve(css));
        }
        for file in [&b.logo, &b.favicon].into_iter().flatten() {
            if !file.contains("://") {
                add(&resolve(Path::new(file)));
            }
        }
    }
    h.finalize().into()
}

/// Build a new generation from the file and swap it in whole, only if it is
/// valid and changes nothing that only takes effect at start.
async fn reload(app: &App, path: &Path) -> Result<(), Vec<String>> {
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
    app.runtime.store(Arc::new(runtime));
    Ok(())
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
        if let Err(e) = store.purge_nodes(crate::now()).await {
            tracing::warn!(error = %e, "purge of old node records failed");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command, KeysCommand};

    /// Thumbprints and session ids are base64url: a third of them start
    /// with `-`, which must not be read as an option.
    #[test]
    fn ids_that_start_with_a_hyphen_are_values() {
        let cli = Cli::try_parse_from([
            "sesame", "keys", "retire", "-c", "s.yaml", "--kid", "-nB2x_Q",
        ])
        .unwrap();
        let Command::Keys(keys) = cli.command else {
            panic!("not keys");
        };
        let KeysCommand::Retire { kid, .. } = keys.command else {
            panic!("not retire");
        };
        assert_eq!(kid, "-nB2x_Q");
        let cli =
            Cli::try_parse_from(["sesame", "revoke", "-c", "s.yaml", "--session", "-sid"]).unwrap();
        let Command::Revoke(revoke) = cli.command else {
            panic!("not revoke");
        };
        assert_eq!(revoke.session.as_deref(), Some("-sid"));
    }
}
