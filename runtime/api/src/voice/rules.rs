//! SIP rules: Create, Get, List (filtered by application), Update, Delete.
//!
//! A `ToPhoneNumber` rule needs a number of the inventory whose product is
//! `SipMediaApplicationDialIn`; one rule per trigger value; targets name existing
//! applications, at most one per region, each in its application's region.

use super::{applications, list_reply, paginate, validate, wrap, Ctx, OpRequest, Reply};
use crate::error::ApiError;
use serde::Deserialize;
use sma_store::records::{public, PhoneNumber, SipRule, SipRuleTargetApplication};
use sma_store::time::{iso8601, now_ms};
use sma_store::Tx;
use std::collections::BTreeSet;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TargetInput {
    sip_media_application_id: Option<String>,
    priority: Option<i64>,
    aws_region: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateInput {
    name: String,
    trigger_type: String,
    trigger_value: String,
    disabled: Option<bool>,
    target_applications: Vec<TargetInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateInput {
    name: String,
    disabled: Option<bool>,
    target_applications: Option<Vec<TargetInput>>,
}

pub(crate) fn load(tx: &mut dyn Tx, id: &str) -> Result<SipRule, ApiError> {
    tx.get::<SipRule>(id)?
        .ok_or_else(|| ApiError::not_found(format!("SIP rule `{id}` does not exist")))
}

fn targets(
    tx: &mut dyn Tx,
    input: Vec<TargetInput>,
) -> Result<Vec<SipRuleTargetApplication>, ApiError> {
    validate::count("TargetApplications", input.len(), 1, 25)?;
    let mut regions = BTreeSet::new();
    let mut priorities = BTreeSet::new();
    let mut out = Vec::new();
    for (i, t) in input.into_iter().enumerate() {
        let field = format!("TargetApplications[{i}]");
        let id = t.sip_media_application_id.ok_or_else(|| {
            ApiError::bad_request(format!("{field}.SipMediaApplicationId is required"))
        })?;
        let priority = t
            .priority
            .ok_or_else(|| ApiError::bad_request(format!("{field}.Priority is required")))?;
        validate::range(
            &format!("{field}.Priority"),
            priority,
            1,
            i64::from(u32::MAX),
        )?;
        let app = tx
            .get::<sma_store::records::SipMediaApplication>(&id)?
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "{field}.SipMediaApplicationId: SIP media application `{id}` does not exist"
                ))
            })?;
        let region = t.aws_region.unwrap_or(app.aws_region.clone());
        if region != app.aws_region {
            return Err(ApiError::bad_request(format!(
                "{field}.AwsRegion `{region}`: application `{id}` is in {}",
                app.aws_region
            )));
        }
        if !regions.insert(region.clone()) {
            return Err(ApiError::bad_request(format!(
                "{field}: a SIP rule can have only one target application per region, and {region} has two"
            )));
        }
        if !priorities.insert(priority) {
            return Err(ApiError::bad_request(format!(
                "{field}.Priority {priority} is given to two targets"
            )));
        }
        out.push(SipRuleTargetApplication {
            sip_media_application_id: id,
            priority: priority as u32,
            aws_region: region,
        });
    }
    out.sort_by_key(|t| t.priority);
    Ok(out)
}

