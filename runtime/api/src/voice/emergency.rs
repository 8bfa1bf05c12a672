//! Emergency calling: a voice connector's emergency calling configuration (where its
//! emergency calls go, per calling country) and `ValidateE911Address`.
//!
//! A self-hosted runtime has no address database to check a street against, so validation
//! checks what can be checked without one: every part present, a US state (a name is
//! corrected to its code), a US ZIP code (`12345` or `12345-6789`), the street number
//! apart from the street, a known street suffix and direction split off. An address that
//! passes as sent is `ValidationResult` 0, one that was corrected is 1 (the corrected form
//! is the candidate), one that cannot be used is 2. Accepted addresses are stored under
//! their `AddressExternalId`, derived from the normalised address, so validating the same
//! address again gives the same id.

use super::connectors::load;
use super::{validate, wrap, Ctx, OpRequest, Reply};
use crate::error::ApiError;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use sma_store::records::{
    DnisEmergencyCallingConfiguration, E911Address, EmergencyCallingConfiguration,
};
use sma_store::time::{iso8601, now_ms};
use sma_store::Tx;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutInput {
    emergency_calling_configuration: Option<ConfigurationInput>,
}

#[derive(Deserialize)]
struct ConfigurationInput {
    #[serde(rename = "DNIS")]
    dnis: Option<Vec<DnisInput>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DnisInput {
    emergency_phone_number: Option<String>,
    test_phone_number: Option<String>,
    calling_country: Option<String>,
}

/// `PutVoiceConnectorEmergencyCallingConfiguration`.
pub fn put(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let input: PutInput = request.body()?;
    let mut vc = load(tx, request.label("voiceConnectorId")?)?;
    let config = input
        .emergency_calling_configuration
        .ok_or_else(|| ApiError::bad_request("EmergencyCallingConfiguration is required"))?;
    let mut dnis = Vec::new();
    for (i, item) in config.dnis.unwrap_or_default().into_iter().enumerate() {
        let field = |name: &str| format!("EmergencyCallingConfiguration.DNIS[{i}].{name}");
        let emergency = item.emergency_phone_number.ok_or_else(|| {
            ApiError::bad_request(format!("{} is required", field("EmergencyPhoneNumber")))
        })?;
        let emergency = validate::e164(&field("EmergencyPhoneNumber"), &emergency)?;
        let test = item
            .test_phone_number
            .map(|t| validate::e164(&field("TestPhoneNumber"), &t))
            .transpose()?;
        let country = item.calling_country.ok_or_else(|| {
            ApiError::bad_request(format!("{} is required", field("CallingCountry")))
        })?;
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ApiError::bad_request(format!(
                "{} `{country}` is not an ISO 3166-1 alpha-2 country code (two capital letters)",
                field("CallingCountry")
            )));
        }
        if dnis
            .iter()
            .any(|d: &DnisEmergencyCallingConfiguration| d.calling_country == country)
        {
            return Err(ApiError::bad_request(format!(
                "{} `{country}` is given twice: one emergency number per calling country",
                field("CallingCountry")
            )));
        }
        dnis.push(DnisEmergencyCallingConfiguration {
            emergency_phone_number: emergency,
            test_phone_number: test,
            calling_country: country,
        });
    }
    let config = EmergencyCallingConfiguration { dnis };
    vc.emergency_calling = Some(config.clone());
    vc.updated_timestamp = iso8601(now_ms());
    tx.put(&vc)?;
    Ok(wrap(
        "EmergencyCallingConfiguration",
        serde_json::to_value(&config).unwrap_or_default(),
    ))
}

/// `GetVoiceConnectorEmergencyCallingConfiguration`.
pub fn get(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let vc = load(tx, request.label("voiceConnectorId")?)?;
    let config = vc.emergency_calling.ok_or_else(|| {
        ApiError::not_found(format!(
            "voice connector `{}` has no emergency calling configuration",
            vc.voice_connector_id
        ))
    })?;
    Ok(wrap(
        "EmergencyCallingConfiguration",
        serde_json::to_value(&config).unwrap_or_default(),
    ))
}

