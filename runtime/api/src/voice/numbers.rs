//! Phone numbers: orders (numbers the operator owns enter the inventory), Get, List with
//! filters, Update, Delete (into a restorable deletion queue), Restore and the batch forms.
//!
//! A number's `SipRuleId` associations and its `Assigned`/`Unassigned` status are derived
//! from the rules when it is read, so they can never disagree with them.

use super::{list_reply, paginate, validate, wrap, Ctx, OpRequest, Reply};
use crate::error::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};
use sma_store::records::{
    public, OrderedPhoneNumber, PhoneNumber, PhoneNumberAssociation, PhoneNumberOrder, SipRule,
};
use sma_store::time::{iso8601, now_ms};
use sma_store::Tx;

const PRODUCT_TYPES: &[&str] = &["VoiceConnector", "SipMediaApplicationDialIn"];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OrderInput {
    product_type: String,
    #[serde(rename = "E164PhoneNumbers")]
    e164_phone_numbers: Vec<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateInput {
    product_type: Option<String>,
    calling_name: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateItem {
    phone_number_id: String,
    product_type: Option<String>,
    calling_name: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchUpdateInput {
    update_phone_number_request_items: Vec<UpdateItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchDeleteInput {
    phone_number_ids: Vec<String>,
}

/// A number as a client sees it, with its rule associations and status derived.
pub(crate) fn view(number: &PhoneNumber, rules: &[SipRule]) -> Value {
    let mut shown = number.clone();
    for rule in rules.iter().filter(|r| {
        r.trigger_type == "ToPhoneNumber" && r.trigger_value == number.e164_phone_number
    }) {
        shown.associations.push(PhoneNumberAssociation {
            value: rule.sip_rule_id.clone(),
            name: "SipRuleId".into(),
            associated_timestamp: rule.created_timestamp.clone(),
        });
    }
    if shown.status != "DeleteInProgress" {
        shown.status = if shown.associations.is_empty() {
            "Unassigned".into()
        } else {
            "Assigned".into()
        };
    }
    public(&shown)
}

/// The phone number `id` (with or without its `+`), or NotFound.
pub(crate) fn load(tx: &mut dyn Tx, id: &str) -> Result<PhoneNumber, ApiError> {
    let key = validate::e164("PhoneNumberId", id)
        .map_err(|_| ApiError::not_found(format!("phone number `{id}` does not exist")))?;
    tx.get::<PhoneNumber>(&key)?
        .ok_or_else(|| ApiError::not_found(format!("phone number {key} does not exist")))
}

/// The rules that trigger on `number`.
fn rules_of(rules: &[SipRule], number: &str) -> Vec<String> {
    rules
        .iter()
        .filter(|r| r.trigger_type == "ToPhoneNumber" && r.trigger_value == number)
        .map(|r| r.sip_rule_id.clone())
        .collect()
}

/// A new inventory entry for a number the operator owns.
fn new_number(
    ctx: &Ctx<'_>,
    e164: &str,
    product_type: &str,
    order_id: Option<String>,
    name: Option<String>,
) -> PhoneNumber {
    let arn = ctx.arn(ctx.default_region(), "phone-number", e164);
    let mut number = PhoneNumber::new_in_inventory(e164, product_type, arn, &iso8601(now_ms()));
    number.order_id = order_id;
    number.name = name;
    number
}

pub fn create_order(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: OrderInput = request.body()?;
    validate::one_of("ProductType", &input.product_type, PRODUCT_TYPES)?;
    validate::count(
        "E164PhoneNumbers",
        input.e164_phone_numbers.len(),
        1,
        ctx.deployment.limits.numbers_per_order,
    )?;
    if let Some(name) = &input.name {
        validate::phone_number_name(name)?;
    }
    let mut wanted = Vec::new();
    for (i, n) in input.e164_phone_numbers.iter().enumerate() {
        let number = validate::e164(&format!("E164PhoneNumbers[{i}]"), n)?;
        if wanted.contains(&number) {
            return Err(ApiError::bad_request(format!(
                "E164PhoneNumbers[{i}] {number} is listed twice"
            )));
        }
        wanted.push(number);
    }
    let order_id = validate::new_guid();
    let mut ordered = Vec::new();
    for number in wanted {
        // A number already in the inventory (or in its deletion queue) is not ordered twice.
        let status = if tx.get::<PhoneNumber>(&number)?.is_some() {
            "Failed"
        } else {
            let record = new_number(
                ctx,
                &number,
                &input.product_type,
                Some(order_id.clone()),
                input.name.clone(),
            );
            tx.put(&record)?;
            "Acquired"
        };
        ordered.push(OrderedPhoneNumber {
            e164_phone_number: number,
            status: status.into(),
        });
    }
    let acquired = ordered.iter().filter(|o| o.status == "Acquired").count();
    let now = iso8601(now_ms());
    let order = PhoneNumberOrder {
        phone_number_order_id: order_id,
        product_type: input.product_type,
        status: match acquired {
            0 => "Failed",
            n if n == ordered.len() => "Successful",
            _ => "Partial",
        }
        .into(),
        order_type: "New".into(),
        ordered_phone_numbers: ordered,
        created_timestamp: now.clone(),
        updated_timestamp: now,
    };
    tx.put(&order)?;
    Ok(wrap("PhoneNumberOrder", public(&order)))
}

pub fn get_order(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let id = request.label("phoneNumberOrderId")?;
    let order = tx
        .get::<PhoneNumberOrder>(id)?
        .ok_or_else(|| ApiError::not_found(format!("phone number order `{id}` does not exist")))?;
    Ok(wrap("PhoneNumberOrder", public(&order)))
}

pub fn list_orders(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let orders = tx.list::<PhoneNumberOrder>()?;
    let (page, next) = paginate(orders, request, |o| o.phone_number_order_id.as_str())?;
    Ok(list_reply(
        "PhoneNumberOrders",
        page.iter().map(public).collect(),
        next,
    ))
}

pub fn get(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let number = load(tx, request.label("phoneNumberId")?)?;
    let rules = tx.list::<SipRule>()?;
    Ok(wrap("PhoneNumber", view(&number, &rules)))
}

pub fn list(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let rules = tx.list::<SipRule>()?;
    let numbers = tx.list::<PhoneNumber>()?;
    if let Some(p) = request.query("product-type") {
        validate::one_of("ProductType", p, PRODUCT_TYPES)?;
    }
    let filter = match (request.query("filter-name"), request.query("filter-value")) {
        (Some(name), Some(value)) => {
            validate::one_of(
                "FilterName",
                name,
                &["VoiceConnectorId", "VoiceConnectorGroupId", "SipRuleId"],
            )?;
            Some((name, value))
        }
        (None, None) => None,
        _ => {
            return Err(ApiError::bad_request(
                "FilterName and FilterValue must be given together",
            ))
        }
    };
    let mut shown = Vec::new();
    for number in &numbers {
        let v = view(number, &rules);
        if let Some(status) = request.query("status") {
            if v["Status"] != status {
                continue;
            }
        }
        if let Some(p) = request.query("product-type") {
            if number.product_type != p {
                continue;
            }
        }
        if let Some((name, value)) = filter {
            let matches = v["Associations"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x["Name"] == name && x["Value"] == value));
            if !matches {
                continue;
            }
        }
        shown.push((number.phone_number_id.clone(), v));
    }
    let (page, next) = paginate(shown, request, |(id, _)| id.as_str())?;
    Ok(list_reply(
        "PhoneNumbers",
        page.into_iter().map(|(_, v)| v).collect(),
        next,
    ))
}

/// Applies an update to one number (shared by Update and BatchUpdate).
fn apply_update(
    tx: &mut dyn Tx,
    rules: &[SipRule],
    id: &str,
    product_type: Option<String>,
    calling_name: Option<String>,
    name: Option<String>,
) -> Result<PhoneNumber, ApiError> {
    let mut number = load(tx, id)?;
    if number.status == "DeleteInProgress" {
        return Err(ApiError::bad_request(format!(
            "phone number {} is deleted; restore it before updating it",
            number.e164_phone_number
        )));
    }
    if let Some(p) = product_type {
        validate::one_of("ProductType", &p, PRODUCT_TYPES)?;
        if p != number.product_type {
            let rules = rules_of(rules, &number.e164_phone_number);
            if !number.associations.is_empty() || !rules.is_empty() {
                return Err(ApiError::conflict(format!(
                    "phone number {} is assigned ({}) as a {} number; disassociate it before changing its ProductType",
                    number.e164_phone_number,
                    number
                        .associations
                        .iter()
                        .map(|a| format!("{} {}", a.name, a.value))
                        .chain(rules.iter().map(|r| format!("SipRuleId {r}")))
                        .collect::<Vec<_>>()
                        .join(", "),
                    number.product_type
                )));
            }
            number.product_type = p;
        }
    }
    if let Some(c) = calling_name {
        validate::calling_name(&c)?;
        number.calling_name_status = if c.is_empty() {
            "Unassigned".into()
        } else {
            "UpdateSucceeded".into()
        };
        number.calling_name = (!c.is_empty()).then_some(c);
    }
    if let Some(n) = name {
        validate::phone_number_name(&n)?;
        number.name = (!n.is_empty()).then_some(n);
    }
    number.updated_timestamp = iso8601(now_ms());
    tx.put(&number)?;
    Ok(number)
}

pub fn update(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let id = request.label("phoneNumberId")?;
    let input: UpdateInput = request.body()?;
    let rules = tx.list::<SipRule>()?;
    let number = apply_update(
        tx,
        &rules,
        id,
        input.product_type,
        input.calling_name,
        input.name,
    )?;
    Ok(wrap("PhoneNumber", view(&number, &rules)))
}

/// Moves one number to the deletion queue (shared by Delete and BatchDelete).
fn apply_delete(tx: &mut dyn Tx, rules: &[SipRule], id: &str) -> Result<(), ApiError> {
    let mut number = load(tx, id)?;
    if number.status == "DeleteInProgress" {
        return Err(ApiError::bad_request(format!(
            "phone number {} is already deleted",
            number.e164_phone_number
        )));
    }
    let by_rules = rules_of(rules, &number.e164_phone_number);
    if let Some(a) = number.associations.first() {
        return Err(ApiError::conflict(format!(
            "phone number {} is associated with {} {}; disassociate it first",
            number.e164_phone_number, a.name, a.value
        )));
    }
    if let Some(rule) = by_rules.first() {
        return Err(ApiError::conflict(format!(
            "phone number {} is the trigger of SIP rule `{rule}`; delete the rule first",
            number.e164_phone_number
        )));
    }
    let now = iso8601(now_ms());
    number.status = "DeleteInProgress".into();
    number.deletion_timestamp = Some(now.clone());
    number.updated_timestamp = now;
    tx.put(&number)?;
    Ok(())
}

pub fn delete(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let rules = tx.list::<SipRule>()?;
    apply_delete(tx, &rules, request.label("phoneNumberId")?)?;
    Ok(None)
}

pub fn restore(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let mut number = load(tx, request.label("phoneNumberId")?)?;
    if number.status != "DeleteInProgress" {
        return Err(ApiError::bad_request(format!(
            "phone number {} is not deleted; only a deleted number can be restored",
            number.e164_phone_number
        )));
    }
    number.status = "Unassigned".into();
    number.deletion_timestamp = None;
    number.updated_timestamp = iso8601(now_ms());
    tx.put(&number)?;
    let rules = tx.list::<SipRule>()?;
    Ok(wrap("PhoneNumber", view(&number, &rules)))
}

/// `{"PhoneNumberId", "ErrorCode", "ErrorMessage"}` for a batch item that failed.
fn item_error(id: &str, e: &ApiError) -> Value {
    let code = match e.code {
        "NotFoundException" => "NotFound",
        "ConflictException" => "Conflict",
        "ResourceLimitExceededException" => "ResourceLimitExceeded",
        "ServiceFailureException" => "ServiceFailure",
        _ => "BadRequest",
    };
    json!({"PhoneNumberId": id, "ErrorCode": code, "ErrorMessage": e.message})
}

pub fn batch_update(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: BatchUpdateInput = request.body()?;
    validate::count(
        "UpdatePhoneNumberRequestItems",
        input.update_phone_number_request_items.len(),
        1,
        ctx.deployment.limits.batch_items,
    )?;
    let rules = tx.list::<SipRule>()?;
    let mut errors = Vec::new();
    for item in input.update_phone_number_request_items {
        if let Err(e) = apply_update(
            tx,
            &rules,
            &item.phone_number_id,
            item.product_type,
            item.calling_name,
            item.name,
        ) {
            if e.code == "ServiceFailureException" {
                return Err(e);
            }
            errors.push(item_error(&item.phone_number_id, &e));
        }
    }
    Ok(Some(json!({"PhoneNumberErrors": errors})))
}

pub fn batch_delete(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: BatchDeleteInput = request.body()?;
    validate::count(
        "PhoneNumberIds",
        input.phone_number_ids.len(),
        1,
        ctx.deployment.limits.batch_items,
    )?;
    let rules = tx.list::<SipRule>()?;
    let mut errors = Vec::new();
    for id in &input.phone_number_ids {
        if let Err(e) = apply_delete(tx, &rules, id) {
            if e.code == "ServiceFailureException" {
                return Err(e);
            }
            errors.push(item_error(id, &e));
        }
    }
    Ok(Some(json!({"PhoneNumberErrors": errors})))
}
