//! The response reader that types a response straight from its text (`ParsedResponse`) must
//! agree with the reader that builds a JSON tree first, on every input: it takes the common
//! shape, and sends everything else to the tree reader.

use serde_json::{json, Map, Value};
use sma_actions::{
    parse_json_text, validate_response_keeping_prefix, Limits, ParsedResponse, ResponseError,
    ValidatedResponse,
};
use std::fs;

type Validated = Result<ValidatedResponse, Box<sma_actions::Rejection>>;

/// Every action fixture, each as a one-action response with attributes.
fn fixture_responses() -> Vec<(String, Value)> {
    let dir = manifest_dir().join("tests/fixtures/actions");
    let mut out: Vec<_> = fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("fixture").path())
        .map(|p| {
            let action: Value =
                serde_json::from_str(&fs::read_to_string(&p).expect("read")).expect("JSON");
            let response = json!({
                "SchemaVersion": "1.0",
                "Actions": [action],
                "TransactionAttributes": {"menu": "main", "step": "2"}
            });
            (p.display().to_string(), response)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Both readings of `text`: through `ParsedResponse`, and as a tree.
fn both(
    text: &str,
) -> (
    Result<Validated, ResponseError>,
    Result<Validated, ResponseError>,
) {
    let limits = Limits::default();
    let read = ParsedResponse::read(text, &limits).map(|r| r.validate("1.0", &limits));
    let tree =
        parse_json_text(text, &limits).map(|v| validate_response_keeping_prefix(v, "1.0", &limits));
    (read, tree)
}

fn assert_agree(text: &str) {
    let (read, tree) = both(text);
    assert_eq!(read, tree, "the readers disagree on {text}");
}

#[test]
fn every_fixture_is_typed_from_its_text_and_reads_as_the_tree_does() {
    for (path, response) in fixture_responses() {
        let text = response.to_string();
        let parsed = ParsedResponse::read(&text, &Limits::default()).expect("JSON");
        assert!(parsed.is_typed(), "{path} should take the text reader");
        assert_eq!(parsed.to_value(), response, "{path}");
        let pretty = serde_json::to_string_pretty(&response).expect("text");
        assert!(ParsedResponse::read(&pretty, &Limits::default())
            .expect("JSON")
            .is_typed());
        assert_agree(&text);
        assert_agree(&pretty);
    }
}

/// `value` written as JSON with the first key of its `target`-th object (in document order)
/// written twice.
fn with_repeated_key(value: &Value, target: usize) -> (String, bool) {
    fn write(v: &Value, target: usize, seen: &mut usize, out: &mut String) -> bool {
        match v {
            Value::Object(map) => {
                let this = *seen;
                *seen += 1;
                let mut repeated = false;
                out.push('{');
                for (i, (k, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).expect("key"));
                    out.push(':');
                    repeated |= write(item, target, seen, out);
                    if i == 0 && this == target {
                        // The same key again, with a different value where one is easy to make.
                        out.push(',');
                        out.push_str(&serde_json::to_string(k).expect("key"));
                        out.push(':');
                        out.push_str(&item.to_string());
                        repeated = true;
                    }
                }
                out.push('}');
                repeated
            }
            Value::Array(items) => {
                let mut repeated = false;
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    repeated |= write(item, target, seen, out);
                }
                out.push(']');
                repeated
            }
            other => {
                out.push_str(&other.to_string());
                false
            }
        }
    }
    let mut out = String::new();
    let repeated = write(value, target, &mut 0, &mut out);
    (out, repeated)
}

#[test]
fn a_repeated_key_in_any_object_of_any_fixture_is_refused() {
    let mut cases = 0;
    for (path, response) in fixture_responses() {
        for target in 0.. {
            let (text, repeated) = with_repeated_key(&response, target);
            if !repeated {
                break;
            }
            cases += 1;
            match ParsedResponse::read(&text, &Limits::default()) {
                Err(ResponseError::NotJson(why)) => {
                    assert!(why.contains("duplicate key"), "{path}: {why}")
                }
                other => panic!("{path}: {text} was read: {other:?}"),
            }
        }
    }
    assert!(cases >= 80, "only {cases} objects tried");
}

/// A small deterministic generator, so a failure names a case that can be rerun.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Values a handler might wrongly send in place of another.
fn odd_value(rng: &mut Lcg) -> Value {
    let choices = [
        Value::Null,
        json!(0),
        json!(-1),
        json!(1.5),
        json!(4294967296u64),
        json!("5"),
        json!("True"),
        json!(""),
        json!(true),
        json!([]),
        json!([1, "a"]),
        json!({}),
        json!({"Type": "S3"}),
        json!("LEG-A"),
        json!("+12065550100"),
    ];
    choices[rng.below(choices.len())].clone()
}

