//! Meeting dial-in with a PIN (contract Appendix A.1): the caller is asked for a meeting PIN,
//! joined to that meeting with `JoinChimeMeeting`, and can press `*6` to mute or unmute
//! themselves (`ModifyChimeMeetingAttendees` on the meeting leg), as on a hosted meeting's
//! dial-in line.
//!
//! A component cannot call the meetings API, so the PIN directory comes with the call, as
//! arguments: the `ArgumentsMap` of `CreateSipMediaApplicationCall` (the meeting calls an
//! attendee, who confirms with their PIN) or the `Arguments` of
//! `UpdateSipMediaApplicationCall` (an organiser's service hands a waiting caller their
//! meeting). For each PIN `P`:
//!
//! | argument | value |
//! |---|---|
//! | `pin:P` | the attendee's `JoinToken` (from `CreateAttendee`) |
//! | `meeting:P` | the `MeetingId` |
//! | `attendee:P` | the `AttendeeId` (what `*6` mutes) |
//!
//! Arguments carrying `JoinToken` (and `MeetingId`, `AttendeeId`) admit the caller at once,
//! whatever the PIN (Appendix A.4's waiting room). Everything travels in
//! `TransactionAttributes`: every invocation runs in a fresh instance.
//!
//! On wasm the crate is `no_std` like `ivr-menu-rust`; its native unit tests keep `std`.

#![cfg_attr(target_arch = "wasm32", no_std)]

use sma_guest::actions::{self, CollectDigits};
use sma_guest::prelude::*;
use sma_guest::{
    log, AttendeeOperation, EventType, Handler, InvocationEvent, ParticipantTag, Response,
    TransactionAttributes,
};

const ASK_PIN: &str =
    "Welcome to the meeting line. Please enter your meeting PIN, then press pound.";
const RETRY_PIN: &str =
    "Sorry, I did not get that. Please enter your meeting PIN, then press pound.";
const UNKNOWN_PIN: &str =
    "That PIN does not match a meeting. Please enter your meeting PIN, then press pound.";
const NO_PIN: &str = "We could not find your meeting. Goodbye.";
const JOIN_FAILED: &str = "Sorry, the meeting cannot be joined right now. Goodbye.";
const MEETING_OVER: &str = "You have left the meeting. Goodbye.";
const MUTED: &str = "You are muted.";
const UNMUTED: &str = "You are unmuted.";

/// Wrong PINs allowed before the caller is released.
const PIN_TRIES: u32 = 3;
/// The star code that toggles mute.
const MUTE_CODE: &str = "*6";

/// Attribute keys of the call's own state.
const STATE: &str = "state";
const TRIES: &str = "tries";
const MEETING: &str = "meeting";
const ATTENDEE: &str = "attendee";
const MUTED_KEY: &str = "muted";

struct MeetingPin;

impl Handler for MeetingPin {
    fn handle(event: InvocationEvent) -> Result<Response, String> {
        let leg_a = event
            .call_details
            .participant(ParticipantTag::LegA)
            .map(|p| p.call_id.clone())
            .ok_or("event has no LEG-A")?;
        let mut attributes = event
            .call_details
            .transaction_attributes
            .clone()
            .unwrap_or_default();
        let response = Response::new();
        Ok(match event.invocation_event_type {
            EventType::NewInboundCall => ask_pin(response, &leg_a, ASK_PIN, attributes),
            EventType::NewOutboundCall => {
                add_directory(&mut attributes, &event);
                response.attributes(attributes)
            }
            EventType::CallAnswered => ask_pin(response, &leg_a, ASK_PIN, attributes),
            EventType::ActionSuccessful => match event.action_type() {
                Some("SpeakAndGetDigits") => {
                    let pin = event
                        .received_digits()
                        .unwrap_or_default()
                        .trim_end_matches('#')
                        .to_owned();
                    on_pin(response, &leg_a, attributes, &pin)
                }
                Some("JoinChimeMeeting") => {
                    attributes.insert(STATE.into(), "joined".into());
                    attributes.insert(MUTED_KEY.into(), "false".into());
                    let mut listen = actions::receive_digits(r"^\*\d$", 1000, 5000);
                    listen.call_id = Some(leg_a.clone());
                    response.action(listen.into()).attributes(attributes)
                }
                Some("ModifyChimeMeetingAttendees") => {
                    let muted = attributes.get(MUTED_KEY).is_some_and(|m| m == "true");
                    let text = if muted { MUTED } else { UNMUTED };
                    response.action(actions::speak(&leg_a, text).into())
                }
                _ => response,
            },
            EventType::ActionFailed => match event.action_type() {
                Some("SpeakAndGetDigits") => goodbye(response, &leg_a, NO_PIN),
                Some("JoinChimeMeeting") => {
                    log::warn(&format!(
                        "JoinChimeMeeting failed: {}",
                        event
                            .action_data
                            .as_ref()
                            .and_then(|d| d.error_message.clone())
                            .unwrap_or_default()
                    ));
                    goodbye(response, &leg_a, JOIN_FAILED)
                }
                Some("ModifyChimeMeetingAttendees") => {
                    // The toggle did not happen: keep the state as it was.
                    let muted = attributes.get(MUTED_KEY).is_some_and(|m| m == "true");
                    attributes.insert(MUTED_KEY.into(), (!muted).to_string());
                    log::warn("mute toggle refused");
                    response.attributes(attributes)
                }
                _ => response,
            },
            EventType::DigitsReceived if event.received_digits() == Some(MUTE_CODE) => {
                toggle_mute(response, attributes)
            }
            EventType::CallUpdateRequested => {
                add_directory(&mut attributes, &event);
                match admission(&event) {
                    Some((token, meeting, attendee)) if !in_meeting(&attributes) => {
                        log::info("admitted by a call update");
                        join(response, attributes, &token, meeting, attendee)
                    }
                    _ => response.attributes(attributes),
                }
            }
            EventType::Hangup if hung_up_leg(&event) == Some(ParticipantTag::LegB) => {
                // The meeting leg went (the meeting ended, or the attendee was removed).
                goodbye(response, &leg_a, MEETING_OVER)
            }
            _ => response,
        })
    }
}

