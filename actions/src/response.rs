//! The handler's response (§2.6): building one, and reading one from untrusted bytes.

use crate::action::{Action, ACTION_NAMES};
use crate::error::{json_type, ActionError, ResponseError, Rule};
use crate::event::{TransactionAttributes, SCHEMA_VERSION};
use crate::limits::Limits;
use crate::parameters::Parameters;
use crate::parsed::ParsedResponse;
use crate::prelude::*;
use crate::rules;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A response as a handler builds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Response {
    /// Must equal the event's (`"1.0"`).
    pub schema_version: String,
    /// `None` or empty keeps the queued actions; a non-empty list replaces them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<Action>>,
    /// `None` keeps the stored attributes; `Some` replaces them (`{}` clears).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_attributes: Option<TransactionAttributes>,
}

impl Default for Response {
    fn default() -> Self {
        Self::new()
    }
}

impl Response {
    /// An empty response, schema `1.0`.
    pub fn new() -> Self {
        Self {
            schema_version: SCHEMA_VERSION.to_owned(),
            actions: None,
            transaction_attributes: None,
        }
    }

    /// Appends an action.
    pub fn action(mut self, action: Action) -> Self {
        self.actions.get_or_insert_with(Vec::new).push(action);
        self
    }

    /// Sets a transaction attribute (the whole map is sent, replacing the stored one).
    pub fn attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.transaction_attributes
            .get_or_insert_with(Default::default)
            .insert(key.into(), value.into());
        self
    }

    /// Replaces the transaction attributes.
    pub fn attributes(mut self, attributes: TransactionAttributes) -> Self {
        self.transaction_attributes = Some(attributes);
        self
    }

    /// The response as JSON text.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// An action that passed validation, with its parameters exactly as the handler sent them
/// (the runtime echoes those in `ActionData`).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedAction {
    /// The typed action.
    pub action: Action,
    /// The `Parameters` object as received.
    pub parameters: Parameters,
}

/// A response that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedResponse {
    /// The schema version, equal to the event's.
    pub schema_version: String,
    /// `None` when `Actions` was absent or `null`.
    pub actions: Option<Vec<ValidatedAction>>,
    /// `None` when absent or `null`.
    pub transaction_attributes: Option<TransactionAttributes>,
}

impl ValidatedResponse {
    /// The response as JSON, actions with their parameters as received.
    pub fn to_value(&self) -> Value {
        let mut out = Map::new();
        out.insert("SchemaVersion".into(), self.schema_version.clone().into());
        if let Some(actions) = &self.actions {
            let list = actions
                .iter()
                .map(|a| {
                    let mut obj = Map::new();
                    obj.insert("Type".into(), a.action.name().into());
                    obj.insert("Parameters".into(), Value::Object(a.parameters.to_map()));
                    Value::Object(obj)
                })
                .collect();
            out.insert("Actions".into(), Value::Array(list));
        }
        if let Some(attrs) = &self.transaction_attributes {
            let map = attrs
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            out.insert("TransactionAttributes".into(), Value::Object(map));
        }
        Value::Object(out)
    }
}

/// Reads untrusted bytes as JSON: size limit, UTF-8, blankness, duplicate keys.
pub fn parse_json(body: &[u8], limits: &Limits) -> Result<Value, ResponseError> {
    // Before the UTF-8 check, which would otherwise read all of an oversize body.
    within_size(body.len(), limits)?;
    let text = core::str::from_utf8(body).map_err(|e| ResponseError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    parse_json_text(text, limits)
}

/// [`parse_json`] of text already known to be UTF-8 (a component's response string).
pub fn parse_json_text(text: &str, limits: &Limits) -> Result<Value, ResponseError> {
    within_size(text.len(), limits)?;
    if text.trim().is_empty() {
        return Err(ResponseError::Empty);
    }
    crate::strict_json::parse(text).map_err(|e| ResponseError::NotJson(e.to_string()))
}

pub(crate) fn within_size(size: usize, limits: &Limits) -> Result<(), ResponseError> {
    if size > limits.max_response_bytes {
        return Err(ResponseError::TooLarge {
            size,
            limit: limits.max_response_bytes,
        });
    }
    Ok(())
}

/// Validates a response body against the event's schema version and the limits.
pub fn validate_response(
    body: &[u8],
    expected_schema: &str,
    limits: &Limits,
) -> Result<ValidatedResponse, ResponseError> {
    ParsedResponse::read_bytes(body, limits)?
        .validate(expected_schema, limits)
        .map_err(|r| r.error)
}

/// Validates an already-parsed response.
pub fn validate_response_value(
    value: Value,
    expected_schema: &str,
    limits: &Limits,
) -> Result<ValidatedResponse, ResponseError> {
    validate_response_keeping_prefix(value, expected_schema, limits).map_err(|r| r.error)
}

/// Why a response was refused, with what the call engine needs when the refusal fails one
/// action rather than the whole response (§6: the actions before it still run, and it fails
/// in its turn with its parameters echoed). Kept from the same pass, so the engine does not
/// have to copy every response in case it is refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// What was wrong.
    pub error: ResponseError,
    /// For [`ResponseError::Action`]: the actions before the refused one, validated.
    pub valid_prefix: Vec<ValidatedAction>,
    /// For [`ResponseError::Action`]: the response's attributes, validated (they are read
    /// before the actions).
    pub transaction_attributes: Option<TransactionAttributes>,
    /// For [`ResponseError::Action`]: the refused action's `Parameters` object as received;
    /// empty when it had none or it was not an object.
    pub refused_parameters: Parameters,
}

