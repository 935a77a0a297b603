//! A serving node's side of `sesame plan`: it records the generation it
//! serves (at start and after every reload) and says now and then that it
//! is still up, so a plan run from anywhere sees who serves what.

use std::time::Duration;

use super::{digester, record, served_keys, summary, Digester, Record};
use crate::runtime::Runtime;
use crate::store::Store;

/// How often a node says it is still up.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// This node's name in the `nodes` table: the host's name and the address
/// the server listens on (so a restarted node keeps its row).
pub fn node_id(listen: std::net::SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("{host}/{listen}")
}

pub struct NodeRecorder {
    store: Store,
    node_id: String,
    started_at: i64,
    digester: Digester,
    /// The record of the generation served last, to say what a reload changed.
    last: std::sync::Mutex<Option<Record>>,
}

impl NodeRecorder {
    pub async fn new(store: Store, node_id: String) -> Result<NodeRecorder, String> {
        let digester = digester(&store)
            .await
            .map_err(|e| format!("cannot read the record secret: {e}"))?;
        Ok(NodeRecorder {
            store,
            node_id,
            started_at: crate::now(),
            digester,
            last: Default::default(),
        })
    }

    /// Record that this node now serves `runtime`; what it changes from the
    /// generation served before, on one line (the reload log's summary). A
    /// failure to store is logged: the node serves on, and the plan shows
    /// it as it last recorded itself.
    pub async fn serving(&self, runtime: &Runtime) -> String {
        let record = record(
            &runtime.config,
            &runtime.generation,
            &served_keys(runtime),
            &self.digester,
        );
        let text = serde_json::to_string(&record).unwrap_or_default();
        let changed = {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            let changed = last.as_ref().map_or_else(
                || "first generation".to_string(),
                |old| summary(old, &record),
            );
            *last = Some(record);
            changed
        };
        if let Err(e) = self
            .store
            .record_serving(
                &self.node_id,
                &runtime.generation,
                text,
                self.started_at,
                crate::now(),
            )
            .await
        {
            tracing::warn!(error = %e, node = %self.node_id, "could not record the served configuration");
        }
        changed
    }

    /// Say now and then that this node is up, until the process ends.
    pub async fn heartbeat(self: std::sync::Arc<Self>) {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = self.store.node_seen(&self.node_id, crate::now()).await {
                tracing::debug!(error = %e, "heartbeat not recorded");
            }
        }
    }
}