/// Asks for the PIN with `prompt` (the caller may key it while the prompt plays).
fn ask_pin(
    response: Response,
    leg_a: &str,
    prompt: &str,
    mut attributes: TransactionAttributes,
) -> Response {
    attributes.insert(STATE.into(), "pin".into());
    response
        .action(
            actions::speak_and_get_digits(leg_a, prompt, RETRY_PIN, (4, 8), 8000)
                .attempts(2)
                .terminators(&["#"])
                .into(),
        )
        .attributes(attributes)
}

/// A PIN was entered: its meeting is joined, or the caller tries again (up to
/// [`PIN_TRIES`]) and is then released.
fn on_pin(
    response: Response,
    leg_a: &str,
    mut attributes: TransactionAttributes,
    pin: &str,
) -> Response {
    let token = attributes.get(&format!("pin:{pin}")).cloned();
    match token {
        Some(token) => {
            let meeting = attributes.get(&format!("meeting:{pin}")).cloned();
            let attendee = attributes.get(&format!("attendee:{pin}")).cloned();
            log::info(&format!("PIN accepted, joining meeting {meeting:?}"));
            join(response, attributes, &token, meeting, attendee)
        }
        None => {
            let tries = attributes
                .get(TRIES)
                .and_then(|t| t.parse::<u32>().ok())
                .unwrap_or(0)
                + 1;
            log::info(&format!("unknown PIN, try {tries} of {PIN_TRIES}"));
            if tries >= PIN_TRIES {
                return goodbye(response, leg_a, NO_PIN);
            }
            attributes.insert(TRIES.into(), tries.to_string());
            ask_pin(response, leg_a, UNKNOWN_PIN, attributes)
        }
    }
}

fn join(
    response: Response,
    mut attributes: TransactionAttributes,
    token: &str,
    meeting: Option<String>,
    attendee: Option<String>,
) -> Response {
    attributes.insert(STATE.into(), "joining".into());
    if let Some(m) = &meeting {
        attributes.insert(MEETING.into(), m.clone());
    }
    if let Some(a) = attendee {
        attributes.insert(ATTENDEE.into(), a);
    }
    response
        .action(actions::join_chime_meeting(token, meeting.as_deref()).into())
        .attributes(attributes)
}

/// `*6`: mutes the caller's attendee, or unmutes it. Without the meeting and attendee ids
/// (the directory did not give them) there is nothing to mute.
fn toggle_mute(response: Response, mut attributes: TransactionAttributes) -> Response {
    let (Some(meeting), Some(attendee)) = (
        attributes.get(MEETING).cloned(),
        attributes.get(ATTENDEE).cloned(),
    ) else {
        log::warn("*6 pressed, but the directory gave no attendee id to mute");
        return response;
    };
    let muted = attributes.get(MUTED_KEY).is_some_and(|m| m == "true");
    let operation = if muted {
        AttendeeOperation::Unmute
    } else {
        AttendeeOperation::Mute
    };
    attributes.insert(MUTED_KEY.into(), (!muted).to_string());
    response
        .action(actions::modify_chime_meeting_attendees(operation, &meeting, &[&attendee]).into())
        .attributes(attributes)
}

