//! SIP media applications: Create, Get, List, Update, Delete, and
//! `UpdateSipMediaApplicationCall`.

use super::{list_reply, paginate, validate, wrap, Ctx, OpRequest, Reply};
use crate::error::ApiError;
use serde::Deserialize;
use serde_json::{Map, Value};
use sma_store::records::{public, SipMediaApplication, SipMediaApplicationEndpoint, SipRule, Tag};
use sma_store::time::{iso8601, now_ms};
use sma_store::Tx;

#[derive(Deserialize)]
struct EndpointInput {
    #[serde(rename = "LambdaArn")]
    lambda_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateInput {
    aws_region: String,
    name: String,
    endpoints: Vec<EndpointInput>,
    #[serde(default)]
    tags: Option<Vec<Tag>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateInput {
    name: Option<String>,
    endpoints: Option<Vec<EndpointInput>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateCallInput {
    arguments: Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateCallInput {
    from_phone_number: String,
    to_phone_number: String,
    #[serde(default)]
    sip_headers: Map<String, Value>,
    #[serde(default)]
    arguments_map: Map<String, Value>,
}

/// A map of at most 20 string values, as the model's `SipHeadersMap` and `SMACreateCallArgumentsMap`.
fn string_map(field: &str, map: &Map<String, Value>) -> Result<Vec<(String, String)>, ApiError> {
    if map.len() > 20 {
        return Err(ApiError::bad_request(format!(
            "{field} has {} entries; at most 20 are allowed",
            map.len()
        )));
    }
    map.iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) => Ok((k.clone(), s.to_owned())),
            None => Err(ApiError::bad_request(format!(
                "{field}.{k} must be a string"
            ))),
        })
        .collect()
}

fn endpoints(
    ctx: &Ctx<'_>,
    input: Vec<EndpointInput>,
) -> Result<Vec<SipMediaApplicationEndpoint>, ApiError> {
    validate::count("Endpoints", input.len(), 1, 1)?;
    let mut out = Vec::new();
    for (i, e) in input.into_iter().enumerate() {
        let arn = e
            .lambda_arn
            .filter(|a| !a.trim().is_empty())
            .ok_or_else(|| {
                ApiError::bad_request(format!("Endpoints[{i}].LambdaArn is required"))
            })?;
        if arn.len() > 10_000 {
            return Err(ApiError::bad_request(format!(
                "Endpoints[{i}].LambdaArn is over 10000 characters"
            )));
        }
        ctx.runtime.check_endpoint(&arn).map_err(|why| {
            ApiError::bad_request(format!("Endpoints[{i}].LambdaArn `{arn}`: {why}"))
        })?;
        out.push(SipMediaApplicationEndpoint { lambda_arn: arn });
    }
    Ok(out)
}

/// The application `id`, or NotFound naming it.
pub(crate) fn load(tx: &mut dyn Tx, id: &str) -> Result<SipMediaApplication, ApiError> {
    tx.get::<SipMediaApplication>(id)?
        .ok_or_else(|| ApiError::not_found(format!("SIP media application `{id}` does not exist")))
}

pub fn create(ctx: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let input: CreateInput = request.body()?;
    validate::resource_name("Name", &input.name)?;
    ctx.check_region("AwsRegion", &input.aws_region)?;
    let tags = validate::new_tags(input.tags, ctx.deployment.limits.tags_per_resource)?;
    let endpoints = endpoints(ctx, input.endpoints)?;
    let id = validate::new_guid();
    let now = iso8601(now_ms());
    let app = SipMediaApplication {
        sip_media_application_arn: ctx.arn(&input.aws_region, "sma", &id),
        sip_media_application_id: id,
        aws_region: input.aws_region,
        name: input.name,
        endpoints,
        created_timestamp: now.clone(),
        updated_timestamp: now,
        tags,
        handler: Default::default(),
        declared: false,
        logging: Default::default(),
        meeting_dial_in: None,
    };
    tx.put(&app)?;
    Ok(wrap("SipMediaApplication", public(&app)))
}

pub fn get(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let app = load(tx, request.label("sipMediaApplicationId")?)?;
    Ok(wrap("SipMediaApplication", public(&app)))
}

pub fn list(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let apps = tx.list::<SipMediaApplication>()?;
    let (page, next) = paginate(apps, request, |a| a.sip_media_application_id.as_str())?;
    Ok(list_reply(
        "SipMediaApplications",
        page.iter().map(public).collect(),
        next,
    ))
}

pub fn update(ctx: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    if request
        .body_object()?
        .get("AwsRegion")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApiError::bad_request(
            "AwsRegion cannot be changed: a SIP media application stays in the region it was created in",
        ));
    }
    let input: UpdateInput = request.body()?;
    let mut app = load(tx, request.label("sipMediaApplicationId")?)?;
    if let Some(name) = input.name {
        validate::resource_name("Name", &name)?;
        app.name = name;
    }
    if let Some(list) = input.endpoints {
        app.endpoints = endpoints(ctx, list)?;
    }
    app.updated_timestamp = iso8601(now_ms());
    tx.put(&app)?;
    Ok(wrap("SipMediaApplication", public(&app)))
}

