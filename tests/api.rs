//! The management API with real AWS clients against a freshly started `sma serve`: a boto3
//! suite over every implemented operation, the aws CLI, a call routed by resources boto3
//! created (and updated mid-call through the API), and resources surviving a restart.

use serde_json::json;
use sma_e2e::calls::{actions, kind, ScriptedWebhook, SipCaller, SipResponse};
use sma_e2e::{root, Serve};
use std::process::Command;
use std::time::Duration;

const KEY: &str = "AKIASMADEVELOPMENT01";
const SECRET: &str = "sma/dev/secret/key/do/not/use/in/production";

fn venv(program: &str) -> std::path::PathBuf {
    let path = root().join(".venv/bin").join(program);
    assert!(
        path.is_file(),
        "{} is missing: run ./dev setup",
        path.display()
    );
    path
}

/// Runs a script of tests/api as `script [command] URL KEY SECRET args…`; returns its
/// stdout, or panics with its output and the server's log.
fn run(
    program: &std::path::Path,
    script: &str,
    serve: &Serve,
    command: Option<&str>,
    args: &[&str],
) -> String {
    let url = serve.api.clone().expect("the API is on");
    let out = Command::new(program)
        .arg(root().join("tests/api").join(script))
        .args(command)
        .args([url.as_str(), KEY, SECRET])
        .args(args)
        .env("AWS_CLI", venv("aws"))
        .env(
            "PATH",
            format!(
                "{}:{}",
                root().join(".venv/bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .expect("run the script");
    assert!(
        out.status.success(),
        "{script} {command:?} {args:?} failed\n{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        serve.log()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A handler that leaves a new call ringing and hangs it up with 486 when the API asks it
/// to (`CALL_UPDATE_REQUESTED`).
fn update_aware_webhook() -> ScriptedWebhook {
    ScriptedWebhook::start(|event| match kind(event) {
        "CALL_UPDATE_REQUESTED" => actions(json!([
            {"Type": "Hangup", "Parameters": {"SipResponseCode": "486"}}
        ])),
        _ => actions(json!([])),
    })
}

/// The TransactionId of a handler event.
fn transaction_of(event: &serde_json::Value) -> String {
    event["CallDetails"]["TransactionId"]
        .as_str()
        .expect("TransactionId")
        .to_owned()
}

/// Calls `number` on `serve` from another thread; the handle gives the final response.
fn ring(serve: &Serve, number: &str) -> std::thread::JoinHandle<SipResponse> {
    let target = format!("sip:{number}@{}", serve.addr("udp"));
    let addr = serve.addr("udp");
    std::thread::spawn(move || SipCaller::new(addr).invite(&target, &[], Duration::from_secs(20)))
}

#[test]
fn boto3_exercises_every_operation() {
    let webhook = update_aware_webhook();
    let serve = Serve::start(
        "[api]\nmax_numbers_per_voice_connector = 2\n",
        &["udp:127.0.0.1:0"],
        &[],
    );
    let out = run(&venv("python"), "suite.py", &serve, None, &[&webhook.url]);
    assert_eq!(out, "ok");
}

/// A number pool for `SearchAvailablePhoneNumbers`, and an account id to validate against.
const MIGRATION_CONFIG: &str = r#"
[node]
account_id = "111122223333"
[[api.number_pool]]
country = "US"
state = "WA"
city = "Seattle"
ranges = [["+12065550300", "+12065550309"]]
[[api.number_pool]]
country = "US"
type = "TollFree"
numbers = ["+18005550100", "+18005550101"]
product_types = ["SipMediaApplicationDialIn"]
"#;

#[test]
fn a_migrating_teams_tooling_works_and_message_logs_show_the_exchanges() {
    let webhook = update_aware_webhook();
    let serve = Serve::start(MIGRATION_CONFIG, &["udp:127.0.0.1:0"], &[]);
    let app = run(
        &venv("python"),
        "migration.py",
        &serve,
        None,
        &[&webhook.url],
    );
    // The application's message logs are on: a call's events and responses are logged.
    const NUMBER: &str = "+12065550170";
    run(
        &venv("python"),
        "flow.py",
        &serve,
        Some("route"),
        &[&app, NUMBER],
    );
    let call = ring(&serve, NUMBER);
    let events = webhook.wait_for(1, Duration::from_secs(10));
    run(
        &venv("python"),
        "flow.py",
        &serve,
        Some("update"),
        &[&app, &transaction_of(&events[0])],
    );
    assert_eq!(call.join().expect("caller").status, 486);
    serve.wait_for_log("handler message", 4, Duration::from_secs(5));
    let log = serve.log();
    let logged: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("handler message"))
        .collect();
    assert!(
        logged
            .iter()
            .any(|l| l.contains("direction=\"event\"") && l.contains("NEW_INBOUND_CALL")),
        "{log}"
    );
    assert!(
        logged
            .iter()
            .any(|l| l.contains("direction=\"response\"") && l.contains("SipResponseCode")),
        "{log}"
    );
}

#[test]
fn boto3_exercises_every_meetings_operation() {
    let serve = Serve::start("", &["udp:127.0.0.1:0"], &[]);
    let out = run(&venv("python"), "meetings.py", &serve, None, &[]);
    assert!(out.ends_with("ok"), "{out}");
}

#[test]
fn the_aws_cli_manages_applications_and_rules() {
    let webhook = update_aware_webhook();
    let serve = Serve::start("", &["udp:127.0.0.1:0"], &[]);
    let out = run(
        std::path::Path::new("bash"),
        "awscli.sh",
        &serve,
        None,
        &[&webhook.url],
    );
    assert_eq!(out, "ok");
}

#[test]
fn a_call_reaches_an_application_boto3_created_and_the_api_updates_it() {
    const NUMBER: &str = "+12065550150";
    let webhook = update_aware_webhook();
    let serve = Serve::start("", &["udp:127.0.0.1:0"], &[]);
    let python = venv("python");
    let app = run(
        &python,
        "flow.py",
        &serve,
        Some("setup"),
        &[&webhook.url, NUMBER],
    );
    // Routing changed as the API answered: the call goes through at once.
    let call = ring(&serve, NUMBER);
    let events = webhook.wait_for(1, Duration::from_secs(10));
    assert_eq!(kind(&events[0]), "NEW_INBOUND_CALL");
    assert_eq!(
        events[0]["CallDetails"]["SipMediaApplicationId"],
        app.as_str()
    );
    let transaction = transaction_of(&events[0]);
    // The rule goes away: new calls to the number find nothing, the call in progress keeps
    // the configuration it started with.
    run(&python, "flow.py", &serve, Some("unroute"), &[NUMBER]);
    let unrouted = SipCaller::new(serve.addr("udp")).invite(
        &format!("sip:{NUMBER}@{}", serve.addr("udp")),
        &[],
        Duration::from_secs(10),
    );
    assert_eq!(unrouted.status, 404, "{}", unrouted.text);
    run(
        &python,
        "flow.py",
        &serve,
        Some("update"),
        &[&app, &transaction],
    );
    let response = call.join().expect("caller");
    assert_eq!(response.status, 486, "{}\n{}", response.text, serve.log());
    let events = webhook.wait_for(2, Duration::from_secs(5));
    assert_eq!(kind(&events[1]), "CALL_UPDATE_REQUESTED", "{events:?}");
    assert_eq!(
        events[1]["ActionData"]["Parameters"]["Arguments"],
        json!({"Reason": "escalate", "Queue": "tier-2"})
    );
    assert_eq!(
        events[1]["CallDetails"]["TransactionId"],
        transaction.as_str()
    );
}

#[test]
fn resources_survive_a_restart() {
    const NUMBER: &str = "+12065550160";
    let webhook = update_aware_webhook();
    let dir = tempfile::tempdir().expect("tempdir");
    let python = venv("python");
    let app = {
        let serve = Serve::start_in(dir.path(), "", &["udp:127.0.0.1:0"], &[]);
        run(
            &python,
            "flow.py",
            &serve,
            Some("setup"),
            &[&webhook.url, NUMBER],
        )
        // Dropping the server kills it (SIGKILL): only what was committed survives.
    };
    let serve = Serve::start_in(dir.path(), "", &["udp:127.0.0.1:0"], &[]);
    assert_eq!(
        run(&python, "flow.py", &serve, Some("check"), &[&app, NUMBER]),
        "ok"
    );
    // And the restarted node routes by them.
    let response = {
        let call = ring(&serve, NUMBER);
        let events = webhook.wait_for(1, Duration::from_secs(10));
        assert_eq!(
            events[0]["CallDetails"]["SipMediaApplicationId"],
            app.as_str()
        );
        let transaction = transaction_of(&events[0]);
        run(
            &python,
            "flow.py",
            &serve,
            Some("update"),
            &[&app, &transaction],
        );
        call.join().expect("caller")
    };
    assert_eq!(response.status, 486, "{}", response.text);
}

#[test]
fn voice_connector_termination_set_through_the_api_applies_to_the_next_call() {
    let webhook = ScriptedWebhook::start(|_| {
        actions(json!([{"Type": "Hangup", "Parameters": {"SipResponseCode": "486"}}]))
    });
    let serve = Serve::start("", &["udp:127.0.0.1:0"], &[]);
    let python = venv("python");
    let created = run(
        &python,
        "flow.py",
        &serve,
        Some("connector"),
        &[&webhook.url, "192.0.2.0/24"],
    );
    let (vc, host) = created.split_once(' ').expect("id and host");
    let invite = || {
        SipCaller::new(serve.addr("udp")).invite(
            &format!("sip:+12065550180@{host}"),
            &[],
            Duration::from_secs(10),
        )
    };
    // Loopback is not in the allowed network: refused, and the handler never hears of it.
    let refused = invite();
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(webhook.events().is_empty());
    run(
        &python,
        "flow.py",
        &serve,
        Some("termination"),
        &[vc, "127.0.0.0/8"],
    );
    let admitted = invite();
    assert_eq!(admitted.status, 486, "{}\n{}", admitted.text, serve.log());
    assert_eq!(kind(&webhook.events()[0]), "NEW_INBOUND_CALL");
    run(
        &python,
        "flow.py",
        &serve,
        Some("health"),
        &[vc, "127.0.0.1"],
    );
}

/// A click-to-call application: keeps the API's arguments in its attributes at
/// `NEW_OUTBOUND_CALL`, speaks when the called party answers and waits, and hangs up when
/// the API asks (`CALL_UPDATE_REQUESTED`).
fn click_to_call() -> ScriptedWebhook {
    ScriptedWebhook::start(|event| match kind(event) {
        "NEW_OUTBOUND_CALL" => json!({"SchemaVersion": "1.0",
            "Actions": [{"Type": "Hangup", "Parameters": {}}],
            "TransactionAttributes": event["ActionData"]["Parameters"]["Arguments"].clone()}),
        "CALL_ANSWERED" => actions(json!([
            {"Type": "Speak", "Parameters": {"Text": "This is your appointment reminder."}},
            {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 30000}}
        ])),
        "CALL_UPDATE_REQUESTED" => actions(json!([
            {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}
        ])),
        _ => actions(json!([])),
    })
}

/// A number to call from, the click-to-call application, and a carrier reaching
/// `carrier_port` for +1425 numbers.
fn outbound_config(webhook: &str, carrier_port: u16, storage: &std::path::Path) -> String {
    format!(
        "[node]\ncdr_path = \"{}/cdr.jsonl\"\n[media]\nport_range = [29600, 29699]\n\
[[phone_numbers]]\nnumber = \"+12065550100\"\n\
[[applications]]\nid = \"click\"\nname = \"click\"\nendpoint = \"{webhook}\"\n\
[[carriers]]\nname = \"trunk\"\nproxy = \"sip:127.0.0.1:{carrier_port}\"\nprefixes = [\"+1425\"]\n",
        storage.display()
    )
}

#[test]
fn boto3_places_a_call_the_handler_drives_and_the_api_updates() {
    use sma_e2e::calls::Baresip;
    let storage = tempfile::tempdir().expect("tempdir");
    let (phone, address) = Baresip::answering((29700, 29799), &vec![0i16; 8000 * 30]);
    let webhook = click_to_call();
    let serve = Serve::start(
        &outbound_config(&webhook.url, address.port(), storage.path()),
        &["udp:127.0.0.1:0"],
        &[],
    );
    let transaction = run(
        &venv("python"),
        "flow.py",
        &serve,
        Some("call"),
        &["click", "+12065550100", "+14255550199"],
    );
    let events = webhook.wait_for(3, Duration::from_secs(15));
    assert_eq!(
        events.iter().map(kind).collect::<Vec<_>>(),
        ["NEW_OUTBOUND_CALL", "RINGING", "CALL_ANSWERED"],
        "{}\n{}",
        serve.log(),
        phone.log()
    );
    let first = &events[0];
    assert_eq!(transaction_of(first), transaction);
    assert_eq!(
        first["ActionData"]["Parameters"]["Arguments"]["event_id"],
        "123456"
    );
    let leg = &first["CallDetails"]["Participants"][0];
    assert_eq!(leg["Direction"], "Outbound");
    assert_eq!(leg["From"], "+12065550100");
    assert_eq!(leg["To"], "+14255550199");
    assert!(
        leg.get("Status").is_none(),
        "no status before the answer: {leg}"
    );
    assert!(first["CallDetails"].get("SipRuleId").is_none());
    let answered = &events[2];
    assert_eq!(
        answered["CallDetails"]["Participants"][0]["Status"],
        "Connected"
    );
    // NEW_OUTBOUND_CALL's actions were ignored; its attributes were kept.
    assert_eq!(
        answered["CallDetails"]["TransactionAttributes"]["meeting_id"],
        "m-1"
    );
    // The called party hears the reminder; then the API ends the call.
    std::thread::sleep(Duration::from_secs(3));
    run(
        &venv("python"),
        "flow.py",
        &serve,
        Some("update"),
        &["click", &transaction],
    );
    // The Pause is interruptible: it is stopped for the update's Hangup.
    let events = webhook.wait_for(6, Duration::from_secs(10));
    assert_eq!(
        events[3..].iter().map(kind).collect::<Vec<_>>(),
        ["CALL_UPDATE_REQUESTED", "ACTION_INTERRUPTED", "HANGUP"]
    );
    phone.wait_for_log("session closed", Duration::from_secs(10));
    let heard = phone.received();
    let loud = heard.iter().filter(|s| s.unsigned_abs() > 1000).count();
    assert!(loud > 4000, "the called party heard {loud} loud samples");
    let cdr = std::fs::read_to_string(storage.path().join("cdr.jsonl")).unwrap_or_default();
    let record: serde_json::Value = cdr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|r: &serde_json::Value| r["TransactionId"] == transaction.as_str())
        .expect("the call's record");
    assert_eq!(record["Direction"], "Outbound");
    assert_eq!(record["Status"], "Completed");
    assert_eq!(record["Route"], "carrier trunk");
}

#[test]
fn an_api_call_nobody_can_take_ends_with_hangup_and_its_status() {
    let storage = tempfile::tempdir().expect("tempdir");
    let sipp = sma_e2e::require_program("sipp", "sip-tester");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("port");
    let far_end = Command::new(sipp)
        .arg("-sf")
        .arg(root().join("tests/sipp/uas-busy.xml"))
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1"])
        .args(["-timeout", "30", "-timeout_error", "-nostdin"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sipp");
    std::thread::sleep(Duration::from_millis(300));
    let webhook = click_to_call();
    let serve = Serve::start(
        &outbound_config(&webhook.url, port, storage.path()),
        &["udp:127.0.0.1:0"],
        &[],
    );
    run(
        &venv("python"),
        "flow.py",
        &serve,
        Some("call"),
        &["click", "+12065550100", "+14255550123"],
    );
    let events = webhook.wait_for(3, Duration::from_secs(15));
    assert_eq!(
        events.iter().map(kind).collect::<Vec<_>>(),
        ["NEW_OUTBOUND_CALL", "RINGING", "HANGUP"],
        "{}",
        serve.log()
    );
    assert_eq!(
        events[2]["ActionData"]["Parameters"]["SipResponseCode"],
        486
    );
    assert_eq!(
        events[2]["CallDetails"]["Participants"][0]["Status"],
        "Disconnected"
    );
    let out = far_end.wait_with_output().expect("sipp");
    assert!(
        out.status.success(),
        "the busy far end saw its call through"
    );
}