/// Every object and array in `v`, in document order, as paths of keys and indices.
fn containers(v: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(map) => {
            out.push(path.clone());
            for (k, item) in map {
                path.push(Step::Key(k.clone()));
                containers(item, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            out.push(path.clone());
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                containers(item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

fn at<'v>(v: &'v mut Value, path: &[Step]) -> &'v mut Value {
    path.iter().fold(v, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

/// One random change to one container of `response`.
fn mutate(response: &mut Value, rng: &mut Lcg) {
    let mut all = Vec::new();
    containers(response, &mut Vec::new(), &mut all);
    if all.is_empty() {
        return;
    }
    let path = all[rng.below(all.len())].clone();
    let target = at(response, &path);
    match target {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            match rng.below(4) {
                // An unknown key.
                0 => {
                    map.insert("Unexpected".into(), odd_value(rng));
                }
                // A known key with an odd value.
                1 if !keys.is_empty() => {
                    let k = &keys[rng.below(keys.len())];
                    map.insert(k.clone(), odd_value(rng));
                }
                // A key gone.
                2 if !keys.is_empty() => {
                    map.remove(&keys[rng.below(keys.len())]);
                }
                // The object replaced.
                _ => *target = odd_value(rng),
            }
        }
        Value::Array(items) => match rng.below(3) {
            0 => items.push(odd_value(rng)),
            1 if !items.is_empty() => {
                let copy = items[rng.below(items.len())].clone();
                items.push(copy);
            }
            _ => *target = Value::Object(Map::new()),
        },
        _ => {}
    }
}

#[test]
fn mutated_fixtures_read_the_same_through_both_readers() {
    let mut rng = Lcg(0x5ca1ab1e);
    let (mut typed, mut refused, mut total) = (0, 0, 0);
    for (_, response) in fixture_responses() {
        for _ in 0..400 {
            let mut mutated = response.clone();
            for _ in 0..=rng.below(3) {
                mutate(&mut mutated, &mut rng);
            }
            let text = mutated.to_string();
            assert_agree(&text);
            total += 1;
            if let Ok(parsed) = ParsedResponse::read(&text, &Limits::default()) {
                typed += usize::from(parsed.is_typed());
                refused += usize::from(parsed.validate("1.0", &Limits::default()).is_err());
            }
        }
    }
    // The mix must exercise both readers, and refusals as well as acceptances.
    assert!(typed > total / 10, "{typed} of {total} typed from text");
    assert!(typed < total, "every mutation was typed from text");
    assert!(refused > total / 10, "{refused} of {total} refused");
}

#[test]
fn shapes_the_text_reader_leaves_to_the_tree_reader() {
    let cases = [
        // Not an object at any level where one is required.
        r#"["1.0"]"#,
        r#"{"SchemaVersion":"1.0","Actions":[["Hangup",{}]]}"#,
        r#"{"SchemaVersion":"1.0","Actions":[{"Type":"Hangup","Parameters":[]}]}"#,
        r#"{"SchemaVersion":"1.0","Actions":[{"Type":"Hangup","Parameters":"{}"}]}"#,
        // Unknown members.
        r#"{"SchemaVersion":"1.0","Extra":1}"#,
        r#"{"SchemaVersion":"1.0","Actions":[{"Type":"Hangup","Parameters":{},"Note":1}]}"#,
        r#"{"SchemaVersion":"1.0","Actions":[{"Type":"Pause","Parameters":{"DurationInMilliseconds":5,"Why":"x"}}]}"#,
        // An action the contract does not have, one without a type.
        r#"{"SchemaVersion":"1.0","Actions":[{"Type":"Teleport","Parameters":{}}]}"#,
        r#"{"SchemaVersion":"1.0","Actions":[{"Parameters":{}}]}"#,
        // Trailing text, and a proxy envelope.
        r#"{"SchemaVersion":"1.0"} x"#,
        r#"{"statusCode":200,"body":"{}"}"#,
    ];
    for text in cases {
        // Not JSON at all is also left alone: the tree reader names the position.
        if let Ok(parsed) = ParsedResponse::read(text, &Limits::default()) {
            assert!(!parsed.is_typed(), "{text} was typed from text");
        }
        assert_agree(text);
    }
    // A null `Parameters` and an escaped key are still the common shape.
    for text in [
        r#"{"SchemaVersion":"1.0","Actions":[{"Type":"Hangup","Parameters":null}]}"#,
        r#"{"SchemaVersion":"1.0","Actions":[{"Type":"Hangup"}],"TransactionAttributes":null}"#,
        r#"{"Schema\u0056ersion":"1.0","Actions":[{"Type":"Pause","Parameters":{"Duration\u0049nMilliseconds":"5"}}]}"#,
    ] {
        let parsed = ParsedResponse::read(text, &Limits::default()).expect("JSON");
        assert!(parsed.is_typed(), "{text}");
        assert_agree(text);
    }
}

/// This crate's directory, from the `CARGO_MANIFEST_DIR` cargo sets when it runs the test (not
/// the one baked in at compile time: a clone at another path may share the target directory,
/// and cargo can reuse a test binary built there).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