impl Rejection {
    pub(crate) fn of(error: ResponseError) -> Box<Self> {
        Box::new(Self {
            error,
            valid_prefix: Vec::new(),
            transaction_attributes: None,
            refused_parameters: Parameters::empty(),
        })
    }
}

/// [`validate_response_value`], keeping what a partly valid response's valid part is.
pub fn validate_response_keeping_prefix(
    value: Value,
    expected_schema: &str,
    limits: &Limits,
) -> Result<ValidatedResponse, Box<Rejection>> {
    let mut obj = match value {
        Value::Object(obj) => obj,
        Value::Null => return Err(Rejection::of(ResponseError::Empty)),
        other => return Err(Rejection::of(ResponseError::NotAnObject(json_type(&other)))),
    };
    if obj.is_empty() {
        return Err(Rejection::of(ResponseError::Empty));
    }
    let schema_version = match obj.remove("SchemaVersion") {
        Some(Value::String(s)) => s,
        _ if obj.contains_key("statusCode") && obj.contains_key("body") => {
            return Err(Rejection::of(ResponseError::ProxyEnvelope))
        }
        _ => return Err(Rejection::of(ResponseError::MissingSchemaVersion)),
    };
    if schema_version != expected_schema {
        return Err(Rejection::of(ResponseError::SchemaVersionMismatch {
            expected: expected_schema.to_owned(),
            found: schema_version,
        }));
    }
    let transaction_attributes = match obj.remove("TransactionAttributes") {
        None | Some(Value::Null) => None,
        Some(v) => Some(read_attributes(v, limits).map_err(Rejection::of)?),
    };
    let actions = match obj.remove("Actions") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => {
            match collect_actions(list.into_iter().map(read_action), limits) {
                Ok(actions) => Some(actions),
                Err(mut rejection) => {
                    rejection.transaction_attributes = transaction_attributes;
                    return Err(rejection);
                }
            }
        }
        Some(other) => {
            return Err(Rejection::of(ResponseError::ActionsNotArray(json_type(
                &other,
            ))))
        }
    };
    Ok(ValidatedResponse {
        schema_version,
        actions,
        transaction_attributes,
    })
}

fn read_attributes(value: Value, limits: &Limits) -> Result<TransactionAttributes, ResponseError> {
    let Value::Object(map) = value else {
        return Err(ResponseError::AttributesNotStrings {
            path: String::new(),
            found: json_type(&value),
        });
    };
    let mut size = AttributesSize::new(map.len(), limits)?;
    let mut out = TransactionAttributes::new();
    for (key, value) in map {
        let Value::String(value) = value else {
            return Err(ResponseError::AttributesNotStrings {
                path: format!(".{key}"),
                found: json_type(&value),
            });
        };
        size.add(&key, &value, limits)?;
        out.insert(key, value);
    }
    size.check(limits)?;
    Ok(out)
}

/// Checks attributes already typed as strings (by the reader of a response's text) exactly as
/// [`read_attributes`] checks them.
pub(crate) fn check_attributes(
    attributes: &TransactionAttributes,
    limits: &Limits,
) -> Result<(), ResponseError> {
    let mut size = AttributesSize::new(attributes.len(), limits)?;
    for (key, value) in attributes {
        size.add(key, value, limits)?;
    }
    size.check(limits)
}

/// The attributes' serialized size, `{"k":"v",...}` measured with JSON escaping, entry by
/// entry, with the limits on their number and on each entry's length.
struct AttributesSize(usize);

impl AttributesSize {
    fn new(count: usize, limits: &Limits) -> Result<Self, ResponseError> {
        if count > limits.max_attribute_pairs {
            return Err(ResponseError::TooManyAttributes {
                count,
                limit: limits.max_attribute_pairs,
            });
        }
        Ok(Self(2))
    }

    fn add(&mut self, key: &str, value: &str, limits: &Limits) -> Result<(), ResponseError> {
        if let Some(max) = limits.max_attribute_entry_chars {
            if key.chars().count() > max || value.chars().count() > max {
                return Err(ResponseError::AttributeTooLong {
                    key: key.to_owned(),
                    limit: max,
                });
            }
        }
        self.0 += json_len(key) + json_len(value) + 2;
        Ok(())
    }

