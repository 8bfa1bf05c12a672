//! Meetings end to end: boto3 creates a meeting and its attendees through `sma serve`'s
//! chime-sdk-meetings API; four `sma call` callers, each playing its own tone, reach a handler
//! that joins each to the meeting with its attendee's join token (`JoinChimeMeeting`). Each
//! caller's recording of what it heard is checked with the Goertzel detector: the others'
//! tones and not its own. The fourth is muted by its handler (`ModifyChimeMeetingAttendees`)
//! and nobody hears it, while it hears everyone.

use serde_json::{json, Value};
use sma_e2e::calls::{
    actions, assert_ports_free, kind, read_wav, tone_share, wav, ScriptedWebhook,
};
use sma_e2e::{root, Serve};
use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

const NUMBER: &str = "+12065550100";
const KEY: &str = "AKIASMADEVELOPMENT01";
const SECRET: &str = "sma/dev/secret/key/do/not/use/in/production";
const TONES: [f64; 4] = [440.0, 700.0, 1100.0, 1500.0];

fn config(endpoint: &str, media: (u16, u16), storage: &std::path::Path) -> String {
    format!(
        r#"
[media]
port_range = [{lo}, {hi}]
[storage]
root = "{storage}"
[node]
cdr_path = "{storage}/cdr.jsonl"
[[phone_numbers]]
number = "{NUMBER}"
[[applications]]
id = "app-1"
name = "meeting dial-in"
endpoint = "{endpoint}"
[[sip_rules]]
id = "rule-1"
name = "meetings"
trigger_type = "ToPhoneNumber"
trigger_value = "{NUMBER}"
targets = [{{ application = "app-1", priority = 1 }}]
"#,
        lo = media.0,
        hi = media.1,
        storage = storage.display()
    )
}

/// By caller number: the meeting, the caller's attendee and its join token.
type Tokens = std::sync::Arc<std::sync::Mutex<HashMap<String, (String, String, String)>>>;

/// A handler that joins each caller to the meeting with the token `tokens` has for it: by
/// its `X-Attendee` header, else its `From` number.
fn joining_webhook(tokens: Tokens) -> ScriptedWebhook {
    ScriptedWebhook::start(move |event: &Value| {
        let leg_a = &event["CallDetails"]["Participants"][0];
        let who = leg_a["SipHeaders"]["X-Attendee"]
            .as_str()
            .or(leg_a["From"].as_str())
            .unwrap_or_default()
            .to_owned();
        match (kind(event), tokens.lock().unwrap().get(&who).cloned()) {
            ("NEW_INBOUND_CALL", Some((meeting, _, token))) => actions(
                json!([{"Type": "JoinChimeMeeting", "Parameters": {"JoinToken": token,
                    "MeetingId": meeting}}]),
            ),
            _ => actions(json!([])),
        }
    })
}

/// Gives `who[i]` the `i`th attendee of `created` (meeting_setup.py's output).
fn remember_attendees(tokens: &Tokens, created: &Value, who: &[String]) {
    let meeting = created["MeetingId"].as_str().unwrap_or_default();
    for (i, who) in who.iter().enumerate() {
        let a = &created["Attendees"][i];
        tokens.lock().unwrap().insert(
            who.clone(),
            (
                meeting.to_owned(),
                a["AttendeeId"].as_str().unwrap_or_default().to_owned(),
                a["JoinToken"].as_str().unwrap_or_default().to_owned(),
            ),
        );
    }
}

/// The caller's number: `+1555555010<i>`.
fn caller(i: usize) -> String {
    format!("+1555555010{i}")
}

#[test]
fn callers_joined_to_a_meeting_hear_each_other_not_themselves_and_not_the_muted_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The handler: join the meeting with the token of the caller's attendee; the fourth
    // caller's handler then mutes that caller's attendee.
    let tokens: Tokens = Default::default();
    let webhook = {
        let tokens = tokens.clone();
        ScriptedWebhook::start(move |event: &Value| {
            let leg_a = &event["CallDetails"]["Participants"][0];
            let from = leg_a["From"].as_str().unwrap_or_default().to_owned();
            let found = tokens.lock().unwrap().get(&from).cloned();
            let Some((meeting, attendee, token)) = found else {
                return actions(json!([]));
            };
            match (kind(event), event["ActionData"]["Type"].as_str()) {
                ("NEW_INBOUND_CALL", _) => actions(json!([{"Type": "JoinChimeMeeting",
                    "Parameters": {"JoinToken": token, "MeetingId": meeting,
                        "CallId": leg_a["CallId"]}}])),
                ("ACTION_SUCCESSFUL", Some("JoinChimeMeeting")) if from == caller(3) => actions(
                    json!([{"Type": "ModifyChimeMeetingAttendees", "Parameters": {
                        "Operation": "Mute", "MeetingId": meeting, "ParticipantTag": "LEG-B",
                        "AttendeeList": [attendee]}}]),
                ),
                _ => actions(json!([])),
            }
        })
    };
    let media = (29800, 29899);
    let serve = Serve::start(
        &config(&webhook.url, media, dir.path()),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let created: Value = serde_json::from_str(&meeting_script(&serve, &["4"])).expect("JSON");
    remember_attendees(&tokens, &created, &(0..4).map(caller).collect::<Vec<_>>());
    // Four callers at once (one `sma call` each), each playing its tone for 6 s.
    let recordings = dir.path().join("rec");
    let mut callers = Vec::new();
    for (i, hz) in TONES.iter().enumerate() {
        let caller = TonePhone::new(&format!("caller {i}"), *hz, 6).from(&caller(i));
        callers.push(caller.start(&serve, dir.path(), 29900 + 25 * i));
    }
    let text = wait_phones(callers, || serve.log());
    let log = serve.log();
    assert!(log.contains("joined the meeting"), "{log}");
    // The mixer reports itself every 5 s while a meeting is mixed.
    assert!(
        log.lines()
            .any(|l| l.contains("conference stats") && l.contains("meetings=1")),
        "{log}"
    );
    for i in 0..4 {
        let path = recordings.join(format!("caller-{i}-1.wav"));
        let heard = heard_between(&path, 2, 3);
        for (j, hz) in TONES.iter().enumerate() {
            let share = tone_share(&heard, *hz);
            let audible = j != i && j != 3;
            if audible {
                assert!(
                    share > 0.1,
                    "caller {i} hears caller {j} at {share:.3}\n{text}"
                );
            } else {
                assert!(
                    share < 0.01,
                    "caller {i} hears caller {j} at {share:.3} (itself or muted)\n{text}"
                );
            }
        }
    }
    webhook.wait_for(4 * 3, Duration::from_secs(10));
    assert_ports_free(media);
}