/// `DeleteVoiceConnectorEmergencyCallingConfiguration`.
pub fn delete(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let mut vc = load(tx, request.label("voiceConnectorId")?)?;
    if vc.emergency_calling.take().is_none() {
        return Err(ApiError::not_found(format!(
            "voice connector `{}` has no emergency calling configuration",
            vc.voice_connector_id
        )));
    }
    vc.updated_timestamp = iso8601(now_ms());
    tx.put(&vc)?;
    Ok(None)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AddressInput {
    aws_account_id: Option<String>,
    street_number: Option<String>,
    street_info: Option<String>,
    city: Option<String>,
    state: Option<String>,
    country: Option<String>,
    postal_code: Option<String>,
}

const STATES: &[(&str, &str)] = &[
    ("AL", "Alabama"),
    ("AK", "Alaska"),
    ("AZ", "Arizona"),
    ("AR", "Arkansas"),
    ("CA", "California"),
    ("CO", "Colorado"),
    ("CT", "Connecticut"),
    ("DE", "Delaware"),
    ("DC", "District of Columbia"),
    ("FL", "Florida"),
    ("GA", "Georgia"),
    ("HI", "Hawaii"),
    ("ID", "Idaho"),
    ("IL", "Illinois"),
    ("IN", "Indiana"),
    ("IA", "Iowa"),
    ("KS", "Kansas"),
    ("KY", "Kentucky"),
    ("LA", "Louisiana"),
    ("ME", "Maine"),
    ("MD", "Maryland"),
    ("MA", "Massachusetts"),
    ("MI", "Michigan"),
    ("MN", "Minnesota"),
    ("MS", "Mississippi"),
    ("MO", "Missouri"),
    ("MT", "Montana"),
    ("NE", "Nebraska"),
    ("NV", "Nevada"),
    ("NH", "New Hampshire"),
    ("NJ", "New Jersey"),
    ("NM", "New Mexico"),
    ("NY", "New York"),
    ("NC", "North Carolina"),
    ("ND", "North Dakota"),
    ("OH", "Ohio"),
    ("OK", "Oklahoma"),
    ("OR", "Oregon"),
    ("PA", "Pennsylvania"),
    ("RI", "Rhode Island"),
    ("SC", "South Carolina"),
    ("SD", "South Dakota"),
    ("TN", "Tennessee"),
    ("TX", "Texas"),
    ("UT", "Utah"),
    ("VT", "Vermont"),
    ("VA", "Virginia"),
    ("WA", "Washington"),
    ("WV", "West Virginia"),
    ("WI", "Wisconsin"),
    ("WY", "Wyoming"),
    ("PR", "Puerto Rico"),
    ("GU", "Guam"),
    ("VI", "Virgin Islands"),
    ("AS", "American Samoa"),
    ("MP", "Northern Mariana Islands"),
];

/// Street suffixes (USPS abbreviations) split off the end of `StreetInfo`.
const SUFFIXES: &[(&str, &str)] = &[
    ("AVE", "AVENUE"),
    ("BLVD", "BOULEVARD"),
    ("CIR", "CIRCLE"),
    ("CT", "COURT"),
    ("DR", "DRIVE"),
    ("HWY", "HIGHWAY"),
    ("LN", "LANE"),
    ("PKWY", "PARKWAY"),
    ("PL", "PLACE"),
    ("RD", "ROAD"),
    ("SQ", "SQUARE"),
    ("ST", "STREET"),
    ("TER", "TERRACE"),
    ("WAY", "WAY"),
];

const DIRECTIONS: &[(&str, &str)] = &[
    ("N", "NORTH"),
    ("S", "SOUTH"),
    ("E", "EAST"),
    ("W", "WEST"),
    ("NE", "NORTHEAST"),
    ("NW", "NORTHWEST"),
    ("SE", "SOUTHEAST"),
    ("SW", "SOUTHWEST"),
];

/// The abbreviation `word` stands for in `table` (`Street` → `ST`, `st.` → `ST`).
fn abbreviation(table: &[(&'static str, &'static str)], word: &str) -> Option<&'static str> {
    let w = word.trim_end_matches('.').to_ascii_uppercase();
    table
        .iter()
        .find(|(short, long)| w == *short || w == *long)
        .map(|(short, _)| *short)
}

