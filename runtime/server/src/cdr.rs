//! Call detail records: one JSON line per call leg, in the shape of the contract's SMA usage
//! records (§5.5), plus why a call failed (every target's failure, in order) so a failed call
//! can be explained from its record alone.

use serde::Serialize;
use sma_actions::{CallDetails, Participant};
use sma_handler::Attempt;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// One leg's record.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallRecord {
    pub schema_version: &'static str,
    pub aws_account_id: String,
    pub transaction_id: String,
    pub call_id: String,
    pub voice_connector_id: Option<String>,
    /// `Completed` or `Failed`.
    pub status: &'static str,
    pub billable_duration_seconds: u64,
    pub source_phone_number: String,
    pub destination_phone_number: String,
    pub direction: &'static str,
    pub time_stamp_epoch_seconds: u64,
    pub region: String,
    pub sip_rule_id: String,
    pub sip_application_id: String,
    pub call_leg_trigger_type: &'static str,
    /// The SIP status that ended the leg (0 normal clearing).
    pub sip_response_code: u16,
    /// Handler invocations made.
    pub invocations: u64,
    /// Why targets could not be used: `name: error [kind]`, in order.
    pub failures: Vec<String>,
    pub mos: Option<f64>,
    /// Where an outbound leg went (the route or carrier it was placed on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The meeting the leg joined (`JoinChimeMeeting`), and as which attendee.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meeting_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attendee_id: Option<String>,
    #[serde(skip)]
    answered_at: Option<std::time::Instant>,
    #[serde(skip)]
    ended_at: Option<std::time::Instant>,
}

impl CallRecord {
    pub fn inbound(details: &CallDetails, rule_id: &str) -> CallRecord {
        let leg = details.participants.first();
        CallRecord {
            schema_version: "2.0",
            aws_account_id: details.aws_account_id.clone(),
            transaction_id: details.transaction_id.clone(),
            call_id: leg.map(|p| p.call_id.clone()).unwrap_or_default(),
            voice_connector_id: None,
            status: "Failed",
            billable_duration_seconds: 0,
            source_phone_number: leg.map(|p| p.from.clone()).unwrap_or_default(),
            destination_phone_number: leg.map(|p| p.to.clone()).unwrap_or_default(),
            direction: "Inbound",
            time_stamp_epoch_seconds: sma_media::storage::now_ms() / 1000,
            region: details.aws_region.clone(),
            sip_rule_id: rule_id.to_owned(),
            sip_application_id: details.sip_media_application_id.clone(),
            call_leg_trigger_type: "ToPhoneNumber",
            sip_response_code: 0,
            invocations: 0,
            failures: Vec::new(),
            mos: None,
            route: None,
            meeting_id: None,
            attendee_id: None,
            answered_at: None,
            ended_at: None,
        }
    }

    /// The record of an outbound leg (`CallAndBridge`'s LEG-B, or an API-created call),
    /// placed on `route`.
    pub fn outbound(details: &CallDetails, leg: &Participant, route: &str) -> CallRecord {
        let mut record = CallRecord::inbound(details, details.sip_rule_id.as_deref().unwrap_or(""));
        record.call_id = leg.call_id.clone();
        record.source_phone_number = leg.from.clone();
        record.destination_phone_number = leg.to.clone();
        record.direction = "Outbound";
        record.route = (!route.is_empty()).then(|| route.to_owned());
        record
    }

    pub fn application(&mut self, id: &str, region: &str) {
        self.sip_application_id = id.to_owned();
        self.region = region.to_owned();
    }

    pub fn failed_target(&mut self, attempt: &Attempt) {
        self.failures.push(format!(
            "{} ({}): {} [{}]",
            attempt.application_id,
            attempt.name,
            attempt.error,
            attempt.error.kind()
        ));
    }

    /// The leg joined `meeting` as `attendee`.
    pub fn meeting(&mut self, meeting: &str, attendee: &str) {
        self.meeting_id = Some(meeting.to_owned());
        self.attendee_id = Some(attendee.to_owned());
    }

    pub fn invocation_failure(&mut self, why: &str) {
        self.failures.push(why.to_owned());
    }

    /// The call never began: our 200 OK was not acknowledged. Nothing is billed.
    pub fn unconfirmed(&mut self, why: &str) {
        self.answered_at = None;
        self.failures.push(why.to_owned());
    }

    pub fn answered(&mut self) {
        self.answered_at = Some(std::time::Instant::now());
    }

    pub fn end(&mut self, status: u16, answered: bool) {
        self.sip_response_code = status;
        self.ended_at = Some(std::time::Instant::now());
        if answered {
            self.status = "Completed";
        }
    }

    pub fn quality(&mut self, mos: f64) {
        self.mos = Some((mos * 100.0).round() / 100.0);
    }

    pub fn finish(&mut self, details: &CallDetails) {
        if let (Some(a), Some(e)) = (self.answered_at, self.ended_at) {
            self.billable_duration_seconds =
                e.saturating_duration_since(a).as_secs_f64().ceil() as u64;
        }
        self.sip_application_id = details.sip_media_application_id.clone();
        self.region = details.aws_region.clone();
    }

    pub fn trigger(&mut self, hostname: bool, voice_connector: Option<String>) {
        if hostname {
            self.call_leg_trigger_type = "RequestUriHostname";
        }
        self.voice_connector_id = voice_connector;
    }

    pub fn invocations(&mut self, n: u64) {
        self.invocations = n;
    }
}

/// Appends records to a JSON-lines file (and logs each).
pub struct CdrWriter {
    file: Option<Mutex<std::fs::File>>,
}

impl CdrWriter {
    pub fn open(path: Option<PathBuf>) -> std::io::Result<CdrWriter> {
        let file = match &path {
            Some(p) => {
                if let Some(dir) = p.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                Some(Mutex::new(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(p)?,
                ))
            }
            None => None,
        };
        Ok(CdrWriter { file })
    }

    pub fn write(&self, record: &CallRecord) {
        let Ok(line) = serde_json::to_string(record) else {
            return;
        };
        tracing::info!(target: "sma::cdr", cdr = %line, "call record");
        if let Some(file) = &self.file {
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = writeln!(f, "{line}") {
                tracing::warn!(%e, "cannot write the call record");
            }
        }
    }
}
