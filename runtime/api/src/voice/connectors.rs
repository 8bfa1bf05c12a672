//! Voice connectors: Create, Get, List, Update, Delete; their termination, origination,
//! termination credentials, logging and streaming configurations; phone number
//! associations; termination health.

use super::{list_reply, paginate, validate, wrap, Ctx, OpRequest, Reply};
use crate::error::ApiError;
use serde::Deserialize;
use serde_json::{json, Value};
use sma_store::records::{
    public, Credential, LoggingConfiguration, Origination, OriginationRoute, PhoneNumber,
    PhoneNumberAssociation, Tag, Termination, VoiceConnector, VoiceConnectorGroup,
};
use sma_store::time::{iso8601, now_ms};
use sma_store::Tx;

/// The model's `VoiceConnectorAwsRegion` enumeration.
const VOICE_CONNECTOR_REGIONS: &[&str] = &[
    "us-east-1",
    "us-west-2",
    "ca-central-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
    "ap-northeast-2",
    "ap-northeast-1",
    "ap-southeast-1",
    "ap-southeast-2",
];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateInput {
    name: String,
    aws_region: Option<String>,
    require_encryption: bool,
    tags: Option<Vec<Tag>>,
    integration_type: Option<String>,
    network_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateInput {
    name: String,
    require_encryption: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TerminationInput {
    cps_limit: Option<i64>,
    default_phone_number: Option<String>,
    calling_regions: Option<Vec<String>>,
    cidr_allowed_list: Option<Vec<String>>,
    disabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutTermination {
    termination: TerminationInput,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialInput {
    username: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutCredentials {
    credentials: Option<Vec<CredentialInput>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteCredentials {
    usernames: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RouteInput {
    host: Option<String>,
    port: Option<i64>,
    protocol: Option<String>,
    priority: Option<i64>,
    weight: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct OriginationInput {
    routes: Option<Vec<RouteInput>>,
    disabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutOrigination {
    origination: OriginationInput,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutLogging {
    logging_configuration: LoggingConfiguration,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TargetInput {
    notification_target: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MediaInsightsInput {
    disabled: Option<bool>,
    configuration_arn: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StreamingInput {
    data_retention_in_hours: i64,
    disabled: bool,
    streaming_notification_targets: Option<Vec<TargetInput>>,
    media_insights_configuration: Option<MediaInsightsInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutStreaming {
    streaming_configuration: StreamingInput,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct AssociateInput {
    #[serde(rename = "E164PhoneNumbers")]
    pub e164_phone_numbers: Vec<String>,
    pub force_associate: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DisassociateInput {
    #[serde(rename = "E164PhoneNumbers")]
    pub e164_phone_numbers: Vec<String>,
}

pub(crate) fn load(tx: &mut dyn Tx, id: &str) -> Result<VoiceConnector, ApiError> {
    tx.get::<VoiceConnector>(id)?
        .ok_or_else(|| ApiError::not_found(format!("voice connector `{id}` does not exist")))
}

fn save(tx: &mut dyn Tx, mut vc: VoiceConnector) -> Result<VoiceConnector, ApiError> {
    vc.updated_timestamp = iso8601(now_ms());
    tx.put(&vc)?;
    Ok(vc)
}

pub fn create(ctx: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let input: CreateInput = request.body()?;
    validate::resource_name("Name", &input.name)?;
    let region = input
        .aws_region
        .unwrap_or_else(|| ctx.default_region().to_owned());
    validate::one_of("AwsRegion", &region, VOICE_CONNECTOR_REGIONS)?;
    ctx.check_region("AwsRegion", &region)?;
    if let Some(t) = &input.integration_type {
        validate::one_of(
            "IntegrationType",
            t,
            &[
                "CONNECT_CALL_TRANSFER_CONNECTOR",
                "CONNECT_ANALYTICS_CONNECTOR",
            ],
        )?;
    }
    if let Some(t) = &input.network_type {
        validate::one_of("NetworkType", t, &["IPV4_ONLY", "DUAL_STACK"])?;
    }
    let tags = validate::new_tags(input.tags, ctx.deployment.limits.tags_per_resource)?;
    let id = validate::new_voice_connector_id();
    let now = iso8601(now_ms());
    let vc = VoiceConnector {
        outbound_host_name: format!("{id}.{}", ctx.deployment.voice_connector_domain),
        voice_connector_arn: ctx.arn(&region, "vc", &id),
        voice_connector_id: id,
        aws_region: region,
        name: input.name,
        require_encryption: input.require_encryption,
        created_timestamp: now.clone(),
        updated_timestamp: now,
        integration_type: input.integration_type,
        network_type: input.network_type,
        termination: None,
        origination: None,
        credentials: Vec::new(),
        logging: None,
        streaming: None,
        tags,
        declared: false,
        emergency_calling: None,
        digest_algorithms: Vec::new(),
        tls_client_ca_file: None,
    };
    tx.put(&vc)?;
    Ok(wrap("VoiceConnector", public(&vc)))
}

pub fn get(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let vc = load(tx, request.label("voiceConnectorId")?)?;
    Ok(wrap("VoiceConnector", public(&vc)))
}

pub fn list(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let all = tx.list::<VoiceConnector>()?;
    let (page, next) = paginate(all, request, |v| v.voice_connector_id.as_str())?;
    Ok(list_reply(
        "VoiceConnectors",
        page.iter().map(public).collect(),
        next,
    ))
}

pub fn update(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let input: UpdateInput = request.body()?;
    let mut vc = load(tx, request.label("voiceConnectorId")?)?;
    validate::resource_name("Name", &input.name)?;
    vc.name = input.name;
    vc.require_encryption = input.require_encryption;
    let vc = save(tx, vc)?;
    Ok(wrap("VoiceConnector", public(&vc)))
}

/// Numbers associated with a voice connector or group (`name` is the association name).
pub(crate) fn associated_numbers(
    tx: &mut dyn Tx,
    name: &str,
    id: &str,
) -> Result<Vec<String>, ApiError> {
    Ok(tx
        .list::<PhoneNumber>()?
        .into_iter()
        .filter(|n| {
            n.associations
                .iter()
                .any(|a| a.name == name && a.value == id)
        })
        .map(|n| n.e164_phone_number)
        .collect())
}

pub fn delete(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let vc = load(tx, request.label("voiceConnectorId")?)?;
    let numbers = associated_numbers(tx, "VoiceConnectorId", &vc.voice_connector_id)?;
    if !numbers.is_empty() {
        return Err(ApiError::conflict(format!(
            "voice connector `{}` has {} phone number(s) assigned ({}); disassociate them first",
            vc.voice_connector_id,
            numbers.len(),
            numbers
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if let Some(group) = tx.list::<VoiceConnectorGroup>()?.into_iter().find(|g| {
        g.voice_connector_items
            .iter()
            .any(|i| i.voice_connector_id == vc.voice_connector_id)
    }) {
        return Err(ApiError::conflict(format!(
            "voice connector `{}` is an item of voice connector group `{}`; remove it from the group first",
            vc.voice_connector_id, group.voice_connector_group_id
        )));
    }
    tx.delete::<VoiceConnector>(&vc.voice_connector_id)?;
    Ok(None)
}

pub fn put_termination(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: PutTermination = request.body()?;
    let mut vc = load(tx, request.label("voiceConnectorId")?)?;
    let t = input.termination;
    if let Some(cps) = t.cps_limit {
        validate::range("Termination.CpsLimit", cps, 1, i64::from(u32::MAX))?;
    }
    let default_phone_number = t
        .default_phone_number
        .map(|n| validate::e164("Termination.DefaultPhoneNumber", &n))
        .transpose()?;
    let calling_regions = t.calling_regions.unwrap_or_default();
    for (i, r) in calling_regions.iter().enumerate() {
        if r.len() != 2 || !r.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ApiError::bad_request(format!(
                "Termination.CallingRegions[{i}] `{r}` is not an ISO 3166 alpha-2 country code (e.g. US)"
            )));
        }
    }
    let cidrs = t.cidr_allowed_list.unwrap_or_default();
    for (i, c) in cidrs.iter().enumerate() {
        if !valid_cidr(c) {
            return Err(ApiError::bad_request(format!(
                "Termination.CidrAllowedList[{i}] `{c}` is not a CIDR block (e.g. 203.0.113.0/24)"
            )));
        }
    }
    let termination = Termination {
        cps_limit: Some(t.cps_limit.map_or(1, |c| c as u32)),
        default_phone_number,
        calling_regions,
        cidr_allowed_list: cidrs,
        disabled: t.disabled.unwrap_or(false),
    };
    vc.termination = Some(termination.clone());
    save(tx, vc)?;
    Ok(wrap("Termination", json(&termination)))
}

/// `address/prefix` with an IPv4 or IPv6 address and a prefix the family allows.
fn valid_cidr(text: &str) -> bool {
    let Some((addr, prefix)) = text.split_once('/') else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => prefix <= 32,
        Ok(std::net::IpAddr::V6(_)) => prefix <= 128,
        Err(_) => false,
    }
}

/// NotFound for a sub-configuration `what` the connector `id` does not have.
fn absent(id: &str, what: &str) -> ApiError {
    ApiError::not_found(format!(
        "voice connector `{id}` has no {what} configuration"
    ))
}

/// A Get of a sub-configuration: `{member: what pick finds}`, NotFound when it is unset.
fn get_part(
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
    member: &str,
    what: &str,
    pick: impl FnOnce(VoiceConnector) -> Option<Value>,
) -> Result<Reply, ApiError> {
    let vc = load(tx, request.label("voiceConnectorId")?)?;
    let id = vc.voice_connector_id.clone();
    let value = pick(vc).ok_or_else(|| absent(&id, what))?;
    Ok(wrap(member, value))
}

/// A Delete of a sub-configuration: `clear` removes it and says whether there was one.
fn delete_part(
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
    what: &str,
    clear: impl FnOnce(&mut VoiceConnector) -> bool,
) -> Result<Reply, ApiError> {
    let mut vc = load(tx, request.label("voiceConnectorId")?)?;
    if !clear(&mut vc) {
        return Err(absent(&vc.voice_connector_id, what));
    }
    save(tx, vc)?;
    Ok(None)
}

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

pub fn get_termination(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    get_part(tx, request, "Termination", "termination", |vc| {
        vc.termination.as_ref().map(json)
    })
}

pub fn delete_termination(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    // The credentials belong to the termination: they go with it.
    delete_part(tx, request, "termination", |vc| {
        vc.credentials.clear();
        vc.termination.take().is_some()
    })
}

pub fn put_credentials(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: PutCredentials = request.body()?;
    let mut vc = load(tx, request.label("voiceConnectorId")?)?;
    for (i, c) in input
        .credentials
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let username = c.username.filter(|u| !u.is_empty()).ok_or_else(|| {
            ApiError::bad_request(format!("Credentials[{i}].Username is required"))
        })?;
        let password = c.password.filter(|p| !p.is_empty()).ok_or_else(|| {
            ApiError::bad_request(format!("Credentials[{i}].Password is required"))
        })?;
        if username.len() > 256 || password.len() > 256 || username.contains(['"', '\\']) {
            return Err(ApiError::bad_request(format!(
                "Credentials[{i}]: Username and Password must be at most 256 characters and the Username without quotes or backslashes"
            )));
        }
        vc.credentials.retain(|k| k.username != username);
        vc.credentials.push(Credential { username, password });
    }
    save(tx, vc)?;
    Ok(None)
}

pub fn list_credentials(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let vc = load(tx, request.label("voiceConnectorId")?)?;
    let names: Vec<&str> = vc.credentials.iter().map(|c| c.username.as_str()).collect();
    Ok(Some(json!({"Usernames": names})))
}

pub fn delete_credentials(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: DeleteCredentials = request.body()?;
    let mut vc = load(tx, request.label("voiceConnectorId")?)?;
    validate::count("Usernames", input.usernames.len(), 1, usize::MAX)?;
    for name in &input.usernames {
        if !vc.credentials.iter().any(|c| &c.username == name) {
            return Err(ApiError::not_found(format!(
                "voice connector `{}` has no termination credential for username `{name}`",
                vc.voice_connector_id
            )));
        }
    }
    vc.credentials
        .retain(|c| !input.usernames.contains(&c.username));
    save(tx, vc)?;
    Ok(None)
}

pub fn put_origination(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: PutOrigination = request.body()?;
    let mut vc = load(tx, request.label("voiceConnectorId")?)?;
    let mut routes = Vec::new();
    let given = input.origination.routes.unwrap_or_default();
    validate::count("Origination.Routes", given.len(), 0, 20)?;
    for (i, r) in given.into_iter().enumerate() {
        let field = format!("Origination.Routes[{i}]");
        let host = r
            .host
            .ok_or_else(|| ApiError::bad_request(format!("{field}.Host is required")))?;
        if host.parse::<std::net::IpAddr>().is_err() {
            validate::host_name(&format!("{field}.Host"), &host)?;
        }
        let port = r.port.unwrap_or(5060);
        validate::range(&format!("{field}.Port"), port, 0, 65535)?;
        let protocol = r.protocol.unwrap_or_else(|| "UDP".into());
        validate::one_of(&format!("{field}.Protocol"), &protocol, &["TCP", "UDP"])?;
        let priority = r
            .priority
            .ok_or_else(|| ApiError::bad_request(format!("{field}.Priority is required")))?;
        validate::range(&format!("{field}.Priority"), priority, 1, 100)?;
        let weight = r
            .weight
            .ok_or_else(|| ApiError::bad_request(format!("{field}.Weight is required")))?;
        validate::range(&format!("{field}.Weight"), weight, 1, 100)?;
        routes.push(OriginationRoute {
            host,
            port: port as u16,
            protocol,
            priority: priority as u32,
            weight: weight as u32,
        });
    }
    let origination = Origination {
        routes,
        disabled: input.origination.disabled.unwrap_or(false),
    };
    vc.origination = Some(origination.clone());
    save(tx, vc)?;
    Ok(wrap("Origination", json(&origination)))
}

pub fn get_origination(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    get_part(tx, request, "Origination", "origination", |vc| {
        vc.origination.as_ref().map(json)
    })
}

pub fn delete_origination(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    delete_part(tx, request, "origination", |vc| {
        vc.origination.take().is_some()
    })
}

pub fn put_logging(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: PutLogging = request.body()?;
    let mut vc = load(tx, request.label("voiceConnectorId")?)?;
    vc.logging = Some(input.logging_configuration.clone());
    save(tx, vc)?;
    Ok(wrap(
        "LoggingConfiguration",
        json(&input.logging_configuration),
    ))
}

pub fn get_logging(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let vc = load(tx, request.label("voiceConnectorId")?)?;
    let logging = vc.logging.unwrap_or_default();
    Ok(wrap("LoggingConfiguration", json(&logging)))
}

pub fn put_streaming(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: PutStreaming = request.body()?;
    let mut vc = load(tx, request.label("voiceConnectorId")?)?;
    let s = input.streaming_configuration;
    validate::range(
        "StreamingConfiguration.DataRetentionInHours",
        s.data_retention_in_hours,
        0,
        i64::from(u32::MAX),
    )?;
    let mut out =
        json!({"DataRetentionInHours": s.data_retention_in_hours, "Disabled": s.disabled});
    if let Some(targets) = s.streaming_notification_targets {
        validate::count(
            "StreamingConfiguration.StreamingNotificationTargets",
            targets.len(),
            1,
            3,
        )?;
        let mut list = Vec::new();
        for (i, t) in targets.into_iter().enumerate() {
            let target = t.notification_target.ok_or_else(|| {
                ApiError::bad_request(format!(
                    "StreamingConfiguration.StreamingNotificationTargets[{i}].NotificationTarget is required"
                ))
            })?;
            validate::one_of(
                &format!(
                    "StreamingConfiguration.StreamingNotificationTargets[{i}].NotificationTarget"
                ),
                &target,
                &["EventBridge", "SNS", "SQS"],
            )?;
            list.push(json!({"NotificationTarget": target}));
        }
        out["StreamingNotificationTargets"] = Value::Array(list);
    }
    if let Some(m) = s.media_insights_configuration {
        let mut v = json!({});
        if let Some(d) = m.disabled {
            v["Disabled"] = Value::from(d);
        }
        if let Some(arn) = m.configuration_arn {
            if !(1..=1024).contains(&arn.len()) || !arn.starts_with("arn") {
                return Err(ApiError::bad_request(format!(
                    "StreamingConfiguration.MediaInsightsConfiguration.ConfigurationArn `{arn}` is not an ARN"
                )));
            }
            v["ConfigurationArn"] = Value::from(arn);
        }
        out["MediaInsightsConfiguration"] = v;
    }
    vc.streaming = Some(out.clone());
    save(tx, vc)?;
    Ok(wrap("StreamingConfiguration", out))
}

pub fn get_streaming(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    get_part(tx, request, "StreamingConfiguration", "streaming", |vc| {
        vc.streaming
    })
}

pub fn delete_streaming(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    delete_part(tx, request, "streaming", |vc| vc.streaming.take().is_some())
}

pub fn termination_health(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let vc = load(tx, request.label("voiceConnectorId")?)?;
    let (ms, source) = ctx
        .runtime
        .termination_health(&vc.voice_connector_id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "voice connector `{}` has no termination health yet: no SIP request has arrived through it since this node started",
                vc.voice_connector_id
            ))
        })?;
    Ok(wrap(
        "TerminationHealth",
        json!({"Timestamp": iso8601(ms), "Source": source}),
    ))
}

/// Associates numbers with a voice connector or group (`name`: the association name).
/// Item failures are reported per number; a limit overrun refuses the whole request.
pub(crate) fn associate(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    name: &str,
    id: &str,
    input: AssociateInput,
) -> Result<Reply, ApiError> {
    validate::count(
        "E164PhoneNumbers",
        input.e164_phone_numbers.len(),
        1,
        usize::MAX,
    )?;
    let force = input.force_associate.unwrap_or(false);
    let rules = tx.list::<sma_store::records::SipRule>()?;
    let mut errors = Vec::new();
    let now = iso8601(now_ms());
    for (i, given) in input.e164_phone_numbers.iter().enumerate() {
        let e164 = validate::e164(&format!("E164PhoneNumbers[{i}]"), given)?;
        let failure = |code: &str, message: String| json!({"PhoneNumberId": e164, "ErrorCode": code, "ErrorMessage": message});
        let Some(mut number) = tx.get::<PhoneNumber>(&e164)? else {
            errors.push(failure(
                "NotFound",
                format!("{e164} is not in the inventory"),
            ));
            continue;
        };
        if number.status == "DeleteInProgress" {
            errors.push(failure("BadRequest", format!("{e164} is deleted")));
            continue;
        }
        if number.product_type != "VoiceConnector" {
            errors.push(failure(
                "Conflict",
                format!(
                    "{e164} is a {} number; only VoiceConnector numbers can be associated with a voice connector",
                    number.product_type
                ),
            ));
            continue;
        }
        if let Some(rule) = rules
            .iter()
            .find(|r| r.trigger_type == "ToPhoneNumber" && r.trigger_value == e164)
        {
            errors.push(failure(
                "Conflict",
                format!("{e164} is the trigger of SIP rule `{}`", rule.sip_rule_id),
            ));
            continue;
        }
        if number
            .associations
            .iter()
            .any(|a| a.name == name && a.value == id)
        {
            continue;
        }
        if let Some(other) = number.associations.first() {
            if !force {
                errors.push(failure(
                    "Conflict",
                    format!(
                        "{e164} is associated with {} {}; set ForceAssociate to move it",
                        other.name, other.value
                    ),
                ));
                continue;
            }
        }
        number.associations = vec![PhoneNumberAssociation {
            value: id.into(),
            name: name.into(),
            associated_timestamp: now.clone(),
        }];
        number.updated_timestamp = now.clone();
        tx.put(&number)?;
    }
    let limit = ctx.deployment.limits.numbers_per_voice_connector;
    let count = associated_numbers(tx, name, id)?.len();
    if count > limit {
        return Err(ApiError::limit_exceeded(format!(
            "{name} {id} would have {count} phone numbers; the limit is {limit}"
        )));
    }
    Ok(Some(json!({"PhoneNumberErrors": errors})))
}

/// Removes numbers' association with a voice connector or group.
pub(crate) fn disassociate(
    tx: &mut dyn Tx,
    name: &str,
    id: &str,
    input: DisassociateInput,
) -> Result<Reply, ApiError> {
    validate::count(
        "E164PhoneNumbers",
        input.e164_phone_numbers.len(),
        1,
        usize::MAX,
    )?;
    let mut errors = Vec::new();
    let now = iso8601(now_ms());
    for (i, given) in input.e164_phone_numbers.iter().enumerate() {
        let e164 = validate::e164(&format!("E164PhoneNumbers[{i}]"), given)?;
        let number = tx.get::<PhoneNumber>(&e164)?;
        match number {
            Some(mut n)
                if n.associations
                    .iter()
                    .any(|a| a.name == name && a.value == id) =>
            {
                n.associations
                    .retain(|a| !(a.name == name && a.value == id));
                n.updated_timestamp = now.clone();
                tx.put(&n)?;
            }
            Some(_) => errors.push(json!({
                "PhoneNumberId": e164, "ErrorCode": "BadRequest",
                "ErrorMessage": format!("{e164} is not associated with {name} {id}")
            })),
            None => errors.push(json!({
                "PhoneNumberId": e164, "ErrorCode": "NotFound",
                "ErrorMessage": format!("{e164} is not in the inventory")
            })),
        }
    }
    Ok(Some(json!({"PhoneNumberErrors": errors})))
}

pub fn associate_numbers(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: AssociateInput = request.body()?;
    let vc = load(tx, request.label("voiceConnectorId")?)?;
    associate(ctx, tx, "VoiceConnectorId", &vc.voice_connector_id, input)
}

pub fn disassociate_numbers(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let input: DisassociateInput = request.body()?;
    let vc = load(tx, request.label("voiceConnectorId")?)?;
    disassociate(tx, "VoiceConnectorId", &vc.voice_connector_id, input)
}
