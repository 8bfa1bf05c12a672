//! Tags on SIP media applications, voice connectors, phone numbers and meetings (by ARN; the
//! tag operations are the same in both models), and the account's global settings.

use super::{validate, Ctx, OpRequest, Reply};
use crate::error::ApiError;
use serde::Deserialize;
use serde_json::json;
use sma_store::records::{
    GlobalSettings, Meeting, PhoneNumber, SipMediaApplication, Tag, VoiceConnector,
};
use sma_store::Tx;

#[derive(Deserialize)]
struct TagInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
    #[serde(rename = "Tags")]
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
struct UntagInput {
    #[serde(rename = "ResourceARN")]
    resource_arn: String,
    #[serde(rename = "TagKeys")]
    tag_keys: Vec<String>,
}

/// A taggable resource found by its ARN.
enum Tagged {
    Application(SipMediaApplication),
    Connector(VoiceConnector),
    Number(PhoneNumber),
    Meeting(Meeting),
}

impl Tagged {
    fn tags(&mut self) -> &mut Vec<Tag> {
        match self {
            Tagged::Application(a) => &mut a.tags,
            Tagged::Connector(v) => &mut v.tags,
            Tagged::Number(n) => &mut n.tags,
            Tagged::Meeting(m) => &mut m.tags,
        }
    }

    fn save(&self, tx: &mut dyn Tx) -> Result<(), ApiError> {
        match self {
            Tagged::Application(a) => tx.put(a)?,
            Tagged::Connector(v) => tx.put(v)?,
            Tagged::Number(n) => tx.put(n)?,
            Tagged::Meeting(m) => tx.put(m)?,
        }
        Ok(())
    }
}

fn find(tx: &mut dyn Tx, arn: &str) -> Result<Tagged, ApiError> {
    let not_found = || ApiError::not_found(format!("no resource has the ARN `{arn}`"));
    if !arn.starts_with("arn:") || !(1..=1024).contains(&arn.len()) {
        return Err(ApiError::bad_request(format!(
            "ResourceARN `{arn}` is not an ARN"
        )));
    }
    let resource = arn.rsplit(':').next().unwrap_or_default();
    let (kind, id) = resource.split_once('/').ok_or_else(not_found)?;
    let found = match kind {
        "sma" => tx
            .get::<SipMediaApplication>(id)?
            .filter(|a| a.sip_media_application_arn == arn)
            .map(Tagged::Application),
        "vc" => tx
            .get::<VoiceConnector>(id)?
            .filter(|v| v.voice_connector_arn == arn)
            .map(Tagged::Connector),
        "phone-number" => tx
            .get::<PhoneNumber>(id)?
            .filter(|n| n.phone_number_arn == arn)
            .map(Tagged::Number),
        "meeting" => tx
            .get::<Meeting>(id)?
            .filter(|m| m.meeting_arn == arn)
            .map(Tagged::Meeting),
        _ => None,
    };
    found.ok_or_else(not_found)
}

pub fn tag(ctx: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let input: TagInput = request.body()?;
    validate::count("Tags", input.tags.len(), 1, 50)?;
    validate::tags(&input.tags)?;
    let mut resource = find(tx, &input.resource_arn)?;
    let tags = resource.tags();
    for tag in input.tags {
        match tags.iter_mut().find(|t| t.key == tag.key) {
            Some(existing) => existing.value = tag.value,
            None => tags.push(tag),
        }
    }
    let limit = ctx.deployment.limits.tags_per_resource;
    if tags.len() > limit {
        return Err(ApiError::limit_exceeded(format!(
            "{} would have {} tags; the limit is {limit}",
            input.resource_arn,
            tags.len()
        )));
    }
    resource.save(tx)?;
    Ok(None)
}

pub fn untag(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let input: UntagInput = request.body()?;
    validate::count("TagKeys", input.tag_keys.len(), 1, 50)?;
    let mut resource = find(tx, &input.resource_arn)?;
    resource.tags().retain(|t| !input.tag_keys.contains(&t.key));
    resource.save(tx)?;
    Ok(None)
}

pub fn list(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let arn = request.query("arn").ok_or_else(|| {
        ApiError::bad_request("ResourceARN (the arn query parameter) is required")
    })?;
    let mut resource = find(tx, arn)?;
    Ok(Some(json!({"Tags": resource.tags()})))
}

#[derive(Deserialize)]
struct GlobalInput {
    /// Required by the model.
    #[serde(rename = "VoiceConnector")]
    voice_connector: Option<GlobalVoiceConnectorInput>,
}

#[derive(Deserialize)]
struct GlobalVoiceConnectorInput {
    #[serde(rename = "CdrBucket")]
    cdr_bucket: Option<String>,
}

pub fn get_global_settings(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    _: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let settings = tx
        .get::<GlobalSettings>(GlobalSettings::ID)?
        .unwrap_or_default();
    Ok(Some(serde_json::to_value(&settings).unwrap_or_default()))
}

pub fn update_global_settings(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: GlobalInput = request.body()?;
    let voice_connector = input
        .voice_connector
        .ok_or_else(|| ApiError::bad_request("VoiceConnector is required"))?;
    let mut settings = GlobalSettings::default();
    if let Some(bucket) = voice_connector.cdr_bucket {
        validate::bucket_name("VoiceConnector.CdrBucket", &bucket)?;
        settings.voice_connector.cdr_bucket = Some(bucket);
    }
    tx.put(&settings)?;
    Ok(None)
}
