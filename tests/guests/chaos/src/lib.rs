//! A handler that misbehaves on request, for the runtime's failure-handling tests.
//!
//! The behaviour is chosen by the event's `TransactionAttributes.mode`, or on a call's first
//! event by the caller's `X-Chaos-Mode` SIP header:
//! `trap` (panic), `loop` (never returns), `oom` (allocates without bound), `garbage` (returns
//! text that is not JSON), `blank`, `err` (returns `err`), `invalid` (an unknown action),
//! `counter` (reports how often this instance was invoked), otherwise a valid `Hangup`.

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
            "counter" => Ok(format!(
                r#"{{"SchemaVersion":"1.0","Actions":[],"TransactionAttributes":{{"invocations":"{seen}"}}}}"#
            )),
            _ => Ok(r#"{"SchemaVersion":"1.0","Actions":[{"Type":"Hangup","Parameters":{"SipResponseCode":"486"}}]}"#.into()),
        }
    }
}

sma_guest::bindings::export!(Chaos with_types_in sma_guest::bindings);