pub fn delete(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let app = load(tx, request.label("sipMediaApplicationId")?)?;
    let targeting: Vec<String> = tx
        .list::<SipRule>()?
        .into_iter()
        .filter(|r| {
            !r.disabled
                && r.target_applications
                    .iter()
                    .any(|t| t.sip_media_application_id == app.sip_media_application_id)
        })
        .map(|r| r.sip_rule_id)
        .collect();
    if !targeting.is_empty() {
        return Err(ApiError::conflict(format!(
            "SIP media application `{}` is a target of enabled SIP rule(s) {}; disable or update them first",
            app.sip_media_application_id,
            targeting.join(", ")
        )));
    }
    tx.delete::<SipMediaApplication>(&app.sip_media_application_id)?;
    Ok(None)
}

pub fn update_call(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let app = load(tx, request.label("sipMediaApplicationId")?)?;
    let transaction_id = request.label("transactionId")?;
    let input: UpdateCallInput = request.body()?;
    if input.arguments.len() > 20 {
        return Err(ApiError::bad_request(format!(
            "Arguments has {} entries; at most 20 are allowed",
            input.arguments.len()
        )));
    }
    if let Some((k, _)) = input.arguments.iter().find(|(_, v)| !v.is_string()) {
        return Err(ApiError::bad_request(format!(
            "Arguments.{k} must be a string"
        )));
    }
    ctx.runtime
        .update_call(
            &app.sip_media_application_id,
            transaction_id,
            input.arguments,
        )
        .map_err(|e| ApiError::not_found(e.to_string()))?;
    Ok(wrap(
        "SipMediaApplicationCall",
        serde_json::json!({"TransactionId": transaction_id}),
    ))
}

/// `CreateSipMediaApplicationCall` (contract §4.1): the application's handler gets
/// `NEW_OUTBOUND_CALL` and the runtime dials `ToPhoneNumber` from `FromPhoneNumber`, a number
/// of this account, routed like every outbound leg.
pub fn create_call(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let app = load(tx, request.label("sipMediaApplicationId")?)?;
    let input: CreateCallInput = request.body()?;
    let from = validate::e164("FromPhoneNumber", &input.from_phone_number)?;
    let to = validate::e164("ToPhoneNumber", &input.to_phone_number)?;
    let owned = tx
        .list::<sma_store::records::PhoneNumber>()?
        .iter()
        .any(|n| n.e164_phone_number == from && n.status != "DeleteInProgress");
    if !owned {
        return Err(ApiError::bad_request(format!(
            "FromPhoneNumber {from} is not a phone number of this account"
        )));
    }
    let sip_headers = string_map("SipHeaders", &input.sip_headers)?;
    for (name, value) in &sip_headers {
        if !sma_actions::is_allowed_sip_header(name) {
            return Err(ApiError::bad_request(format!(
                "SipHeaders.{name}: only X- headers (not X-AMZN, X-VC, X-Vine, X-Canary, X-Voice), User-to-User and Diversion may be set"
            )));
        }
        if value.chars().count() > 2048 || value.contains(['\r', '\n']) {
            return Err(ApiError::bad_request(format!(
                "SipHeaders.{name}: a value has at most 2048 characters and no line breaks"
            )));
        }
    }
    let arguments = string_map("ArgumentsMap", &input.arguments_map)?
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let transaction_id = ctx
        .runtime
        .create_call(super::OutboundCall {
            sip_media_application_id: app.sip_media_application_id,
            from,
            to,
            sip_headers,
            arguments,
        })
        .map_err(|e| match e {
            super::CreateCallError::Throttled(why) => ApiError::throttled(why),
            super::CreateCallError::Unavailable(why) => ApiError::unavailable(why),
        })?;
    Ok(wrap(
        "SipMediaApplicationCall",
        serde_json::json!({"TransactionId": transaction_id}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutLoggingInput {
    sip_media_application_logging_configuration: Option<LoggingInput>,
}

#[derive(Deserialize)]
struct LoggingInput {
    #[serde(rename = "EnableSipMediaApplicationMessageLogs")]
    enable: Option<bool>,
}

/// `PutSipMediaApplicationLoggingConfiguration`: with message logs on, the runtime logs
/// every event it sends the application's handler and every response it gets back.
pub fn put_logging(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: PutLoggingInput = request.body()?;
    let mut app = load(tx, request.label("sipMediaApplicationId")?)?;
    if let Some(enable) = input
        .sip_media_application_logging_configuration
        .and_then(|c| c.enable)
    {
        app.logging.enable_sip_media_application_message_logs = enable;
        app.updated_timestamp = iso8601(now_ms());
        tx.put(&app)?;
    }
    Ok(wrap(
        "SipMediaApplicationLoggingConfiguration",
        serde_json::to_value(app.logging).unwrap_or_default(),
    ))
}

/// `GetSipMediaApplicationLoggingConfiguration`.
pub fn get_logging(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let app = load(tx, request.label("sipMediaApplicationId")?)?;
    Ok(wrap(
        "SipMediaApplicationLoggingConfiguration",
        serde_json::to_value(app.logging).unwrap_or_default(),
    ))
}
