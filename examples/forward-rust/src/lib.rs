//! Call forwarding with a confirmation: "press 1 to be connected", then a `CallAndBridge` to
//! the number this call is forwarded to. Where that number comes from, first found wins:
//!
//! 1. the `X-Forward-To` header of the caller's INVITE (a PBX or another application sets it),
//! 2. the `forward_to` transaction attribute (set by an application that handed the call on),
//! 3. [`DEFAULT_AGENT`].
//!
//! The bridged parties talk until one hangs up; the handler then releases the other, as the
//! contract asks (a leg's hang-up does not end the other on its own). When nobody answers the
//! caller hears an apology. Everything the next event needs travels in
//! `TransactionAttributes`: every invocation runs in a fresh instance.
//!
//! On wasm the crate is `no_std` like `ivr-menu-rust`; its native unit tests keep `std`.

#![cfg_attr(target_arch = "wasm32", no_std)]

use sma_guest::actions::{self, CollectDigits};
use sma_guest::prelude::*;
use sma_guest::{log, EventType, Handler, InvocationEvent, Response};
use sma_guest::{ParticipantTag, SipHeaders};

/// Where calls go when nothing says otherwise.
pub const DEFAULT_AGENT: &str = "+14255550199";
/// The INVITE header that names the forwarding target.
pub const FORWARD_HEADER: &str = "X-Forward-To";

const OFFER: &str = "You have reached Example Corp. To be connected to an agent, press 1.";
const RETRY: &str = "Sorry, please press 1 to be connected.";
const NOT_CONNECTED: &str = "Sorry, nobody could take your call. Please try again later.";
const NO_CHOICE: &str = "Goodbye.";
const AGENT_LEFT: &str = "The agent has left the call. Goodbye.";

struct Forward;

impl Handler for Forward {
    fn handle(event: InvocationEvent) -> Result<Response, String> {
        let caller = event
            .call_details
            .participant(ParticipantTag::LegA)
            .ok_or("event has no LEG-A")?;
        let (leg_a, from) = (caller.call_id.clone(), caller.from.clone());
        let response = Response::new();
        Ok(match event.invocation_event_type {
            EventType::NewInboundCall => {
                let target = caller
                    .sip_headers
                    .as_ref()
                    .and_then(|h| {
                        h.iter()
                            .find(|(name, _)| name.eq_ignore_ascii_case(FORWARD_HEADER))
                            .map(|(_, v)| v.clone())
                    })
                    .or_else(|| event.attribute("forward_to").map(String::from))
                    .unwrap_or_else(|| DEFAULT_AGENT.into());
                log::info(&format!("call from {from}, forwarding to {target} on 1"));
                response
                    .action(
                        actions::speak_and_get_digits(&leg_a, OFFER, RETRY, (1, 1), 5000)
                            .attempts(2)
                            .regex("^1$")
                            .into(),
                    )
                    .attribute("forward_to", target)
            }
            EventType::ActionSuccessful if event.action_type() == Some("SpeakAndGetDigits") => {
                let target = event.attribute("forward_to").unwrap_or(DEFAULT_AGENT);
                let mut bridge = actions::call_and_bridge(&from, target);
                bridge.call_timeout_seconds = Some(sma_guest::Int::new(20));
                let mut headers = SipHeaders::new();
                headers.insert("X-Forwarded-By".into(), "forward-rust".into());
                bridge.sip_headers = Some(headers);
                response.action(bridge.into())
            }
            EventType::ActionFailed if event.action_type() == Some("CallAndBridge") => {
                log::warn("the forwarding target did not answer");
                say_and_hang_up(response, &leg_a, NOT_CONNECTED)
            }
            EventType::ActionFailed if event.action_type() == Some("SpeakAndGetDigits") => {
                say_and_hang_up(response, &leg_a, NO_CHOICE)
            }
            EventType::Hangup => {
                let left = event
                    .action_data
                    .as_ref()
                    .and_then(|d| d.parameter_str("ParticipantTag"));
                let connected = |tag: ParticipantTag| {
                    event
                        .call_details
                        .participant(tag)
                        .is_some_and(|p| p.status == Some(sma_guest::Status::Connected))
                };
                match left {
                    // The caller left: release the agent.
                    Some("LEG-A") if connected(ParticipantTag::LegB) => {
                        let mut hangup = actions::hangup("");
                        hangup.call_id = None;
                        hangup.participant_tag = Some(ParticipantTag::LegB);
                        response.action(hangup.into())
                    }
                    // The agent left: tell the caller.
                    Some("LEG-B") if connected(ParticipantTag::LegA) => {
                        say_and_hang_up(response, &leg_a, AGENT_LEFT)
                    }
                    _ => response,
                }
            }
            EventType::ActionFailed | EventType::InvalidLambdaResponse => {
                log::warn("giving up on the call after a failure");
                response.action(actions::hangup(&leg_a).into())
            }
            _ => response,
        })
    }
}