    fn check(&self, limits: &Limits) -> Result<(), ResponseError> {
        if self.0 > limits.max_attributes_bytes {
            return Err(ResponseError::AttributesTooLarge {
                size: self.0,
                limit: limits.max_attributes_bytes,
            });
        }
        Ok(())
    }
}

/// Length of `s` as a JSON string literal, quotes and escapes included: serde_json writes it
/// into a byte counter, so the escaping rules stay serde_json's and no string is built.
#[cfg(feature = "std")]
fn json_len(s: &str) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a `str` into a writer that never fails cannot fail.
    match serde_json::to_writer(&mut counter, s) {
        Ok(()) => counter.0,
        Err(_) => s.len() + 2,
    }
}

/// Without `std`, serde_json has no writer to count into: build the literal and measure it.
#[cfg(not(feature = "std"))]
fn json_len(s: &str) -> usize {
    serde_json::to_string(s).map_or(s.len() + 2, |literal| literal.len())
}

/// Checks actions already typed, in order: the list's length, each action's rules, and each
/// action against the ones before it. Shared by both readers of a response, so a refusal is
/// the same whichever read it.
pub(crate) fn collect_actions(
    list: impl ExactSizeIterator<Item = ReadAction>,
    limits: &Limits,
) -> Result<Vec<ValidatedAction>, Box<Rejection>> {
    if list.len() > limits.max_actions {
        return Err(Rejection::of(ResponseError::TooManyActions {
            count: list.len(),
            limit: limits.max_actions,
        }));
    }
    let mut out: Vec<ValidatedAction> = Vec::with_capacity(list.len());
    for (index, read) in list.enumerate() {
        // An action valid on its own may still clash with an earlier one in the list; its
        // parameters are then the ones to echo.
        let refused = match read {
            Ok(action) => match rules::check(&action.action, limits)
                .and_then(|()| rules::check_against_list(&action.action, &out))
            {
                Ok(()) => {
                    out.push(action);
                    continue;
                }
                Err(error) => Refused {
                    action_type: Some(action.action.name().to_owned()),
                    error,
                    parameters: action.parameters,
                },
            },
            Err(refused) => refused,
        };
        return Err(Box::new(Rejection {
            error: ResponseError::Action {
                index,
                action_type: refused.action_type,
                error: refused.error,
            },
            valid_prefix: out,
            transaction_attributes: None,
            refused_parameters: refused.parameters,
        }));
    }
    Ok(out)
}

/// One action read and typed, its rules not yet checked.
pub(crate) type ReadAction = Result<ValidatedAction, Refused>;

/// An action refused while it was read: its type when it had one, why, and its parameters
/// (which the refusal echoes).
pub(crate) struct Refused {
    action_type: Option<String>,
    error: ActionError,
    parameters: Parameters,
}

fn read_action(value: Value) -> ReadAction {
    let at = |field: &str, rule| ActionError {
        field: field.to_owned(),
        rule,
    };
    let refused = |action_type, error, parameters: Option<Map<String, Value>>| {
        Err(Refused {
            action_type,
            error,
            parameters: parameters.map_or_else(Parameters::empty, Parameters::from),
        })
    };
    let Value::Object(mut obj) = value else {
        return refused(None, at("", Rule::NotAnObject), None);
    };
    let parameters = match obj.remove("Parameters") {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(other),
    };
    let name = match obj.remove("Type") {
        Some(Value::String(name)) => name,
        _ => return refused(None, at("Type", Rule::MissingType), parameters.ok()),
    };
    if !ACTION_NAMES.contains(&name.as_str()) {
        let rule = Rule::UnsupportedAction(name.clone());
        return refused(Some(name), at("Type", rule), parameters.ok());
    }
    let parameters = match parameters {
        Ok(map) => map,
        Err(other) => {
            let rule = Rule::WrongType(format!(
                "`Parameters` must be an object, got {}",
                json_type(&other)
            ));
            return refused(Some(name), at("Parameters", rule), None);
        }
    };
    match rules::typed(&name, parameters) {
        Ok((action, parameters)) => Ok(ValidatedAction {
            action,
            parameters: parameters.into(),
        }),
        Err((error, parameters)) => refused(Some(name), error, Some(parameters)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_len_counts_what_serde_json_writes() {
        for s in [
            "",
            "plain",
            "quote \" and backslash \\",
            "\n\r\t\u{8}\u{c}",
            "\u{0}\u{1}\u{1f} control",
            "\u{7f} del",
            "ünïcödé ☎ 𝄞",
            "</script>",
        ] {
            let written = serde_json::to_string(s).unwrap();
            assert_eq!(super::json_len(s), written.len(), "{s:?} -> {written}");
        }
    }
}
