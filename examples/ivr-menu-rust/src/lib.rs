//! A spoken IVR menu: greets the caller (which answers the call), collects one digit,
//! announces the department chosen, and hangs up. Invalid input is re-prompted up to three
//! times; after that the caller is told so and released.
//!
//! The menu's position travels in `TransactionAttributes`: every invocation runs in a fresh
//! instance, so nothing else survives between events.
//!
//! On wasm the crate is `no_std` (it needs nothing from `std` beyond `alloc`), so the
//! component imports no WASI at all and instantiates in about 3 µs less; its native unit
//! tests keep `std`.

#![cfg_attr(target_arch = "wasm32", no_std)]

use sma_guest::actions::{self, CollectDigits};
use sma_guest::prelude::*;
use sma_guest::{log, EventType, Handler, InvocationEvent, Response};

/// The menu: digit, department, what the caller hears.
const DEPARTMENTS: [(&str, &str, &str); 2] = [
    ("1", "sales", "Connecting you to sales. Goodbye."),
    ("2", "support", "Connecting you to support. Goodbye."),
];

const MENU: &str = "Welcome to Example Corp. For sales, press 1. For support, press 2.";
const RETRY: &str = "Sorry, that is not a valid choice.";
const GIVE_UP: &str = "We did not receive a valid choice. Goodbye.";

struct IvrMenu;

impl Handler for IvrMenu {
    fn handle(event: InvocationEvent) -> Result<Response, String> {
        let call_id = event
            .invoking_participant()
            .map(|p| p.call_id.clone())
            .ok_or("event has no participants")?;
        let response = Response::new();
        Ok(match event.invocation_event_type {
            EventType::NewInboundCall => {
                log::info(&format!(
                    "new call from {}",
                    event.call_details.participants[0].from
                ));
                response
                    .action(
                        actions::speak_and_get_digits(&call_id, MENU, RETRY, (1, 1), 5000)
                            .attempts(3)
                            .regex("^[12]$")
                            .into(),
                    )
                    .attribute("menu", "main")
            }
            EventType::ActionSuccessful if event.action_type() == Some("SpeakAndGetDigits") => {
                let digits = event.received_digits().unwrap_or_default();
                match DEPARTMENTS.iter().find(|(d, _, _)| *d == digits) {
                    Some((_, department, announcement)) => response
                        .action(actions::speak(&call_id, announcement).into())
                        .action(actions::hangup(&call_id).into())
                        .attribute("menu", "done")
                        .attribute("department", *department),
                    None => goodbye(response, &call_id, GIVE_UP),
                }
            }
            EventType::ActionFailed if event.action_type() == Some("SpeakAndGetDigits") => {
                goodbye(response, &call_id, GIVE_UP)
            }
            EventType::ActionFailed | EventType::InvalidLambdaResponse => {
                log::warn("giving up on the call after a failure");
                response.action(actions::hangup(&call_id).into())
            }
            _ => response,
        })
    }
}

fn goodbye(response: Response, call_id: &str, text: &str) -> Response {
    response
        .action(actions::speak(call_id, text).into())
        .action(actions::hangup(call_id).into())
        .attribute("menu", "done")
}

sma_guest::export_handler!(IvrMenu, no_std);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn run(event: &str) -> Value {
        let out = sma_guest::dispatch::<IvrMenu>(event).unwrap();
        serde_json::from_str(&out).unwrap()
    }

    const INBOUND: &str =
        include_str!("../../../actions/tests/fixtures/events/new_inbound_call.json");
    const DIGITS: &str =
        include_str!("../../../actions/tests/fixtures/events/action_successful.json");
    const FAILED: &str = include_str!("../../../actions/tests/fixtures/events/action_failed.json");

    #[test]
    fn greets_with_the_menu() {
        let r = run(INBOUND);
        assert_eq!(r["Actions"][0]["Type"], "SpeakAndGetDigits");
        assert_eq!(r["TransactionAttributes"]["menu"], "main");
    }

    #[test]
    fn digit_one_goes_to_sales() {
        let r = run(DIGITS);
        assert_eq!(r["Actions"][0]["Parameters"]["Text"], DEPARTMENTS[0].2);
        assert_eq!(r["Actions"][1]["Type"], "Hangup");
        assert_eq!(r["TransactionAttributes"]["department"], "sales");
    }

    #[test]
    fn failed_collection_says_goodbye() {
        let r = run(FAILED);
        assert_eq!(r["Actions"][0]["Parameters"]["Text"], GIVE_UP);
        assert_eq!(r["Actions"][1]["Type"], "Hangup");
    }
}
