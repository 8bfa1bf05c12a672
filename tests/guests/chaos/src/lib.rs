//! A handler that misbehaves on request, for the runtime's failure-handling tests.
//!
//! The behaviour is chosen by the event's `TransactionAttributes.mode`, or on a call's first
//! event by the caller's `X-Chaos-Mode` SIP header:
//! `trap` (panic), `loop` (never returns), `oom` (allocates without bound), `garbage` (returns
//! text that is not JSON), `blank`, `err` (returns `err`), `invalid` (an unknown action),
//! `counter` (reports how often this instance was invoked), `bridge` (a `CallAndBridge` to
//! +14255550199 at once, and when either party leaves the other is hung up: the bridge
//! set-up benchmark's handler), otherwise a valid `Hangup`.

use std::sync::atomic::{AtomicU32, Ordering};

static INVOCATIONS: AtomicU32 = AtomicU32::new(0);

#[doc(hidden)]
pub struct Chaos;

impl sma_guest::bindings::Guest for Chaos {
    fn handle_event(event: String) -> Result<String, String> {
        let seen = INVOCATIONS.fetch_add(1, Ordering::SeqCst) + 1;
        let parsed: sma_guest::InvocationEvent =
            sma_guest::__serde_json::from_str(&event).map_err(|e| e.to_string())?;
        let header = parsed
            .call_details
            .participants
            .first()
            .and_then(|p| p.sip_headers.as_ref())
            .and_then(|h| {
                h.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("X-Chaos-Mode"))
            })
            .map(|(_, v)| v.as_str());
        let mode = parsed
            .attribute("mode")
            .or(header)
            .unwrap_or("ok")
            .to_owned();
        match mode.as_str() {
            "trap" => panic!("chaos guest asked to trap"),
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "garbage" => Ok("this is not json".into()),
            "blank" => Ok("  ".into()),
            "err" => Err("chaos guest refused".into()),
            "invalid" => Ok(r#"{"SchemaVersion":"1.0","Actions":[{"Type":"Answer","Parameters":{}}]}"#.into()),
            "bridge" => {
                let leg_a = parsed.call_details.participants.first();
                let caller = leg_a.map_or("+15555550123", |p| p.from.as_str());
                let left = parsed
                    .action_data
                    .as_ref()
                    .and_then(|d| d.parameter_str("ParticipantTag"));
                let actions = match (parsed.invocation_event_type, left) {
                    (sma_guest::EventType::NewInboundCall, _) => format!(
                        r#"[{{"Type":"CallAndBridge","Parameters":{{"CallTimeoutSeconds":10,"CallerIdNumber":"{caller}","Endpoints":[{{"BridgeEndpointType":"PSTN","Uri":"+14255550199"}}]}}}}]"#
                    ),
                    (sma_guest::EventType::Hangup, Some("LEG-A")) => {
                        r#"[{"Type":"Hangup","Parameters":{"ParticipantTag":"LEG-B"}}]"#.into()
                    }
                    (sma_guest::EventType::Hangup, Some("LEG-B")) => {
                        r#"[{"Type":"Hangup","Parameters":{"ParticipantTag":"LEG-A"}}]"#.into()
                    }
                    (sma_guest::EventType::ActionFailed, _) => {
                        r#"[{"Type":"Hangup","Parameters":{}}]"#.into()
                    }
                    _ => "[]".into(),
                };
                Ok(format!(
                    r#"{{"SchemaVersion":"1.0","Actions":{actions},"TransactionAttributes":{{"mode":"bridge"}}}}"#
                ))
            }
            "counter" => Ok(format!(
                r#"{{"SchemaVersion":"1.0","Actions":[],"TransactionAttributes":{{"invocations":"{seen}"}}}}"#
            )),
            _ => Ok(r#"{"SchemaVersion":"1.0","Actions":[{"Type":"Hangup","Parameters":{"SipResponseCode":"486"}}]}"#.into()),
        }
    }
}

sma_guest::bindings::export!(Chaos with_types_in sma_guest::bindings);