/// The trigger value as stored: an E.164 number in the inventory (for `ToPhoneNumber`) or a
/// lower-case host name, not used by another rule.
fn trigger(
    tx: &mut dyn Tx,
    trigger_type: &str,
    value: &str,
    rule_id: Option<&str>,
) -> Result<String, ApiError> {
    validate::one_of(
        "TriggerType",
        trigger_type,
        &["ToPhoneNumber", "RequestUriHostname"],
    )?;
    let stored = if trigger_type == "ToPhoneNumber" {
        let number = validate::e164("TriggerValue", value)?;
        let record = tx.get::<PhoneNumber>(&number)?.ok_or_else(|| {
            ApiError::not_found(format!(
                "TriggerValue {number} is not a phone number of the inventory (order it with CreatePhoneNumberOrder)"
            ))
        })?;
        if record.status == "DeleteInProgress" {
            return Err(ApiError::bad_request(format!(
                "TriggerValue {number} is deleted (restore it with RestorePhoneNumber)"
            )));
        }
        if record.product_type != "SipMediaApplicationDialIn" {
            return Err(ApiError::conflict(format!(
                "TriggerValue {number} is a {} number; a SIP rule needs a SipMediaApplicationDialIn number",
                record.product_type
            )));
        }
        number
    } else {
        validate::host_name("TriggerValue", value)?;
        value.to_ascii_lowercase()
    };
    if let Some(other) = tx.list::<SipRule>()?.into_iter().find(|r| {
        r.trigger_type == trigger_type
            && r.trigger_value == stored
            && Some(r.sip_rule_id.as_str()) != rule_id
    }) {
        return Err(ApiError::conflict(format!(
            "TriggerValue {stored} is already the trigger of SIP rule `{}`",
            other.sip_rule_id
        )));
    }
    Ok(stored)
}

pub fn create(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let input: CreateInput = request.body()?;
    validate::resource_name("Name", &input.name)?;
    let trigger_value = trigger(tx, &input.trigger_type, &input.trigger_value, None)?;
    let targets = targets(tx, input.target_applications)?;
    let now = iso8601(now_ms());
    let rule = SipRule {
        sip_rule_id: validate::new_guid(),
        name: input.name,
        disabled: input.disabled.unwrap_or(false),
        trigger_type: input.trigger_type,
        trigger_value,
        target_applications: targets,
        created_timestamp: now.clone(),
        updated_timestamp: now,
        declared: false,
    };
    tx.put(&rule)?;
    Ok(wrap("SipRule", public(&rule)))
}

pub fn get(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let rule = load(tx, request.label("sipRuleId")?)?;
    Ok(wrap("SipRule", public(&rule)))
}

pub fn list(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let mut rules = tx.list::<SipRule>()?;
    if let Some(app) = request.query("sip-media-application") {
        applications::load(tx, app)?;
        rules.retain(|r| {
            r.target_applications
                .iter()
                .any(|t| t.sip_media_application_id == app)
        });
    }
    let (page, next) = paginate(rules, request, |r| r.sip_rule_id.as_str())?;
    Ok(list_reply(
        "SipRules",
        page.iter().map(public).collect(),
        next,
    ))
}

pub fn update(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let input: UpdateInput = request.body()?;
    let mut rule = load(tx, request.label("sipRuleId")?)?;
    validate::resource_name("Name", &input.name)?;
    rule.name = input.name;
    if let Some(list) = input.target_applications {
        rule.target_applications = targets(tx, list)?;
    }
    if let Some(disabled) = input.disabled {
        rule.disabled = disabled;
    }
    if !rule.disabled {
        // Re-enabled (or its targets changed): everything it names must still exist.
        for t in &rule.target_applications {
            if tx
                .get::<sma_store::records::SipMediaApplication>(&t.sip_media_application_id)?
                .is_none()
            {
                return Err(ApiError::bad_request(format!(
                    "SIP rule `{}` targets SIP media application `{}`, which no longer exists; give new TargetApplications",
                    rule.sip_rule_id, t.sip_media_application_id
                )));
            }
        }
    }
    rule.updated_timestamp = iso8601(now_ms());
    tx.put(&rule)?;
    Ok(wrap("SipRule", public(&rule)))
}

pub fn delete(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let rule = load(tx, request.label("sipRuleId")?)?;
    if !rule.disabled {
        return Err(ApiError::conflict(format!(
            "SIP rule `{}` is enabled; disable it (UpdateSipRule with Disabled) before deleting it",
            rule.sip_rule_id
        )));
    }
    tx.delete::<SipRule>(&rule.sip_rule_id)?;
    Ok(None)
}
