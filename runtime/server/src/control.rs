//! The runtime side of the management API: rebuilding the routing table when the store
//! changes, checking that an application endpoint can be hosted, reaching calls in progress
//! and reporting what voice connectors' PBXs were last seen doing.

use crate::call::actor::{self, CallContext, CallRegistry, OutboundSetup, SipCommand};
use crate::routing::RateLimiter;
use crate::routing_table::{self, HandlerFactory, RoutingTable};
use serde_json::{Map, Value};
use sma_actions::{CallDetails, Direction, Participant, ParticipantTag};
use sma_api::voice::{CallUpdateError, CreateCallError, OutboundCall, Runtime};
use sma_handler::{CoolDownPolicy, FailoverChain, Target};
use sma_store::records::HandlerSettings;
use sma_store::Store;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// What placing calls for the API needs, set once the node's call machinery runs.
pub struct Launcher {
    pub ctx: Arc<CallContext>,
    pub commands: mpsc::UnboundedSender<SipCommand>,
    pub runtime: tokio::runtime::Handle,
    /// `CreateSipMediaApplicationCall` requests per second (0: no limit).
    pub rate: u32,
    pub account_id: String,
}

pub struct Control {
    pub store: Arc<dyn Store>,
    pub factory: Arc<HandlerFactory>,
    pub table: Arc<RoutingTable>,
    pub calls: Arc<CallRegistry>,
    /// Rebuilds run one at a time, each from the store as it is when it starts, so the
    /// last one to finish reflects every committed change.
    rebuilding: Mutex<()>,
    launcher: OnceLock<Launcher>,
    call_rate: Mutex<RateLimiter>,
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
            launcher: OnceLock::new(),
            call_rate: Mutex::new(RateLimiter::default()),
        }
    }

    /// Lets the API place calls (`CreateSipMediaApplicationCall`).
    pub fn set_launcher(&self, launcher: Launcher) {
        let _ = self.launcher.set(launcher);
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

    fn create_call(&self, call: OutboundCall) -> Result<String, CreateCallError> {
        let Some(launcher) = self.launcher.get() else {
            return Err(CreateCallError::Unavailable(
                "the node is not taking calls yet".into(),
            ));
        };
        let admitted = self
            .call_rate
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(launcher.rate, Instant::now());
        if !admitted {
            return Err(CreateCallError::Throttled(format!(
                "more than {} CreateSipMediaApplicationCall request(s) per second ([calls] outbound_calls_per_second)",
                launcher.rate
            )));
        }
        let snapshot = self.table.snapshot();
        let Some(app) = snapshot.applications.get(&call.sip_media_application_id) else {
            return Err(CreateCallError::Unavailable(format!(
                "SIP media application {} cannot be hosted here now (see the node's log)",
                call.sip_media_application_id
            )));
        };
        let chain = Arc::new(FailoverChain::new(
            vec![Target {
                name: app.endpoint.clone(),
                application_id: app.id.clone(),
                region: app.region.clone(),
                priority: 1,
                endpoint: app.handler.clone(),
            }],
            CoolDownPolicy::default(),
        ));
        let transaction_id = uuid::Uuid::new_v4().to_string();
        let details = CallDetails {
            transaction_id: transaction_id.clone(),
            transaction_attributes: None,
            aws_account_id: launcher.account_id.clone(),
            aws_region: app.region.clone(),
            sip_rule_id: None,
            sip_media_application_id: app.id.clone(),
            participants: vec![Participant {
                call_id: uuid::Uuid::new_v4().to_string(),
                participant_tag: ParticipantTag::LegA,
                to: call.to.clone(),
                from: call.from.clone(),
                direction: Direction::Outbound,
                start_time_in_milliseconds: sma_media::storage::now_ms().to_string(),
                status: None,
                sip_headers: None,
            }],
        };
        let mut headers = sma_sip::message::Headers::new();
        for (name, value) in &call.sip_headers {
            headers.push(name, value);
        }
        info!(%transaction_id, application = %app.id, to = %call.to, "placing a call for the API");
        actor::spawn_outbound(
            &launcher.runtime,
            launcher.ctx.clone(),
            OutboundSetup {
                details,
                chain,
                message_logs: if app.message_logs {
                    vec![app.id.clone()]
                } else {
                    Vec::new()
                },
                arguments: call.arguments,
                from: call.from,
                to: call.to,
                headers,
                commands: launcher.commands.clone(),
            },
        );
        Ok(transaction_id)
    }

    fn termination_health(&self, voice_connector_id: &str) -> Option<(u64, String)> {
        self.table.termination_health(voice_connector_id)
    }

    /// The meeting lifecycle, in the log; the calls in the meeting follow the change.
    fn apply(&self, effect: sma_api::voice::Effect) {
        use sma_api::voice::Effect;
        self.calls.meeting_changed(&effect);
        match effect {
            Effect::MeetingEnded { meeting_id } => info!(meeting = %meeting_id, "meeting ended"),
            Effect::AttendeeDeleted {
                meeting_id,
                attendee_id,
            } => info!(meeting = %meeting_id, attendee = %attendee_id, "attendee deleted"),
            Effect::CapabilitiesChanged {
                meeting_id,
                attendee_id,
                capabilities,
            } => {
                info!(meeting = %meeting_id, attendee = %attendee_id, audio = %capabilities.audio, "attendee capabilities changed")
            }
        }
    }
}
