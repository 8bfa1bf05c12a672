//! The numbers an operator makes available to order: `SearchAvailablePhoneNumbers` and
//! `ListSupportedPhoneNumberCountries`, over the pool `sma.toml` declares
//! (`[[api.number_pool]]`), so a migrating team's "search, then order" flow works. A number
//! already in the inventory (ordered, or in the deletion queue) is not available.

use super::{validate, Ctx, OpRequest, Reply};
use crate::error::ApiError;
use serde_json::json;
use sma_store::records::PhoneNumber;
use sma_store::Tx;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Numbers of one country and type that may be ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolEntry {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    /// `Local` or `TollFree`.
    pub number_type: String,
    /// E.164 numbers with the `+`.
    pub numbers: Vec<String>,
    pub state: Option<String>,
    pub city: Option<String>,
    /// `SipMediaApplicationDialIn` and/or `VoiceConnector`.
    pub product_types: Vec<String>,
}

const TOLL_FREE_PREFIXES: &[&str] = &["800", "833", "844", "855", "866", "877", "888"];

/// `SearchAvailablePhoneNumbers`.
pub fn search(ctx: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let q = |name: &str| request.query(name).filter(|v| !v.is_empty());
    let country = q("country").unwrap_or("US");
    country_code("Country", country)?;
    let number_type = q("phone-number-type");
    if let Some(t) = number_type {
        validate::one_of("PhoneNumberType", t, &["Local", "TollFree"])?;
    }
    let area_code = q("area-code");
    let city = q("city");
    let state = q("state");
    let toll_free = q("toll-free-prefix");
    if let Some(p) = toll_free {
        if !TOLL_FREE_PREFIXES.contains(&p) {
            return Err(ApiError::bad_request(format!(
                "TollFreePrefix `{p}` is not one of {}",
                TOLL_FREE_PREFIXES.join(", ")
            )));
        }
    }
    if let Some(a) = area_code {
        if a.len() != 3 || !a.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::bad_request(format!(
                "AreaCode `{a}` must be 3 digits"
            )));
        }
    }
    if country == "US" {
        if [area_code, city, state, toll_free]
            .iter()
            .all(Option::is_none)
        {
            return Err(ApiError::bad_request(
                "a search of US numbers needs at least one of AreaCode, City, State or TollFreePrefix",
            ));
        }
        if city.is_some() && state.is_none() {
            return Err(ApiError::bad_request("City needs State as well"));
        }
        if toll_free.is_some() && (area_code.is_some() || number_type == Some("Local")) {
            return Err(ApiError::bad_request(
                "TollFreePrefix searches toll-free numbers: it cannot be combined with AreaCode or PhoneNumberType Local",
            ));
        }
    } else if number_type.is_none() {
        return Err(ApiError::bad_request(format!(
            "a search of {country} numbers needs PhoneNumberType"
        )));
    }
    let max = match q("max-results") {
        None => 100,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=500).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "MaxResults `{v}` must be a number from 1 to 500"
                )))
            }
        },
    };
    let after = match q("next-token") {
        None => None,
        Some(token) => Some(super::decode_token(token).ok_or_else(|| {
            ApiError::bad_request(format!(
                "NextToken `{token}` is not a token this API issued"
            ))
        })?),
    };
    let taken: HashSet<String> = tx
        .list::<PhoneNumber>()?
        .into_iter()
        .map(|n| n.e164_phone_number)
        .collect();
    let same = |a: Option<&str>, b: &Option<String>| {
        a.is_none_or(|a| b.as_deref().is_some_and(|b| b.eq_ignore_ascii_case(a)))
    };
    let found: BTreeSet<&str> = ctx
        .deployment
        .number_pool
        .iter()
        .filter(|e| e.country == country)
        .filter(|e| number_type.is_none_or(|t| e.number_type == t))
        .filter(|e| toll_free.is_none() || e.number_type == "TollFree")
        .filter(|e| same(state, &e.state) && same(city, &e.city))
        .flat_map(|e| e.numbers.iter())
        .filter(|n| area_code.is_none_or(|a| nanp_prefix(n) == Some(a)))
        .filter(|n| toll_free.is_none_or(|p| nanp_prefix(n) == Some(p)))
        .filter(|n| !taken.contains(*n))
        .map(String::as_str)
        .filter(|n| after.as_deref().is_none_or(|a| *n >= a))
        .collect();
    let mut page: Vec<&str> = found.into_iter().take(max + 1).collect();
    let next = if page.len() > max {
        page.pop().map(super::encode_token)
    } else {
        None
    };
    let mut reply = json!({ "E164PhoneNumbers": page });
    if let Some(token) = next {
        reply["NextToken"] = json!(token);
    }
    Ok(Some(reply))
}

/// The three digits after `+1` of a North American number.
fn nanp_prefix(number: &str) -> Option<&str> {
    number.strip_prefix("+1").and_then(|rest| rest.get(..3))
}

fn country_code(field: &str, value: &str) -> Result<(), ApiError> {
    if value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{field} `{value}` is not an ISO 3166-1 alpha-2 country code (two capital letters)"
        )))
    }
}

/// `ListSupportedPhoneNumberCountries`.
pub fn countries(
    ctx: &Ctx<'_>,
    _: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let product = request
        .query("product-type")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request("ProductType is required"))?;
    validate::one_of(
        "ProductType",
        product,
        &["VoiceConnector", "SipMediaApplicationDialIn"],
    )?;
    let mut by_country: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for entry in &ctx.deployment.number_pool {
        if entry.product_types.iter().any(|p| p == product) {
            by_country
                .entry(&entry.country)
                .or_default()
                .insert(&entry.number_type);
        }
    }
    let countries: Vec<_> = by_country
        .into_iter()
        .map(|(country, types)| json!({"CountryCode": country, "SupportedPhoneNumberTypes": types}))
        .collect();
    Ok(Some(json!({ "PhoneNumberCountries": countries })))
}