/// Starts an `sma call` that calls NUMBER and waits (up to 20 s) for the far end to hang up.
fn dial_until_hung_up(
    serve: &Serve,
    dir: &std::path::Path,
    rtp_ports: &str,
) -> std::process::Child {
    let scenario = dir.join("caller.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: caller\ncall:\n  to: sip:{NUMBER}@{}\nsteps:\n  - expect: answered\n  - expect_hangup: 20s\n",
            serve.addr("udp")
        ),
    )
    .expect("scenario");
    Command::new(sma_e2e::sma())
        .args(["call", "--no-record", "--rtp-ports", rtp_ports, "-s"])
        .arg(&scenario)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sma call")
}

/// Runs `tests/api/meeting_setup.py` with `args`; its standard output.
fn meeting_script(serve: &Serve, args: &[&str]) -> String {
    let url = serve.api.clone().expect("the API is on");
    let out = Command::new(root().join(".venv/bin/python"))
        .arg(root().join("tests/api/meeting_setup.py"))
        .args([url.as_str(), KEY, SECRET])
        .args(args)
        .output()
        .expect("meeting_setup.py");
    assert!(
        out.status.success(),
        "{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        serve.log()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bad token fails the join with the contract's error and the call goes on; deleting the
/// attendee through the API releases the meeting leg (`HANGUP` for LEG-B) while LEG-A stays,
/// and the handler then speaks to the caller and hangs up.
#[test]
fn a_bad_token_fails_the_join_and_deleting_the_attendee_releases_the_meeting_leg() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token: std::sync::Arc<std::sync::Mutex<String>> = Default::default();
    let webhook = {
        let token = token.clone();
        ScriptedWebhook::start(move |event: &Value| {
            let action = event["ActionData"]["Type"].as_str();
            match (kind(event), action) {
                // Bad tokens first: blank, far too long, unknown; then the attendee's.
                ("NEW_INBOUND_CALL", _) => actions(json!([{"Type": "JoinChimeMeeting",
                    "Parameters": {"JoinToken": "  "}}])),
                ("ACTION_FAILED", Some("JoinChimeMeeting")) => {
                    let next = match event["Sequence"].as_u64() {
                        Some(2) => "7".repeat(5000),
                        Some(3) => "0123456789abcdef-not-a-token".to_owned(),
                        _ => token.lock().unwrap().clone(),
                    };
                    actions(
                        json!([{"Type": "JoinChimeMeeting", "Parameters": {"JoinToken": next}}]),
                    )
                }
                ("HANGUP", _) if event["ActionData"]["Parameters"]["ParticipantTag"] == "LEG-B" => {
                    actions(json!([
                        {"Type": "Speak", "Parameters": {"Text": "The meeting is over for you.",
                            "ParticipantTag": "LEG-A"}},
                        {"Type": "Hangup", "Parameters": {"SipResponseCode": "0",
                            "ParticipantTag": "LEG-A"}}
                    ]))
                }
                _ => actions(json!([])),
            }
        })
    };
    let media = (24000, 24049);
    let serve = Serve::start(
        &config(&webhook.url, media, dir.path()),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let created: Value = serde_json::from_str(&meeting_script(&serve, &["1"])).expect("JSON");
    let meeting = created["MeetingId"].as_str().expect("MeetingId").to_owned();
    let attendee = created["Attendees"][0]["AttendeeId"]
        .as_str()
        .expect("id")
        .to_owned();
    *token.lock().unwrap() = created["Attendees"][0]["JoinToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let call = dial_until_hung_up(&serve, dir.path(), "24050-24099");
    // The bad tokens failed, the good one joined.
    let events = webhook.wait_for(5, Duration::from_secs(10));
    for failed in &events[1..4] {
        assert_eq!(kind(failed), "ACTION_FAILED", "{failed:#}");
        assert_eq!(failed["ActionData"]["ErrorType"], "InvalidActionParameter");
        assert_eq!(
            failed["ActionData"]["ErrorMessage"],
            "JoinToken parameter value is invalid."
        );
    }
    let events = &events[2..];
    assert_eq!(kind(&events[2]), "ACTION_SUCCESSFUL", "{:#}", events[2]);
    let participants = events[2]["CallDetails"]["Participants"]
        .as_array()
        .expect("legs");
    let leg_b = participants
        .iter()
        .find(|p| p["ParticipantTag"] == "LEG-B")
        .expect("LEG-B, the meeting's side");
    assert_eq!(leg_b["To"], "+17035550122");
    assert_eq!(leg_b["Direction"], "Outbound");
    assert_eq!(leg_b["Status"], "Connected");
    // The API deletes the attendee: the meeting leg goes, LEG-A stays for the handler.
    meeting_script(&serve, &["delete", &meeting, &attendee]);
    let events = webhook.wait_for(6, Duration::from_secs(10));
    assert_eq!(kind(&events[5]), "HANGUP", "{:#}", events[5]);
    assert_eq!(
        events[5]["ActionData"]["Parameters"]["ParticipantTag"],
        "LEG-B"
    );
    let out = call.wait_with_output().expect("sma call");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", serve.log());
    assert!(serve.log().contains("the attendee was deleted"));
    webhook.wait_for(7, Duration::from_secs(10));
    assert_ports_free(media);
}

/// DeleteMeeting with someone in it: the meeting leg is released at once (`HANGUP` for LEG-B),
/// the handler hangs up the caller, and the meeting's tokens are gone.
#[test]
fn deleting_a_meeting_with_someone_in_it_releases_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token: std::sync::Arc<std::sync::Mutex<String>> = Default::default();
    let webhook = {
        let token = token.clone();
        ScriptedWebhook::start(move |event: &Value| match kind(event) {
            "NEW_INBOUND_CALL" => {
                let token = token.lock().unwrap().clone();
                actions(json!([{"Type": "JoinChimeMeeting", "Parameters": {"JoinToken": token}}]))
            }
            "HANGUP" if event["ActionData"]["Parameters"]["ParticipantTag"] == "LEG-B" => actions(
                json!([{"Type": "Hangup", "Parameters": {"SipResponseCode": "0",
                    "ParticipantTag": "LEG-A"}}]),
            ),
            _ => actions(json!([])),
        })
    };
    let media = (24300, 24349);
    let serve = Serve::start(
        &config(&webhook.url, media, dir.path()),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let created: Value = serde_json::from_str(&meeting_script(&serve, &["1"])).expect("JSON");
    let meeting = created["MeetingId"].as_str().expect("MeetingId").to_owned();
    *token.lock().unwrap() = created["Attendees"][0]["JoinToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let call = dial_until_hung_up(&serve, dir.path(), "24350-24399");
    let events = webhook.wait_for(2, Duration::from_secs(10));
    assert_eq!(kind(&events[1]), "ACTION_SUCCESSFUL", "{:#}", events[1]);
    meeting_script(&serve, &["delete-meeting", &meeting]);
    let events = webhook.wait_for(3, Duration::from_secs(10));
    assert_eq!(kind(&events[2]), "HANGUP", "{:#}", events[2]);
    assert_eq!(
        events[2]["ActionData"]["Parameters"]["ParticipantTag"],
        "LEG-B"
    );
    let out = call.wait_with_output().expect("sma call");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        serve.log()
    );
    let log = serve.log();
    assert!(log.contains("the meeting ended"), "{log}");
    assert!(log.contains("meeting ended meeting="), "{log}");
    assert_ports_free(media);
}

/// The SIP-URI meeting backend against this runtime's own dial-in: a second `sma serve`
/// (the "caller side") whose application has `meeting_dial_in` joins a meeting hosted by the
/// first by dialling its voice connector over TLS, with the join token on the Request-URI and
/// SRTP on the media. A token the host does not know fails the join with the contract's error
/// (the host answers 403); the real one joins and the caller hears, and is heard by, a phone
/// attendee of the host's meeting. Mute is refused for a meeting hosted elsewhere.
#[test]
fn an_application_with_a_meeting_dial_in_joins_a_meeting_hosted_by_another_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    const VC_HOST: &str = "meet.example";
    // The host: meetings, a voice connector for dial-ins (TLS + SRTP required), and a phone
    // number whose handler joins callers to the meeting as the second attendee.
    let host_token: std::sync::Arc<std::sync::Mutex<String>> = Default::default();
    let host_webhook = {
        let token = host_token.clone();
        ScriptedWebhook::start(move |event: &Value| match kind(event) {
            "NEW_INBOUND_CALL" => {
                let token = token.lock().unwrap().clone();
                actions(json!([{"Type": "JoinChimeMeeting", "Parameters": {"JoinToken": token}}]))
            }
            _ => actions(json!([])),
        })
    };
    let (crt, key) = sma_e2e::self_signed_certificate(dir.path(), VC_HOST);
    let host_dir = dir.path().join("host");
    std::fs::create_dir_all(&host_dir).expect("dir");
    let host_media = (21000, 21099);
    let host = Serve::start(
        &format!(
            "[sip.tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n{}\n[[voice_connectors]]\nid = \"meetvc\"\nname = \"dial-in\"\noutbound_host_name = \"{VC_HOST}\"\nrequire_encryption = true\ntermination = {{ cidr_allow_list = [\"127.0.0.1/32\"] }}\n",
            crt.display(),
            key.display(),
            config(&host_webhook.url, host_media, &host_dir)
        ),
        &["udp:127.0.0.1:0", "tls:127.0.0.1:0"],
        &[],
    );
    let created: Value = serde_json::from_str(&meeting_script(&host, &["2"])).expect("JSON");
    let meeting = created["MeetingId"].as_str().expect("MeetingId").to_owned();
    let token = |i: usize| {
        created["Attendees"][i]["JoinToken"]
            .as_str()
            .expect("token")
            .to_owned()
    };
    *host_token.lock().unwrap() = token(1);

    // The caller side: its application joins meetings through the host's dial-in.
    let caller_token = token(0);
    let caller_meeting = meeting.clone();
    let caller_webhook = ScriptedWebhook::start(move |event: &Value| {
        match (kind(event), event["ActionData"]["Type"].as_str()) {
            ("NEW_INBOUND_CALL", _) => actions(json!([{"Type": "JoinChimeMeeting",
                "Parameters": {"JoinToken": "a stranger's token=", "MeetingId": caller_meeting}}])),
            ("ACTION_FAILED", Some("JoinChimeMeeting")) => {
                actions(json!([{"Type": "JoinChimeMeeting",
                "Parameters": {"JoinToken": caller_token, "MeetingId": caller_meeting}}]))
            }
            ("ACTION_SUCCESSFUL", Some("JoinChimeMeeting")) => actions(json!([{
                "Type": "ModifyChimeMeetingAttendees", "Parameters": {"Operation": "Mute",
                    "MeetingId": caller_meeting, "ParticipantTag": "LEG-B",
                    "AttendeeList": ["00000000-0000-0000-0000-000000000000"]}}])),
            _ => actions(json!([])),
        }
    });
    let caller_dir = dir.path().join("caller");
    std::fs::create_dir_all(&caller_dir).expect("dir");
    let caller_media = (21100, 21199);
    let dial_in = format!(
        "sip:+17035550122@{VC_HOST}:{};transport=tls;maddr=127.0.0.1",
        host.addr("tls").port()
    );
    let caller_config = config(&caller_webhook.url, caller_media, &caller_dir).replace(
        "endpoint = ",
        &format!("meeting_dial_in = \"{dial_in}\"\nendpoint = "),
    );
    let caller_side = Serve::start(
        &format!(
            "[sip]\noutbound_tls_ca_file = \"{}\"\n{caller_config}",
            crt.display()
        ),
        &["udp:127.0.0.1:0", "tls:127.0.0.1:0"],
        &[],
    );

    // One phone on each side, each playing its tone for 6 s.
    let recordings = dir.path().join("rec");
    let mut phones = Vec::new();
    for (i, (serve, hz, ports)) in [(&caller_side, 440.0, 21200), (&host, 1000.0, 21250)]
        .into_iter()
        .enumerate()
    {
        phones.push(TonePhone::new(&format!("phone {i}"), hz, 6).start(serve, dir.path(), ports));
    }
    let text = wait_phones(phones, || format!("{}\n{}", caller_side.log(), host.log()));

    // The caller side's handler saw: the stranger's token refused by the host, the real one
    // joined (LEG-B is the meeting's side), mute refused.
    let events = caller_webhook.wait_for(4, Duration::from_secs(10));
    assert_eq!(kind(&events[1]), "ACTION_FAILED", "{:#}", events[1]);
    assert_eq!(
        events[1]["ActionData"]["ErrorType"],
        "InvalidActionParameter"
    );
    assert_eq!(
        events[1]["ActionData"]["ErrorMessage"],
        "JoinToken parameter value is invalid."
    );
    assert_eq!(kind(&events[2]), "ACTION_SUCCESSFUL", "{:#}", events[2]);
    let leg_b = events[2]["CallDetails"]["Participants"]
        .as_array()
        .expect("legs")
        .iter()
        .find(|p| p["ParticipantTag"] == "LEG-B")
        .cloned()
        .expect("LEG-B");
    assert_eq!(leg_b["To"], "+17035550122");
    assert_eq!(leg_b["From"], "SMA");
    assert_eq!(kind(&events[3]), "ACTION_FAILED", "{:#}", events[3]);
    assert_eq!(events[3]["ActionData"]["ErrorType"], "SystemException");
    // The host answered the dial-in over TLS with SRTP, and refused the stranger with a reason.
    let host_log = host.log();
    assert!(
        host_log.contains("no attendee has this join token"),
        "{host_log}"
    );
    assert!(
        host_log.contains("rule=meeting dial-in srtp=\"AEAD_"),
        "{host_log}"
    );
    // Each phone heard the other's tone, not its own.
    for (i, (own, other)) in [(440.0, 1000.0), (1000.0, 440.0)].into_iter().enumerate() {
        let heard = heard_between(&recordings.join(format!("phone-{i}-1.wav")), 2, 3);
        let share = tone_share(&heard, other);
        assert!(
            share > 0.1,
            "phone {i} hears the other at {share:.3}\n{text}"
        );
        let share = tone_share(&heard, own);
        assert!(share < 0.01, "phone {i} hears itself at {share:.3}\n{text}");
    }
    // Both sides' records name the meeting.
    sma_e2e::wait_until("both legs' records", Duration::from_secs(10), || {
        sma_e2e::call_records(&caller_dir)
            .iter()
            .filter(|r| r["MeetingId"] == meeting.as_str())
            .count()
            == 2
    });
    // The caller hanging up took its meeting leg along: both attendees left the host's meeting.
    sma_e2e::wait_until("both attendees leaving", Duration::from_secs(10), || {
        host.log().matches("left the meeting").count() == 2
    });
    drop(caller_side);
    drop(host);
    assert_ports_free(caller_media);
    assert_ports_free(host_media);
}

/// Starts `sma call` on the scenario at `path` (its files are in `dir`), RTP on `ports` to
/// `ports + 24`, recording what it hears into `dir/rec`.
fn phone(dir: &std::path::Path, path: &std::path::Path, ports: usize) -> std::process::Child {
    Command::new(sma_e2e::sma())
        .arg("call")
        .arg("-s")
        .arg(path)
        .args(["--rtp-ports", &format!("{ports}-{}", ports + 24)])
        .arg("--record-dir")
        .arg(dir.join("rec"))
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sma call")
}

/// Waits for every phone; fails the test with their reports and `log()` unless all passed.
/// Their reports.
fn wait_phones(phones: Vec<std::process::Child>, log: impl Fn() -> String) -> String {
    let mut text = String::new();
    let mut ok = true;
    for p in phones {
        let out = p.wait_with_output().expect("sma call");
        ok &= out.status.success();
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        text.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert!(ok, "{text}\n{}", log());
    text
}

/// What a phone's recording at `path` heard (its left channel) from `from_s` seconds in, for
/// `secs` seconds, at 8 kHz (a wideband recording keeps every 2nd or 6th sample: the tones
/// are far below 4 kHz).
fn heard_between(path: &std::path::Path, from_s: usize, secs: usize) -> Vec<i16> {
    let (channels, rate, samples) = read_wav(path);
    assert_eq!(
        channels,
        2,
        "{}: what it heard and what it said",
        path.display()
    );
    let step = (rate / 8000).max(1) as usize;
    samples
        .iter()
        .step_by(2 * step)
        .copied()
        .skip(8000 * from_s)
        .take(8000 * secs)
        .collect()
}

/// A caller that calls NUMBER, plays a tone, and hangs up: what most meeting tests dial.
struct TonePhone {
    name: String,
    hz: f64,
    secs: u32,
    from: Option<String>,
    codec: Option<String>,
}

impl TonePhone {
    fn new(name: &str, hz: f64, secs: u32) -> TonePhone {
        TonePhone {
            name: name.to_owned(),
            hz,
            secs,
            from: None,
            codec: None,
        }
    }

    /// Calls from this number.
    fn from(mut self, number: &str) -> TonePhone {
        self.from = Some(number.to_owned());
        self
    }

    /// Offers only this codec.
    fn codec(mut self, codec: &str) -> TonePhone {
        self.codec = Some(codec.to_owned());
        self
    }

    /// Writes its tone and scenario into `dir` and starts it (RTP on `ports` to
    /// `ports + 24`); its recording is `dir/rec/<name with dashes>-1.wav`.
    fn start(&self, serve: &Serve, dir: &std::path::Path, ports: usize) -> std::process::Child {
        let file = self.name.replace(' ', "-");
        tone_file(dir, &format!("{file}.wav"), self.hz, self.secs);
        let from = self
            .from
            .as_ref()
            .map(|n| format!("  from: sip:{n}@127.0.0.1\n"))
            .unwrap_or_default();
        let media = self
            .codec
            .as_ref()
            .map(|c| format!("media: {{codecs: [{c}]}}\n"))
            .unwrap_or_default();
        let path = dir.join(format!("{file}.yaml"));
        std::fs::write(
            &path,
            format!(
                "name: {}\n{media}call:\n  to: sip:{NUMBER}@{}\n{from}steps:\n  - expect: answered\n  - play: {file}.wav\n  - hangup\n",
                self.name,
                serve.addr("udp")
            ),
        )
        .expect("scenario");
        phone(dir, &path, ports)
    }
}

/// A tone of `hz` for `secs` seconds, as a WAV file in `dir`.
fn tone_file(dir: &std::path::Path, name: &str, hz: f64, secs: u32) {
    let signal: Vec<i16> = (0..8000 * secs)
        .map(|n| (6000.0 * (2.0 * std::f64::consts::PI * hz * f64::from(n) / 8000.0).sin()) as i16)
        .collect();
    std::fs::write(dir.join(name), wav(&signal, 8000)).expect("wav");
}

/// The `examples/meeting-pin` component (contract A.1) end to end: the API places a call to
/// each of two attendees with the meeting's PIN directory as the call's arguments; each
/// answers, hears the PIN prompt, keys its PIN and is joined. The first presses `*6` (muted),
/// plays a 440 Hz tone, presses `*6` again (unmuted) and plays 700 Hz: the second hears 700 Hz
/// and never 440 Hz; the first hears the second's 1 kHz. A wrong PIN is asked again.
#[test]
fn the_meeting_pin_component_joins_by_pin_and_star_six_toggles_mute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pin = sma_e2e::rust_component("meeting_pin.wasm");
    let (p1, p2) = (free_udp_port(), free_udp_port());
    let media = (21300, 21349);
    let serve = Serve::start(
        &format!(
            "{}[calls]\noutbound_calls_per_second = 0\n[[carriers]]\nname = \"first\"\nproxy = \"sip:127.0.0.1:{p1}\"\nprefixes = [\"+14255550101\"]\n[[carriers]]\nname = \"second\"\nproxy = \"sip:127.0.0.1:{p2}\"\nprefixes = [\"+14255550102\"]\n",
            config(&pin.display().to_string(), media, dir.path())
        ),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let created: Value = serde_json::from_str(&meeting_script(&serve, &["2"])).expect("JSON");
    let meeting = created["MeetingId"].as_str().expect("MeetingId").to_owned();
    tone_file(dir.path(), "muted.wav", 440.0, 3);
    tone_file(dir.path(), "unmuted.wav", 700.0, 3);
    tone_file(dir.path(), "second.wav", 1000.0, 18);
    let first = format!(
        "name: attendee 0\nrole: callee\nlisten: 127.0.0.1:{p1}\nsteps:
  - expect_incoming: {{to: \"+14255550101\", within: 20s}}\n  - answer
  - expect_audio: {{min_ms: 1500, within: 10s}}\n  - send_digits: \"9999#\"
  - expect_audio: {{min_ms: 1500, within: 10s}}\n  - send_digits: \"1111#\"
  - wait: 2s\n  - send_digits: \"*6\"\n  - wait: 2s\n  - play: muted.wav
  - send_digits: \"*6\"\n  - wait: 2s\n  - play: unmuted.wav\n  - hangup\n"
    );
    let second = format!(
        "name: attendee 1\nrole: callee\nlisten: 127.0.0.1:{p2}\nsteps:
  - expect_incoming: {{to: \"+14255550102\", within: 20s}}\n  - answer
  - expect_audio: {{min_ms: 1500, within: 10s}}\n  - send_digits: \"2222#\"
  - play: second.wav\n  - hangup\n"
    );
    let recordings = dir.path().join("rec");
    let mut callees = Vec::new();
    for (i, scenario) in [first, second].iter().enumerate() {
        let path = dir.path().join(format!("attendee-{i}.yaml"));
        std::fs::write(&path, scenario).expect("scenario");
        callees.push(phone(dir.path(), &path, 21350 + 25 * i));
    }
    // The meeting calls its attendees: each call carries the PIN directory entry.
    for (i, (to, pin)) in [("+14255550101", "1111"), ("+14255550102", "2222")]
        .into_iter()
        .enumerate()
    {
        let attendee = &created["Attendees"][i];
        meeting_script(
            &serve,
            &[
                "call",
                "app-1",
                NUMBER,
                to,
                &format!(
                    "pin:{pin}={}",
                    attendee["JoinToken"].as_str().expect("token")
                ),
                &format!("meeting:{pin}={meeting}"),
                &format!(
                    "attendee:{pin}={}",
                    attendee["AttendeeId"].as_str().expect("id")
                ),
            ],
        );
    }
    let text = wait_phones(callees, || serve.log());
    let log = serve.log();
    assert!(log.contains("unknown PIN, try 1 of 3"), "{log}");
    assert_eq!(log.matches("joined the meeting").count(), 2, "{log}");
    assert_eq!(log.matches("attendees modified").count(), 2, "{log}");
    let heard = |i: usize| heard_between(&recordings.join(format!("attendee-{i}-1.wav")), 0, 60);
    let second_heard = heard(1);
    let unmuted = tone_share(&second_heard, 700.0);
    let muted = tone_share(&second_heard, 440.0);
    assert!(
        unmuted > 0.02 && muted < unmuted / 20.0,
        "the second hears 700 Hz at {unmuted:.4} and 440 Hz (muted) at {muted:.4}\n{text}"
    );
    let share = tone_share(&heard(0), 1000.0);
    assert!(
        share > 0.05,
        "the first hears the second at {share:.3}\n{text}"
    );
    assert_ports_free(media);
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Contract A.4, the waiting room: a caller is held with music (`PlayAudio`, large `Repeat`)
/// while an organiser's service — here the test, which learnt the TransactionId from the
/// handler — admits them with `UpdateSipMediaApplicationCall` carrying the join token. The
/// handler gets `CALL_UPDATE_REQUESTED`, answers `JoinChimeMeeting`; the hold music is
/// interrupted (`ACTION_INTERRUPTED`) and the join succeeds. The waiting caller heard the
/// music and not the meeting while held, and the meeting's attendee after admission.
#[test]
fn a_waiting_caller_is_admitted_to_the_meeting_by_a_call_update() {
    let dir = tempfile::tempdir().expect("tempdir");
    const WAITING: &str = "+15555550199";
    let first_token: std::sync::Arc<std::sync::Mutex<String>> = Default::default();
    let webhook = {
        let first_token = first_token.clone();
        ScriptedWebhook::start(move |event: &Value| {
            let from = event["CallDetails"]["Participants"][0]["From"]
                .as_str()
                .unwrap_or_default();
            match kind(event) {
                "NEW_INBOUND_CALL" if from == WAITING => actions(json!([{"Type": "PlayAudio",
                    "Parameters": {"Repeat": 20, "AudioSource": {"Type": "S3",
                        "BucketName": "prompts", "Key": "hold.wav"}}}])),
                "NEW_INBOUND_CALL" => {
                    let token = first_token.lock().unwrap().clone();
                    actions(
                        json!([{"Type": "JoinChimeMeeting", "Parameters": {"JoinToken": token}}]),
                    )
                }
                "CALL_UPDATE_REQUESTED" => {
                    let arguments = &event["ActionData"]["Parameters"]["Arguments"];
                    actions(json!([{"Type": "JoinChimeMeeting", "Parameters": {
                        "JoinToken": arguments["JoinToken"], "MeetingId": arguments["MeetingId"]}}]))
                }
                _ => actions(json!([])),
            }
        })
    };
    std::fs::create_dir_all(dir.path().join("prompts")).expect("bucket");
    tone_file(&dir.path().join("prompts"), "hold.wav", 300.0, 1);
    let media = (21400, 21449);
    let serve = Serve::start(
        &config(&webhook.url, media, dir.path()),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let created: Value = serde_json::from_str(&meeting_script(&serve, &["2"])).expect("JSON");
    let meeting = created["MeetingId"].as_str().expect("MeetingId").to_owned();
    *first_token.lock().unwrap() = created["Attendees"][0]["JoinToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let recordings = dir.path().join("rec");
    let mut callers = Vec::new();
    // One inside the meeting (1 kHz for 14 s), then the one who waits (440 Hz for 12 s).
    for (i, (from, hz, secs)) in [("+15555550100", 1000.0, 14), (WAITING, 440.0, 12)]
        .into_iter()
        .enumerate()
    {
        let room = TonePhone::new(&format!("room {i}"), hz, secs).from(from);
        callers.push(room.start(&serve, dir.path(), 21450 + 25 * i));
        if i == 0 {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    // The handler "registered" the waiting call: its TransactionId is in its first event.
    let mut transaction = String::new();
    sma_e2e::wait_until("the waiting call", Duration::from_secs(10), || {
        transaction = webhook
            .events()
            .iter()
            .find(|e| e["CallDetails"]["Participants"][0]["From"] == WAITING)
            .and_then(|e| e["CallDetails"]["TransactionId"].as_str())
            .unwrap_or_default()
            .to_owned();
        !transaction.is_empty()
    });
    std::thread::sleep(Duration::from_secs(3));
    let admitted = meeting_script(
        &serve,
        &[
            "update",
            "app-1",
            &transaction,
            &format!(
                "JoinToken={}",
                created["Attendees"][1]["JoinToken"]
                    .as_str()
                    .expect("token")
            ),
            &format!("MeetingId={meeting}"),
        ],
    );
    assert_eq!(admitted.trim(), "updated");
    let text = wait_phones(callers, || serve.log());
    let waiting: Vec<(String, String)> = webhook
        .events()
        .iter()
        .filter(|e| e["CallDetails"]["TransactionId"] == transaction.as_str())
        .map(|e| {
            (
                kind(e).to_owned(),
                e["ActionData"]["Type"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let expected = [
        ("NEW_INBOUND_CALL", ""),
        ("CALL_UPDATE_REQUESTED", "CallUpdateRequest"),
        ("ACTION_INTERRUPTED", "PlayAudio"),
        ("ACTION_SUCCESSFUL", "JoinChimeMeeting"),
    ];
    assert!(
        waiting.len() >= expected.len()
            && expected
                .iter()
                .zip(&waiting)
                .all(|((k, t), (gk, gt))| k == gk && t == gt),
        "{waiting:?}"
    );
    // Held (0.5-2.5 s): the music, not the meeting. Admitted (from 7 s): the meeting.
    let heard = heard_between(&recordings.join("room-1-1.wav"), 0, 60);
    let held = &heard[4000..20000];
    let (music, meeting_audio) = (tone_share(held, 300.0), tone_share(held, 1000.0));
    assert!(
        music > 0.1 && meeting_audio < 0.01,
        "held: music {music:.3}, meeting {meeting_audio:.3}\n{text}"
    );
    let inside = tone_share(&heard[56000..80000], 1000.0);
    assert!(inside > 0.1, "admitted: meeting {inside:.3}\n{text}");
    assert_ports_free(media);
}

/// The `c=`/`m=audio` address of an SDP body in `response`.
fn sdp_media(response: &str) -> std::net::SocketAddr {
    let ip = response
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .expect("c= line")
        .trim();
    let port = response
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split_whitespace().next())
        .expect("m= line");
    format!("{ip}:{port}").parse().expect("address")
}

/// Bad input at a meeting: one attendee's leg sends garbage instead of RTP for seconds, one
/// sends nothing at all, and one attendee joins a second time from another call (a phone
/// that dropped, redialling). The two attendees talking still hear each other; the second
/// join takes over the attendee's place and the earlier call's meeting leg is released
/// (`HANGUP` for its LEG-B).
#[test]
fn garbage_silence_and_a_second_join_leave_the_meeting_undisturbed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens: Tokens = Default::default();
    let webhook = joining_webhook(tokens.clone());
    let media = (21500, 21599);
    let serve = Serve::start(
        &config(&webhook.url, media, dir.path()),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let created: Value = serde_json::from_str(&meeting_script(&serve, &["4"])).expect("JSON");
    let who = [caller(0), caller(1), "garbage".into(), "silent".into()];
    remember_attendees(&tokens, &created, &who);
    // Two talkers, 8 s each.
    let recordings = dir.path().join("rec");
    let mut talkers = Vec::new();
    for (i, hz) in [(0, 440.0), (1, 1000.0)] {
        let talker = TonePhone::new(&format!("talker {i}"), hz, 8).from(&caller(i));
        talkers.push(talker.start(&serve, dir.path(), 21600 + 25 * i));
    }
    // Raw SIP legs: one to send garbage, one silent, and the silent attendee again.
    let uri = format!("sip:{NUMBER}@{}", serve.addr("udp"));
    let raw_leg = |who: &str| {
        let rtp = std::net::UdpSocket::bind("127.0.0.1:0").expect("rtp");
        let port = rtp.local_addr().expect("addr").port();
        let mut sip = sma_e2e::calls::SipCaller::with_rtp_port(serve.addr("udp"), port);
        let answer = sip.invite(
            &uri,
            &[format!("X-Attendee: {who}")],
            Duration::from_secs(10),
        );
        assert_eq!(answer.status, 200, "{}", answer.text);
        sip.ack_answer(&uri, &answer);
        (sip, answer, rtp)
    };
    let garbage = raw_leg("garbage");
    let silent = raw_leg("silent");
    let sma_rtp = sdp_media(&garbage.1.text);
    let sender = garbage.2.try_clone().expect("socket");
    let blaster = std::thread::spawn(move || {
        let mut n: u32 = 0x9e37_79b9;
        let mut next = || {
            n ^= n << 13;
            n ^= n >> 17;
            n ^= n << 5;
            n
        };
        let end = std::time::Instant::now() + Duration::from_secs(5);
        let mut sent = 0u32;
        while std::time::Instant::now() < end {
            let len = (next() % 1400) as usize;
            let mut packet: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            match sent % 4 {
                // An RTP header with a payload type nobody negotiated.
                0 if len >= 12 => {
                    packet[0] = 0x80;
                    packet[1] = 96 + (next() % 30) as u8;
                }
                // Version 2, payload type 0, then a CSRC count and extension beyond the end.
                1 if len >= 12 => {
                    packet[0] = 0x9f;
                    packet[1] = 0;
                    packet.truncate(14);
                }
                // Padding longer than the packet.
                2 if len >= 20 => {
                    packet[0] = 0xa0;
                    packet[1] = 0;
                    packet.truncate(20);
                    packet[19] = 200;
                }
                _ => {}
            }
            let _ = sender.send_to(&packet, sma_rtp);
            sent += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        sent
    });
    std::thread::sleep(Duration::from_secs(1));
    let again = raw_leg("silent");
    let sent = blaster.join().expect("blaster");
    let text = wait_phones(talkers, || serve.log());
    assert!(sent > 1000, "only {sent} garbage datagrams sent");
    for (i, (own, other)) in [(440.0, 1000.0), (1000.0, 440.0)].into_iter().enumerate() {
        let heard = heard_between(&recordings.join(format!("talker-{i}-1.wav")), 2, 5);
        let share = tone_share(&heard, other);
        assert!(
            share > 0.1,
            "talker {i} hears the other at {share:.3}\n{text}"
        );
        assert!(tone_share(&heard, own) < 0.01, "talker {i} hears itself");
    }
    // The second join took over; the first call's meeting leg was released.
    let log = serve.log();
    assert!(
        log.contains("the attendee joins again: its earlier session is replaced"),
        "{log}"
    );
    let first_call_id = silent.1.header("Call-ID").expect("Call-ID");
    let released = webhook.events().iter().any(|e| {
        kind(e) == "HANGUP"
            && e["ActionData"]["Parameters"]["ParticipantTag"] == "LEG-B"
            && e["CallDetails"]["Participants"][0]["SipHeaders"]["X-Attendee"] == "silent"
    });
    assert!(
        released,
        "no HANGUP for the replaced session ({first_call_id})\n{log}"
    );
    for (mut sip, answer, _) in [garbage, silent, again] {
        assert_eq!(sip.bye(&uri, &answer), 200);
    }
    assert_ports_free(media);
}

/// A baresip phone in a meeting with two `sma call` callers: each of the three hears the
/// other two (three distinct tones, Goertzel on what each recorded) and not itself.
#[test]
fn a_baresip_phone_and_two_scenario_callers_hear_each_other_in_a_meeting() {
    let dir = tempfile::tempdir().expect("tempdir");
    const BARESIP: &str = "+14255550199";
    let tokens: Tokens = Default::default();
    let webhook = joining_webhook(tokens.clone());
    let media = (21800, 21849);
    let serve = Serve::start(
        &config(&webhook.url, media, dir.path()),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let created: Value = serde_json::from_str(&meeting_script(&serve, &["3"])).expect("JSON");
    remember_attendees(
        &tokens,
        &created,
        &[BARESIP.to_owned(), caller(0), caller(1)],
    );
    let tone = |hz: f64, secs: u32| -> Vec<i16> {
        (0..8000 * secs)
            .map(|n| {
                (6000.0 * (2.0 * std::f64::consts::PI * hz * f64::from(n) / 8000.0).sin()) as i16
            })
            .collect()
    };
    let mut baresip = sma_e2e::calls::Baresip::calling((21700, 21749), &tone(1500.0, 20));
    baresip.dial(&format!("sip:{NUMBER}@{}", serve.addr("udp")));
    baresip.wait_for_log("Call established", Duration::from_secs(10));
    serve.wait_for_log("joined the meeting", 1, Duration::from_secs(10));
    let recordings = dir.path().join("rec");
    let mut callers = Vec::new();
    for (i, hz) in [(0, 440.0), (1, 700.0)] {
        let caller = TonePhone::new(&format!("caller {i}"), hz, 6).from(&caller(i));
        callers.push(caller.start(&serve, dir.path(), 21750 + 25 * i));
    }
    let text = wait_phones(callers, || serve.log());
    baresip.command("hangup", "");
    baresip.wait_for_log("terminated", Duration::from_secs(10));
    let heard = baresip.received();
    for hz in [440.0, 700.0] {
        let share = tone_share(&heard, hz);
        assert!(
            share > 0.05,
            "baresip hears {hz} Hz at {share:.3}\n{}",
            baresip.log()
        );
    }
    let own = tone_share(&heard, 1500.0);
    assert!(own < 0.01, "baresip hears itself at {own:.3}");
    for (i, (own, other)) in [(440.0, 700.0), (700.0, 440.0)].into_iter().enumerate() {
        let heard = heard_between(&recordings.join(format!("caller-{i}-1.wav")), 2, 3);
        for (hz, what) in [(1500.0, "baresip"), (other, "the other caller")] {
            let share = tone_share(&heard, hz);
            assert!(share > 0.1, "caller {i} hears {what} at {share:.3}\n{text}");
        }
        assert!(tone_share(&heard, own) < 0.01, "caller {i} hears itself");
    }
    drop(baresip);
    assert_ports_free(media);
}

/// Wideband and narrowband phones in one meeting: a G.711 caller, a G.722 caller (16 kHz)
/// and an Opus caller (48 kHz) each hear the other two and not themselves.
#[test]
fn g711_g722_and_opus_callers_hear_each_other_in_one_meeting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens: Tokens = Default::default();
    let webhook = joining_webhook(tokens.clone());
    let media = (21850, 21899);
    let serve = Serve::start(
        &config(&webhook.url, media, dir.path()),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let created: Value = serde_json::from_str(&meeting_script(&serve, &["3"])).expect("JSON");
    let phones = [("pcmu", 440.0), ("g722", 1000.0), ("opus", 1500.0)];
    remember_attendees(&tokens, &created, &[caller(0), caller(1), caller(2)]);
    let recordings = dir.path().join("rec");
    let mut callers = Vec::new();
    for (i, (codec, hz)) in phones.iter().enumerate() {
        let caller = TonePhone::new(&format!("band {i}"), *hz, 6)
            .from(&caller(i))
            .codec(codec);
        callers.push(caller.start(&serve, dir.path(), 21900 + 25 * i));
    }
    let text = wait_phones(callers, || serve.log());
    for (i, (codec, own)) in phones.iter().enumerate() {
        // What it heard from 2 s to 5 s in, at 8 kHz whatever its codec's rate.
        let path = recordings.join(format!("band-{i}-1.wav"));
        let rate = read_wav(&path).1;
        let heard = heard_between(&path, 2, 3);
        for (j, (other, hz)) in phones.iter().enumerate() {
            if j == i {
                continue;
            }
            let share = tone_share(&heard, *hz);
            assert!(
                share > 0.1,
                "the {codec} caller ({rate} Hz) hears the {other} one at {share:.3}\n{text}"
            );
        }
        let share = tone_share(&heard, *own);
        assert!(
            share < 0.01,
            "the {codec} caller hears itself at {share:.3}"
        );
    }
    assert_ports_free(media);
}