/// `ValidateE911Address`.
pub fn validate_address(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: AddressInput = request.body()?;
    let required = |name: &str, value: Option<String>| -> Result<String, ApiError> {
        value
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
    };
    let account = required("AwsAccountId", input.aws_account_id)?;
    if account != ctx.deployment.account_id {
        return Err(ApiError::bad_request(format!(
            "AwsAccountId `{account}` is not this deployment's account ({})",
            ctx.deployment.account_id
        )));
    }
    let street_number = required("StreetNumber", input.street_number)?;
    let street_info = required("StreetInfo", input.street_info)?;
    let city = required("City", input.city)?;
    let state = required("State", input.state)?;
    let country = required("Country", input.country)?;
    let postal_code = required("PostalCode", input.postal_code)?;

    let mut corrected = false;
    let country_code = country.to_ascii_uppercase();
    corrected |= country_code != country;
    if country_code != "US" {
        // Only US addresses can be checked (emergency calling is US-only on the service).
        return Ok(Some(
            json!({"ValidationResult": 2, "CandidateAddressList": []}),
        ));
    }
    let state_code = STATES
        .iter()
        .find(|(code, name)| state.eq_ignore_ascii_case(code) || state.eq_ignore_ascii_case(name))
        .map(|(code, _)| *code);
    let (zip, plus4) = match postal_code.split_once('-') {
        Some((zip, plus4)) => (zip, Some(plus4)),
        None => (postal_code.as_str(), None),
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let zip_ok = digits(zip, 5) && plus4.is_none_or(|p| digits(p, 4));
    let number_ok = street_number
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit())
        && street_number.len() <= 10
        && street_number
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let mut words: Vec<String> = street_info.split_whitespace().map(str::to_owned).collect();
    let (Some(state_code), true, true, false) = (state_code, zip_ok, number_ok, words.is_empty())
    else {
        return Ok(Some(
            json!({"ValidationResult": 2, "CandidateAddressList": []}),
        ));
    };
    corrected |= !state_code.eq_ignore_ascii_case(&state);
    let mut address = Map::new();
    let mut put = |key: &str, value: &str| {
        address.insert(key.to_owned(), Value::from(value));
    };
    put("streetNumber", &street_number);
    if words.len() > 1 {
        if let Some(dir) = abbreviation(DIRECTIONS, &words[0]) {
            corrected |= !words[0].eq_ignore_ascii_case(dir);
            put("preDirectional", dir);
            words.remove(0);
        }
    }
    if words.len() > 1 {
        if let Some(dir) = words.last().and_then(|w| abbreviation(DIRECTIONS, w)) {
            corrected |= words.last().is_some_and(|w| !w.eq_ignore_ascii_case(dir));
            put("postDirectional", dir);
            words.pop();
        }
    }
    if words.len() > 1 {
        if let Some(suffix) = words.last().and_then(|w| abbreviation(SUFFIXES, w)) {
            corrected |= words
                .last()
                .is_some_and(|w| !w.eq_ignore_ascii_case(suffix));
            put("streetSuffix", suffix);
            words.pop();
        }
    }
    let street_name = words.join(" ");
    put("streetName", &street_name);
    put("city", &city);
    put("state", state_code);
    put("postalCode", zip);
    if let Some(p) = plus4 {
        put("postalCodePlus4", p);
    }
    put("country", "US");
    let normalized = format!(
        "{}|{}|{}|{}|{}|{}",
        street_number.to_ascii_uppercase(),
        address
            .iter()
            .filter(|(k, _)| k.contains("Directional")
                || *k == "streetName"
                || *k == "streetSuffix")
            .map(|(_, v)| v.as_str().unwrap_or_default().to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(" "),
        city.to_ascii_uppercase(),
        state_code,
        zip,
        plus4.unwrap_or_default()
    );
    let digest = hex::encode(Sha256::digest(normalized.as_bytes()));
    let id = format!(
        "{}-{}-{}-{}-{}",
        &digest[0..8],
        &digest[8..12],
        &digest[12..16],
        &digest[16..20],
        &digest[20..32]
    );
    tx.put(&E911Address {
        address_external_id: id.clone(),
        address: address.clone(),
        validated_timestamp: iso8601(now_ms()),
    })?;
    let mut reply = json!({
        "ValidationResult": if corrected { 1 } else { 0 },
        "AddressExternalId": id,
        "Address": address,
        "CandidateAddressList": [],
    });
    if corrected {
        let mut candidate = Map::new();
        candidate.insert("streetInfo".into(), Value::from(street_info_of(&address)));
        for key in [
            "streetNumber",
            "city",
            "state",
            "postalCode",
            "postalCodePlus4",
            "country",
        ] {
            if let Some(v) = address.get(key) {
                candidate.insert(key.into(), v.clone());
            }
        }
        reply["CandidateAddressList"] = json!([candidate]);
    }
    Ok(Some(reply))
}

/// The street as one line, from its parts.
fn street_info_of(address: &Map<String, Value>) -> String {
    [
        "preDirectional",
        "streetName",
        "streetSuffix",
        "postDirectional",
    ]
    .iter()
    .filter_map(|k| address.get(*k).and_then(Value::as_str))
    .collect::<Vec<_>>()
    .join(" ")
}
