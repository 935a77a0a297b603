//! The application value: what lives as long as the process (the store, the
//! metrics, the core's services) and the configuration generation being
//! served, swapped whole on reload.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::oauth::Services;
use crate::runtime::Runtime;
use crate::store::Store;

/// Shared state of a running server.
pub struct App {
    /// The generation being served: everything derived from one config.
    pub runtime: ArcSwap<Runtime>,
    pub store: Store,
    /// Thread pools, caches and metrics of the core, kept across reloads.
    pub services: Services,
}

impl App {
    pub fn new(runtime: Runtime, store: Store, services: Services) -> Arc<App> {
        Arc::new(App {
            runtime: ArcSwap::from_pointee(runtime),
            store,
            services,
        })
    }
}
