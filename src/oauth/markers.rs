//! Revocation markers, per node: `sesame revoke` can't list the
//! `client_credentials` JWT access tokens it ends (they are not recorded
//! when issued), so it stores a marker — "every such token of this tenant
//! (client, generation) issued until now" — and each node reads the
//! tenant's markers again when its copy is older than [`MARKERS_FRESH`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Ctx;
use crate::store::{AccessTokenRow, RevocationMarker, StoreError};

/// How stale a node's copy of a tenant's markers may be: a revocation of
/// unrecorded tokens reaches every node within this.
pub const MARKERS_FRESH: Duration = Duration::from_secs(1);

type Markers = Arc<Vec<RevocationMarker>>;

/// Each tenant's markers, as last read, and when.
#[derive(Default)]
pub struct MarkerCache(Mutex<HashMap<String, (Instant, Markers)>>);

impl MarkerCache {
    /// Whether a marker revokes the unrecorded token `row`.
    pub async fn revokes(&self, ctx: &Ctx<'_>, row: &AccessTokenRow) -> Result<bool, StoreError> {
        let markers = self.markers(ctx).await?;
        Ok(markers
            .iter()
            .any(|m| m.covers(&row.client_id, &row.generation, row.created_at)))
    }

    async fn markers(&self, ctx: &Ctx<'_>) -> Result<Markers, StoreError> {
        let tenant = &ctx.tenant.id;
        if let Some((read, markers)) = self.lock().get(tenant) {
            if read.elapsed() < MARKERS_FRESH {
                return Ok(markers.clone());
            }
        }
        let read = Instant::now();
        let markers = Arc::new(ctx.store.revocation_markers(tenant, ctx.now).await?);
        self.lock().insert(tenant.clone(), (read, markers.clone()));
        Ok(markers)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Markers)>> {
        // A plain map of copies: a panic while it was held leaves nothing half-done.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
