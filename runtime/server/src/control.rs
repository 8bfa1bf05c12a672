//! The runtime side of the management API: rebuilding the routing table when the store
//! changes, checking that an application endpoint can be hosted, reaching calls in progress
//! and reporting what voice connectors' PBXs were last seen doing.

use crate::call::actor::CallRegistry;
use crate::routing_table::{self, HandlerFactory, RoutingTable};
use serde_json::{Map, Value};
use sma_api::voice::{CallUpdateError, Runtime};
use sma_store::records::HandlerSettings;
use sma_store::Store;
use std::sync::{Arc, Mutex};
use tracing::{error, info, warn};

pub struct Control {
    pub store: Arc<dyn Store>,
    pub factory: Arc<HandlerFactory>,
    pub table: Arc<RoutingTable>,
    pub calls: Arc<CallRegistry>,
    /// Rebuilds run one at a time, each from the store as it is when it starts, so the
    /// last one to finish reflects every committed change.
    rebuilding: Mutex<()>,
}

impl Control {
    pub fn new(
        store: Arc<dyn Store>,
        factory: Arc<HandlerFactory>,
        table: Arc<RoutingTable>,
        calls: Arc<CallRegistry>,
    ) -> Control {
        Control {
            store,
            factory,
            table,
            calls,
            rebuilding: Mutex::new(()),
        }
    }

    /// Rebuilds the routing snapshot from the store and swaps it in.
    pub fn rebuild(&self) -> Result<Vec<routing_table::Unhostable>, sma_store::StoreError> {
        let _one_at_a_time = self.rebuilding.lock().unwrap_or_else(|p| p.into_inner());
        let (snapshot, unhostable) = routing_table::build(self.store.as_ref(), &self.factory)?;
        for u in &unhostable {
            warn!(application = %u.id, name = %u.name, why = %u.why, "application cannot be hosted; it does not route");
        }
        info!(
            numbers = snapshot.numbers.len(),
            applications = snapshot.applications.len(),
            rules = snapshot.rules.len(),
            voice_connectors = snapshot.voice_connectors.len(),
            "routing table built from the store"
        );
        self.table.replace(snapshot);
        Ok(unhostable)
    }
}

impl Runtime for Control {
    fn store_changed(&self) {
        if let Err(e) = self.rebuild() {
            error!(error = %e, "routing table not rebuilt after a store change");
        }
    }

    fn check_endpoint(&self, endpoint: &str) -> Result<(), String> {
        self.factory
            .handler(endpoint, &HandlerSettings::default())
            .map(|_| ())
    }

    fn update_call(
        &self,
        sip_media_application_id: &str,
        transaction_id: &str,
        arguments: Map<String, Value>,
    ) -> Result<(), CallUpdateError> {
        self.calls
            .update(sip_media_application_id, transaction_id, arguments)
    }

    fn termination_health(&self, voice_connector_id: &str) -> Option<(u64, String)> {
        self.table.termination_health(voice_connector_id)
    }
}