fn say_and_hang_up(response: Response, call_id: &str, text: &str) -> Response {
    response
        .action(actions::speak(call_id, text).into())
        .action(actions::hangup(call_id).into())
}

sma_guest::export_handler!(Forward, no_std);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn run(event: &Value) -> Value {
        let out = sma_guest::dispatch::<Forward>(&event.to_string()).unwrap();
        serde_json::from_str(&out).unwrap()
    }

    fn leg(tag: &str, id: &str, status: &str) -> Value {
        json!({"CallId": id, "ParticipantTag": tag, "To": "+12065550100",
               "From": "+15555550123", "Direction": if tag == "LEG-A" {"Inbound"} else {"Outbound"},
               "StartTimeInMilliseconds": "1700000000000", "Status": status})
    }

    fn event(kind: &str, legs: Vec<Value>, attributes: Value, action: Value) -> Value {
        let mut e = json!({"SchemaVersion": "1.0", "Sequence": 2, "InvocationEventType": kind,
            "CallDetails": {"TransactionId": "t-1", "AwsAccountId": "000000000000",
                "AwsRegion": "us-east-1", "SipMediaApplicationId": "app",
                "Participants": legs}});
        if !attributes.is_null() {
            e["CallDetails"]["TransactionAttributes"] = attributes;
        }
        if !action.is_null() {
            e["ActionData"] = action;
        }
        e
    }

    #[test]
    fn offers_the_connection_and_takes_the_target_from_the_header() {
        let mut a = leg("LEG-A", "a", "Connected");
        a["SipHeaders"] = json!({"X-Forward-To": "+14255550111"});
        let r = run(&event(
            "NEW_INBOUND_CALL",
            vec![a],
            Value::Null,
            Value::Null,
        ));
        assert_eq!(r["Actions"][0]["Type"], "SpeakAndGetDigits");
        assert_eq!(r["TransactionAttributes"]["forward_to"], "+14255550111");
        // Without a header the attribute handed on, else the default.
        let r = run(&event(
            "NEW_INBOUND_CALL",
            vec![leg("LEG-A", "a", "Connected")],
            json!({"forward_to": "+14255550122"}),
            Value::Null,
        ));
        assert_eq!(r["TransactionAttributes"]["forward_to"], "+14255550122");
        let r = run(&event(
            "NEW_INBOUND_CALL",
            vec![leg("LEG-A", "a", "Connected")],
            Value::Null,
            Value::Null,
        ));
        assert_eq!(r["TransactionAttributes"]["forward_to"], DEFAULT_AGENT);
    }

    #[test]
    fn pressing_1_bridges_with_the_callers_number() {
        let r = run(&event(
            "ACTION_SUCCESSFUL",
            vec![leg("LEG-A", "a", "Connected")],
            json!({"forward_to": "+14255550111"}),
            json!({"Type": "SpeakAndGetDigits", "Parameters": {"CallId": "a"}, "ReceivedDigits": "1"}),
        ));
        let bridge = &r["Actions"][0];
        assert_eq!(bridge["Type"], "CallAndBridge");
        assert_eq!(bridge["Parameters"]["CallerIdNumber"], "+15555550123");
        assert_eq!(bridge["Parameters"]["Endpoints"][0]["Uri"], "+14255550111");
        assert_eq!(
            bridge["Parameters"]["SipHeaders"]["X-Forwarded-By"],
            "forward-rust"
        );
    }

    #[test]
    fn an_unanswered_bridge_apologises_and_a_leaving_party_releases_the_other() {
        let r = run(&event(
            "ACTION_FAILED",
            vec![leg("LEG-A", "a", "Connected")],
            Value::Null,
            json!({"Type": "CallAndBridge", "Parameters": {}, "ErrorType": "CallNotAnswered"}),
        ));
        assert_eq!(r["Actions"][0]["Parameters"]["Text"], NOT_CONNECTED);
        assert_eq!(r["Actions"][1]["Type"], "Hangup");
        let r = run(&event(
            "HANGUP",
            vec![
                leg("LEG-A", "a", "Disconnected"),
                leg("LEG-B", "b", "Connected"),
            ],
            Value::Null,
            json!({"Type": "Hangup", "Parameters": {"CallId": "a", "ParticipantTag": "LEG-A"}}),
        ));
        assert_eq!(r["Actions"][0]["Type"], "Hangup");
        assert_eq!(r["Actions"][0]["Parameters"]["ParticipantTag"], "LEG-B");
        let r = run(&event(
            "HANGUP",
            vec![
                leg("LEG-A", "a", "Connected"),
                leg("LEG-B", "b", "Disconnected"),
            ],
            Value::Null,
            json!({"Type": "Hangup", "Parameters": {"CallId": "b", "ParticipantTag": "LEG-B"}}),
        ));
        assert_eq!(r["Actions"][0]["Parameters"]["Text"], AGENT_LEFT);
        assert_eq!(r["Actions"][1]["Parameters"]["CallId"], "a");
    }
}
