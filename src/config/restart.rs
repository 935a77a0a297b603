//! Settings a SIGHUP reload cannot apply to a running server.

use super::Config;

/// The YAML paths of the settings that differ between `old` and `new` and
/// only take effect at start, in document order; empty when `new` can be
/// reloaded in place.
///
/// - `server.listen`, `server.admin_listen`: the sockets are bound once.
/// - `server.log_format`: the log writer is set up once.
/// - `server.watch_config`: the watch is started (or not) once.
/// - `database.url`, `database.pool_size`, `database.connect_timeout`: the
///   connection pool is built once (and `pool_size` also sizes the blocking
///   thread pool). A URL is compared as written.
///
/// Everything else is part of a config generation and reloads:
/// `server.trusted_proxies`, `plugins_dir` (scripts are compiled per
/// generation), `key_encryption` (generated keys are opened, or sealed,
/// with it as the generation is built) and all of `tenants`.
pub fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let (os, ns) = (&old.server, &new.server);
    let (od, nd) = (&old.database, &new.database);
    [
        ("server.listen", os.listen != ns.listen),
        ("server.admin_listen", os.admin_listen != ns.admin_listen),
        ("server.log_format", os.log_format != ns.log_format),
        ("server.watch_config", os.watch_config != ns.watch_config),
        ("database.url", od.url != nd.url),
        ("database.pool_size", od.pool_size != nd.pool_size),
        (
            "database.connect_timeout",
            od.connect_timeout != nd.connect_timeout,
        ),
    ]
    .into_iter()
    .filter_map(|(path, changed)| changed.then_some(path))
    .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::load_str;

    fn config(yaml: &str) -> Config {
        load_str(yaml, Path::new("/x"), &|_| None).unwrap()
    }

    const BASE: &str = "server: { listen: '127.0.0.1:8080' }
database: { url: 'sqlite://data/a.db', pool_size: 4, connect_timeout: 5s }
";

    #[test]
    fn the_same_settings_need_no_restart() {
        assert!(restart_only_changes(&config(BASE), &config(BASE)).is_empty());
        // Defaults equal the same values written out.
        let written = "server: { listen: '127.0.0.1:8080' }
database: { url: 'sqlite://data/sesame.db', pool_size: 16, connect_timeout: 5s }
";
        assert!(restart_only_changes(&config(""), &config(written)).is_empty());
    }

    #[test]
    fn each_start_only_setting_is_named() {
        for (from, to, path) in [
            ("127.0.0.1:8080", "127.0.0.1:8081", "server.listen"),
            ("sqlite://data/a.db", "sqlite://data/b.db", "database.url"),
            ("pool_size: 4", "pool_size: 8", "database.pool_size"),
            (
                "connect_timeout: 5s",
                "connect_timeout: 2s",
                "database.connect_timeout",
            ),
        ] {
            let new = BASE.replace(from, to);
            assert_eq!(
                restart_only_changes(&config(BASE), &config(&new)),
                [path],
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn several_changes_come_in_document_order() {
        let new = "server: { listen: '0.0.0.0:9000' }
database: { url: 'mysql://u@h/db', pool_size: 4, connect_timeout: 1s }
";
        assert_eq!(
            restart_only_changes(&config(BASE), &config(new)),
            ["server.listen", "database.url", "database.connect_timeout"]
        );
    }

    #[test]
    fn proxies_plugins_and_tenants_reload() {
        let new = "server: { listen: '127.0.0.1:8080', trusted_proxies: [10.0.0.0/8] }
database: { url: 'sqlite://data/a.db', pool_size: 4, connect_timeout: 5s }
plugins_dir: scripts
tenants:
  - id: demo
    issuer: https://id.example.com
";
        assert!(restart_only_changes(&config(BASE), &config(new)).is_empty());
    }
}
