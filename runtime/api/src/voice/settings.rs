//! `GetPhoneNumberSettings` / `UpdatePhoneNumberSettings`: the account's default outbound
//! calling name, used as the caller's display name on outbound calls when a number has no
//! `CallingName` of its own.

use super::{validate, Ctx, OpRequest, Reply};
use crate::error::ApiError;
use serde::Deserialize;
use sma_store::records::PhoneNumberSettings;
use sma_store::time::{iso8601, now_ms};
use sma_store::Tx;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateInput {
    /// Required by the model; empty clears it.
    calling_name: Option<String>,
}

pub fn get(_: &Ctx<'_>, tx: &mut dyn Tx, _: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let settings = tx
        .get::<PhoneNumberSettings>(PhoneNumberSettings::ID)?
        .unwrap_or_default();
    Ok(Some(serde_json::to_value(&settings).unwrap_or_default()))
}

pub fn update(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let input: UpdateInput = request.body()?;
    let name = input
        .calling_name
        .ok_or_else(|| ApiError::bad_request("CallingName is required"))?;
    validate::calling_name(&name)?;
    tx.put(&PhoneNumberSettings {
        calling_name: (!name.is_empty()).then_some(name),
        calling_name_updated_timestamp: Some(iso8601(now_ms())),
    })?;
    Ok(None)
}