fn in_meeting(attributes: &TransactionAttributes) -> bool {
    attributes
        .get(STATE)
        .is_some_and(|s| s == "joining" || s == "joined")
}

fn goodbye(response: Response, leg_a: &str, text: &str) -> Response {
    response
        .action(actions::speak(leg_a, text).into())
        .action(actions::hangup(leg_a).into())
}

/// Copies the directory entries (`pin:`, `meeting:`, `attendee:`) of the call's arguments
/// into the attributes.
fn add_directory(attributes: &mut TransactionAttributes, event: &InvocationEvent) {
    for (key, value) in event.arguments() {
        if ["pin:", "meeting:", "attendee:"]
            .iter()
            .any(|p| key.starts_with(p))
        {
            attributes.insert(key.to_owned(), value.to_owned());
        }
    }
}

/// `JoinToken` (with `MeetingId`, `AttendeeId`) in a call update's arguments: an admission.
fn admission(event: &InvocationEvent) -> Option<(String, Option<String>, Option<String>)> {
    let text = |key: &str| event.argument(key).map(str::to_owned);
    Some((text("JoinToken")?, text("MeetingId"), text("AttendeeId")))
}

/// The leg a `HANGUP` is about.
fn hung_up_leg(event: &InvocationEvent) -> Option<ParticipantTag> {
    let data = event.action_data.as_ref()?;
    match data.parameter_str("ParticipantTag")? {
        "LEG-A" => Some(ParticipantTag::LegA),
        "LEG-B" => Some(ParticipantTag::LegB),
        _ => None,
    }
}

