//! Voice connector groups: Create, Get, List, Update, Delete, phone number associations.

use super::connectors::{self, AssociateInput, DisassociateInput};
use super::{list_reply, paginate, validate, wrap, Ctx, OpRequest, Reply};
use crate::error::ApiError;
use serde::Deserialize;
use sma_store::records::{public, VoiceConnectorGroup, VoiceConnectorItem};
use sma_store::time::{iso8601, now_ms};
use sma_store::Tx;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ItemInput {
    voice_connector_id: String,
    priority: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GroupInput {
    name: String,
    voice_connector_items: Option<Vec<ItemInput>>,
    call_distribution_type: Option<String>,
}

fn load(tx: &mut dyn Tx, id: &str) -> Result<VoiceConnectorGroup, ApiError> {
    tx.get::<VoiceConnectorGroup>(id)?
        .ok_or_else(|| ApiError::not_found(format!("voice connector group `{id}` does not exist")))
}

fn items(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    input: Vec<ItemInput>,
) -> Result<Vec<VoiceConnectorItem>, ApiError> {
    let limit = ctx.deployment.limits.voice_connector_group_items;
    if input.len() > limit {
        return Err(ApiError::limit_exceeded(format!(
            "VoiceConnectorItems has {} voice connectors; a group holds at most {limit}",
            input.len()
        )));
    }
    let mut out: Vec<VoiceConnectorItem> = Vec::new();
    for (i, item) in input.into_iter().enumerate() {
        let field = format!("VoiceConnectorItems[{i}]");
        connectors::load(tx, &item.voice_connector_id)
            .map_err(|e| ApiError::not_found(format!("{field}.VoiceConnectorId: {}", e.message)))?;
        let priority = item
            .priority
            .ok_or_else(|| ApiError::bad_request(format!("{field}.Priority is required")))?;
        validate::range(&format!("{field}.Priority"), priority, 1, 99)?;
        if out
            .iter()
            .any(|o| o.voice_connector_id == item.voice_connector_id)
        {
            return Err(ApiError::bad_request(format!(
                "{field}.VoiceConnectorId `{}` is listed twice",
                item.voice_connector_id
            )));
        }
        out.push(VoiceConnectorItem {
            voice_connector_id: item.voice_connector_id,
            priority: priority as u32,
        });
    }
    Ok(out)
}

fn distribution(value: &Option<String>) -> Result<(), ApiError> {
    if let Some(d) = value {
        validate::one_of(
            "CallDistributionType",
            d,
            &["PriorityWeightedDistribution", "LoadBalancedDistribution"],
        )?;
    }
    Ok(())
}

pub fn create(ctx: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let input: GroupInput = request.body()?;
    validate::resource_name("Name", &input.name)?;
    distribution(&input.call_distribution_type)?;
    let items = items(ctx, tx, input.voice_connector_items.unwrap_or_default())?;
    let id = validate::new_guid();
    let now = iso8601(now_ms());
    let group = VoiceConnectorGroup {
        voice_connector_group_arn: ctx.arn(ctx.default_region(), "vcg", &id),
        voice_connector_group_id: id,
        name: input.name,
        voice_connector_items: items,
        created_timestamp: now.clone(),
        updated_timestamp: now,
        call_distribution_type: input.call_distribution_type,
    };
    tx.put(&group)?;
    Ok(wrap("VoiceConnectorGroup", public(&group)))
}

pub fn get(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let group = load(tx, request.label("voiceConnectorGroupId")?)?;
    Ok(wrap("VoiceConnectorGroup", public(&group)))
}

pub fn list(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let all = tx.list::<VoiceConnectorGroup>()?;
    let (page, next) = paginate(all, request, |g| g.voice_connector_group_id.as_str())?;
    Ok(list_reply(
        "VoiceConnectorGroups",
        page.iter().map(public).collect(),
        next,
    ))
}

pub fn update(ctx: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let input: GroupInput = request.body()?;
    let mut group = load(tx, request.label("voiceConnectorGroupId")?)?;
    validate::resource_name("Name", &input.name)?;
    distribution(&input.call_distribution_type)?;
    let list = input.voice_connector_items.ok_or_else(|| {
        ApiError::bad_request("VoiceConnectorItems is required (an empty list empties the group)")
    })?;
    group.voice_connector_items = items(ctx, tx, list)?;
    group.name = input.name;
    if input.call_distribution_type.is_some() {
        group.call_distribution_type = input.call_distribution_type;
    }
    group.updated_timestamp = iso8601(now_ms());
    tx.put(&group)?;
    Ok(wrap("VoiceConnectorGroup", public(&group)))
}

pub fn delete(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let group = load(tx, request.label("voiceConnectorGroupId")?)?;
    let numbers = connectors::associated_numbers(
        tx,
        "VoiceConnectorGroupId",
        &group.voice_connector_group_id,
    )?;
    if !numbers.is_empty() {
        return Err(ApiError::conflict(format!(
            "voice connector group `{}` has {} phone number(s) assigned; disassociate them first",
            group.voice_connector_group_id,
            numbers.len()
        )));
    }
    tx.delete::<VoiceConnectorGroup>(&group.voice_connector_group_id)?;
    Ok(None)
}

pub fn associate_numbers(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: AssociateInput = request.body()?;
    let group = load(tx, request.label("voiceConnectorGroupId")?)?;
    connectors::associate(
        ctx,
        tx,
        "VoiceConnectorGroupId",
        &group.voice_connector_group_id,
        input,
    )
}

pub fn disassociate_numbers(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: DisassociateInput = request.body()?;
    let group = load(tx, request.label("voiceConnectorGroupId")?)?;
    connectors::disassociate(
        tx,
        "VoiceConnectorGroupId",
        &group.voice_connector_group_id,
        input,
    )
}