sma_guest::export_handler!(MeetingPin, no_std);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const TOKEN: &str = "0f0e0d0c0b0a09080706050403020100";

    fn event(kind: &str, action_data: Value, attributes: Value) -> String {
        json!({
            "SchemaVersion": "1.0",
            "Sequence": 2,
            "InvocationEventType": kind,
            "ActionData": action_data,
            "CallDetails": {
                "TransactionId": "tx-1",
                "TransactionAttributes": attributes,
                "AwsAccountId": "000000000000",
                "AwsRegion": "us-east-1",
                "SipRuleId": "rule",
                "SipMediaApplicationId": "meeting-pin",
                "Participants": [
                    {"CallId": "leg-a", "ParticipantTag": "LEG-A", "To": "+14255550101",
                     "From": "+12065550105", "Direction": "Outbound",
                     "StartTimeInMilliseconds": "1", "Status": "Connected"}
                ]
            }
        })
        .to_string()
    }

    fn run(event: &str) -> Value {
        let out = sma_guest::dispatch::<MeetingPin>(event).unwrap();
        serde_json::from_str(&out).unwrap()
    }

    fn directory() -> Value {
        json!({"pin:4321": TOKEN, "meeting:4321": "m-1", "attendee:4321": "a-1"})
    }

    #[test]
    fn an_outbound_call_keeps_the_directory_of_its_arguments_and_asks_for_the_pin_on_answer() {
        let r = run(&event(
            "NEW_OUTBOUND_CALL",
            json!({"Parameters": {"Arguments": {"pin:4321": TOKEN, "unrelated": "x"}}}),
            json!(null),
        ));
        assert_eq!(r["TransactionAttributes"]["pin:4321"], TOKEN);
        assert!(r["TransactionAttributes"].get("unrelated").is_none());
        let r = run(&event("CALL_ANSWERED", json!(null), directory()));
        assert_eq!(r["Actions"][0]["Type"], "SpeakAndGetDigits");
        assert_eq!(
            r["Actions"][0]["Parameters"]["TerminatorDigits"],
            json!(["#"])
        );
        assert_eq!(r["TransactionAttributes"]["pin:4321"], TOKEN);
    }

    #[test]
    fn the_right_pin_joins_its_meeting_and_star_six_toggles_mute() {
        let r = run(&event(
            "ACTION_SUCCESSFUL",
            json!({"Type": "SpeakAndGetDigits", "ReceivedDigits": "4321#"}),
            directory(),
        ));
        assert_eq!(r["Actions"][0]["Type"], "JoinChimeMeeting");
        assert_eq!(r["Actions"][0]["Parameters"]["JoinToken"], TOKEN);
        assert_eq!(r["Actions"][0]["Parameters"]["MeetingId"], "m-1");
        let joined = r["TransactionAttributes"].clone();
        let r = run(&event(
            "ACTION_SUCCESSFUL",
            json!({"Type": "JoinChimeMeeting"}),
            joined,
        ));
        assert_eq!(r["Actions"][0]["Type"], "ReceiveDigits");
        assert_eq!(r["Actions"][0]["Parameters"]["CallId"], "leg-a");
        let r = run(&event(
            "DIGITS_RECEIVED",
            json!({"Type": "ReceiveDigits", "ReceivedDigits": "*6"}),
            r["TransactionAttributes"].clone(),
        ));
        let modify = &r["Actions"][0];
        assert_eq!(modify["Type"], "ModifyChimeMeetingAttendees");
        assert_eq!(modify["Parameters"]["Operation"], "Mute");
        assert_eq!(modify["Parameters"]["ParticipantTag"], "LEG-B");
        assert_eq!(modify["Parameters"]["AttendeeList"], json!(["a-1"]));
        let muted = r["TransactionAttributes"].clone();
        let r = run(&event(
            "ACTION_SUCCESSFUL",
            json!({"Type": "ModifyChimeMeetingAttendees"}),
            muted.clone(),
        ));
        assert_eq!(r["Actions"][0]["Parameters"]["Text"], MUTED);
        let r = run(&event(
            "DIGITS_RECEIVED",
            json!({"Type": "ReceiveDigits", "ReceivedDigits": "*6"}),
            muted,
        ));
        assert_eq!(r["Actions"][0]["Parameters"]["Operation"], "Unmute");
    }

    #[test]
    fn wrong_pins_are_retried_then_the_caller_is_released() {
        let mut attributes = directory();
        for _ in 1..PIN_TRIES {
            let r = run(&event(
                "ACTION_SUCCESSFUL",
                json!({"Type": "SpeakAndGetDigits", "ReceivedDigits": "9999"}),
                attributes,
            ));
            assert_eq!(r["Actions"][0]["Type"], "SpeakAndGetDigits");
            assert_eq!(
                r["Actions"][0]["Parameters"]["SpeechParameters"]["Text"],
                UNKNOWN_PIN
            );
            attributes = r["TransactionAttributes"].clone();
        }
        let r = run(&event(
            "ACTION_SUCCESSFUL",
            json!({"Type": "SpeakAndGetDigits", "ReceivedDigits": "9999"}),
            attributes,
        ));
        assert_eq!(r["Actions"][0]["Parameters"]["Text"], NO_PIN);
        assert_eq!(r["Actions"][1]["Type"], "Hangup");
    }

    #[test]
    fn a_call_update_with_a_join_token_admits_a_waiting_caller_once() {
        let update = json!({"Type": "CallUpdateRequest", "Parameters": {"Arguments":
            {"JoinToken": TOKEN, "MeetingId": "m-1", "AttendeeId": "a-1"}}});
        let r = run(&event(
            "CALL_UPDATE_REQUESTED",
            update.clone(),
            json!({"state": "pin"}),
        ));
        assert_eq!(r["Actions"][0]["Type"], "JoinChimeMeeting");
        assert_eq!(r["TransactionAttributes"]["attendee"], "a-1");
        let r = run(&event(
            "CALL_UPDATE_REQUESTED",
            update,
            json!({"state": "joined"}),
        ));
        assert!(r.get("Actions").is_none(), "{r}");
    }

    #[test]
    fn failures_and_the_meeting_leg_going_release_the_caller() {
        for data in [
            json!({"Type": "JoinChimeMeeting", "ErrorType": "InvalidActionParameter",
                   "ErrorMessage": "JoinToken parameter value is invalid."}),
            json!({"Type": "SpeakAndGetDigits", "ErrorType": "InvalidDigitsReceived"}),
        ] {
            let r = run(&event("ACTION_FAILED", data, json!({})));
            assert_eq!(r["Actions"][1]["Type"], "Hangup", "{r}");
        }
        let r = run(&event(
            "HANGUP",
            json!({"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-B"}}),
            json!({"state": "joined"}),
        ));
        assert_eq!(r["Actions"][0]["Parameters"]["Text"], MEETING_OVER);
        let r = run(&event(
            "HANGUP",
            json!({"Type": "Hangup", "Parameters": {"ParticipantTag": "LEG-A"}}),
            json!({"state": "joined"}),
        ));
        assert!(r.get("Actions").is_none(), "{r}");
    }
}
