//! The `chime-sdk-meetings` operations on the store: meetings and their attendees, with the
//! model's shapes and rules. A meeting is one document holding its attendees (so a batch is
//! created whole or not at all); each attendee's join token is also a document of its own,
//! so a dial-in finds its attendee by the token in one read. What the running meetings must
//! do about a change (release a deleted attendee's call, end a deleted meeting's calls,
//! apply new capabilities) is handed to the runtime as an [`Effect`] once the change commits.

use crate::error::ApiError;
use crate::voice::{list_reply, paginate, validate, wrap, Ctx, Effect, OpRequest, Reply};
use serde::Deserialize;
use serde_json::{json, Value};
use sma_store::records::{Attendee, AttendeeCapabilities, JoinToken, Meeting, MeetingRequest, Tag};
use sma_store::Tx;

/// The operations this module implements, by name.
pub(crate) fn operation(name: &str) -> Option<crate::voice::Operation> {
    Some(match name {
        "CreateMeeting" => create_meeting,
        "CreateMeetingWithAttendees" => create_meeting_with_attendees,
        "GetMeeting" => get_meeting,
        "DeleteMeeting" => delete_meeting,
        "CreateAttendee" => create_attendee,
        "BatchCreateAttendee" => batch_create_attendee,
        "GetAttendee" => get_attendee,
        "ListAttendees" => list_attendees,
        "DeleteAttendee" => delete_attendee,
        "UpdateAttendeeCapabilities" => update_capabilities,
        "BatchUpdateAttendeeCapabilitiesExcept" => batch_update_capabilities_except,
        _ => return None,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateMeetingInput {
    client_request_token: String,
    media_region: String,
    meeting_host_id: Option<String>,
    external_meeting_id: String,
    notifications_configuration: Option<Value>,
    meeting_features: Option<Value>,
    primary_meeting_id: Option<String>,
    tenant_ids: Option<Vec<String>>,
    tags: Option<Vec<Tag>>,
    media_placement_network_type: Option<String>,
    /// `CreateMeetingWithAttendees` only.
    attendees: Option<Vec<AttendeeInput>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttendeeInput {
    external_user_id: String,
    capabilities: Option<CapabilitiesInput>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "PascalCase")]
struct CapabilitiesInput {
    audio: String,
    video: String,
    content: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchCreateInput {
    attendees: Vec<AttendeeInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CapabilitiesUpdateInput {
    capabilities: CapabilitiesInput,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttendeeIdItem {
    attendee_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchUpdateExceptInput {
    excluded_attendee_ids: Vec<AttendeeIdItem>,
    capabilities: CapabilitiesInput,
}

const MEDIA_CAPABILITIES: [&str; 4] = ["SendReceive", "Send", "Receive", "None"];

/// A string of 2-64 characters (`ExternalUserId`, `ExternalMeetingId`, `MediaRegion`, ...).
fn two_to_64(field: &str, value: &str) -> Result<(), ApiError> {
    let n = value.chars().count();
    if (2..=64).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{field} must be 2 to 64 characters; `{}` has {n}",
            value.chars().take(80).collect::<String>()
        )))
    }
}

/// A meeting or attendee id: the model's GUID pattern.
fn guid(field: &str, value: &str) -> Result<(), ApiError> {
    let groups: Vec<&str> = value.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{field} `{}` is not a GUID",
            value.chars().take(80).collect::<String>()
        )))
    }
}

/// The model's capability rules: each of the three is one of the four values, and content
/// cannot be received or shared by an attendee whose video is neither (Chime's rule).
fn capabilities(input: Option<CapabilitiesInput>) -> Result<AttendeeCapabilities, ApiError> {
    let Some(c) = input else {
        return Ok(AttendeeCapabilities::default());
    };
    for (field, value) in [
        ("Capabilities.Audio", &c.audio),
        ("Capabilities.Video", &c.video),
        ("Capabilities.Content", &c.content),
    ] {
        validate::one_of(field, value, &MEDIA_CAPABILITIES)?;
    }
    let video_receives = matches!(c.video.as_str(), "SendReceive" | "Receive");
    if matches!(c.content.as_str(), "SendReceive" | "Receive") && !video_receives {
        return Err(ApiError::bad_request(
            "Capabilities.Content can be SendReceive or Receive only when Capabilities.Video is SendReceive or Receive",
        ));
    }
    Ok(AttendeeCapabilities {
        audio: c.audio,
        video: c.video,
        content: c.content,
    })
}

/// An unguessable join token: 244 random bits (two v4 UUIDs), hex.
fn new_join_token() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    format!("{}{}", hex::encode(a.as_bytes()), hex::encode(b.as_bytes()))
}

fn public_meeting(m: &Meeting) -> Value {
    sma_store::records::public(m)
}

fn public_attendee(a: &Attendee) -> Value {
    serde_json::to_value(a).unwrap_or(Value::Null)
}

fn load_meeting(tx: &mut dyn Tx, id: &str) -> Result<Meeting, ApiError> {
    guid("MeetingId", id)?;
    tx.get::<Meeting>(&id.to_ascii_lowercase())?
        .ok_or_else(|| ApiError::not_found(format!("The meeting {id} does not exist or has ended")))
}

/// Adds an attendee (or finds the one with the same `ExternalUserId`: creating an attendee
/// is idempotent by it, as on the hosted service).
fn add_attendee(
    tx: &mut dyn Tx,
    meeting: &mut Meeting,
    input: AttendeeInput,
) -> Result<Attendee, ApiError> {
    two_to_64("ExternalUserId", &input.external_user_id)?;
    let caps = capabilities(input.capabilities)?;
    if let Some(existing) = meeting
        .attendees
        .iter()
        .find(|a| a.external_user_id == input.external_user_id)
    {
        return Ok(existing.clone());
    }
    if meeting.attendees.len() >= meeting.max_attendees {
        return Err(ApiError::meetings_limit_exceeded(format!(
            "The meeting {} has its maximum of {} attendees",
            meeting.meeting_id, meeting.max_attendees
        )));
    }
    let attendee = Attendee {
        external_user_id: input.external_user_id,
        attendee_id: validate::new_guid(),
        join_token: new_join_token(),
        capabilities: caps,
    };
    tx.put(&JoinToken {
        join_token: attendee.join_token.clone(),
        meeting_id: meeting.meeting_id.clone(),
        attendee_id: attendee.attendee_id.clone(),
    })?;
    meeting.attendees.push(attendee.clone());
    Ok(attendee)
}

/// Adds attendees one by one; those that cannot be added are reported, not fatal (the
/// batch operations' `Errors`).
fn add_attendees(
    tx: &mut dyn Tx,
    meeting: &mut Meeting,
    inputs: Vec<AttendeeInput>,
) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let (mut created, mut errors) = (Vec::new(), Vec::new());
    for input in inputs {
        let user = input.external_user_id.clone();
        match add_attendee(tx, meeting, input) {
            Ok(a) => created.push(public_attendee(&a)),
            Err(e) if e.status < 500 => errors.push(json!({
                "ExternalUserId": user,
                "ErrorCode": e.code.trim_end_matches("Exception"),
                "ErrorMessage": e.message,
            })),
            Err(e) => return Err(e),
        }
    }
    Ok((created, errors))
}

fn new_meeting(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    input: &mut CreateMeetingInput,
) -> Result<Meeting, ApiError> {
    let token = &input.client_request_token;
    two_to_64("ClientRequestToken", token)?;
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::bad_request(
            "ClientRequestToken may hold only letters, digits, `-` and `_`",
        ));
    }
    two_to_64("ExternalMeetingId", &input.external_meeting_id)?;
    two_to_64("MediaRegion", &input.media_region)?;
    ctx.check_region("MediaRegion", &input.media_region)?;
    if let Some(host) = &input.meeting_host_id {
        two_to_64("MeetingHostId", host)?;
    }
    if let Some(primary) = &input.primary_meeting_id {
        two_to_64("PrimaryMeetingId", primary)?;
    }
    let given = input.tenant_ids.is_some();
    let tenant_ids = input.tenant_ids.take().unwrap_or_default();
    if given {
        validate::count("TenantIds", tenant_ids.len(), 1, 5)?;
    }
    for t in &tenant_ids {
        if !(2..=256).contains(&t.len()) {
            return Err(ApiError::bad_request(format!(
                "TenantIds entry `{t}` must be 2 to 256 characters"
            )));
        }
    }
    if let Some(kind) = &input.media_placement_network_type {
        validate::one_of(
            "MediaPlacementNetworkType",
            kind,
            &["Ipv4Only", "DualStack"],
        )?;
    }
    let tags = validate::new_tags(input.tags.take(), ctx.deployment.limits.tags_per_resource)?;
    let limit = ctx.deployment.limits.attendees_per_meeting;
    let max_attendees = match input
        .meeting_features
        .as_ref()
        .and_then(|f| f.get("Attendee"))
        .and_then(|a| a.get("MaxCount"))
    {
        None => limit,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=250).contains(&n) && n as usize <= limit => n as usize,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "MeetingFeatures.Attendee.MaxCount must be from 1 to {}; got {v}",
                    limit.min(250)
                )))
            }
        },
    };
    // The same ClientRequestToken is the same request: the meeting it created comes back.
    let earlier = match tx.get::<MeetingRequest>(token)? {
        Some(request) => tx.get::<Meeting>(&request.meeting_id)?,
        None => None,
    };
    if let Some(existing) = earlier {
        if existing.external_meeting_id != input.external_meeting_id {
            return Err(ApiError::conflict(format!(
                "ClientRequestToken {token} was used for meeting {} with another ExternalMeetingId",
                existing.meeting_id
            )));
        }
        return Ok(existing);
    }
    let id = validate::new_guid();
    let audio = ctx.deployment.meeting_audio_host.clone();
    Ok(Meeting {
        meeting_arn: ctx.arn(&input.media_region, "meeting", &id),
        media_placement: json!({
            "AudioHostUrl": audio,
            "AudioFallbackUrl": audio,
        }),
        meeting_id: id,
        meeting_host_id: input.meeting_host_id.clone(),
        external_meeting_id: input.external_meeting_id.clone(),
        media_region: input.media_region.clone(),
        meeting_features: input.meeting_features.clone(),
        primary_meeting_id: input.primary_meeting_id.clone(),
        tenant_ids,
        client_request_token: token.clone(),
        notifications: input.notifications_configuration.clone(),
        attendees: Vec::new(),
        max_attendees,
        tags,
        created_ms: sma_store::time::now_ms(),
    })
}

fn create_meeting(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let mut input: CreateMeetingInput = request.body()?;
    let meeting = new_meeting(ctx, tx, &mut input)?;
    store_meeting(tx, &meeting)?;
    tracing::info!(meeting = %meeting.meeting_id, external = %meeting.external_meeting_id, "meeting created");
    Ok(wrap("Meeting", public_meeting(&meeting)))
}

fn create_meeting_with_attendees(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let mut input: CreateMeetingInput = request.body()?;
    let attendees = input
        .attendees
        .take()
        .ok_or_else(|| ApiError::bad_request("Attendees is required"))?;
    validate::count("Attendees", attendees.len(), 1, 20)?;
    let mut meeting = new_meeting(ctx, tx, &mut input)?;
    let (created, errors) = add_attendees(tx, &mut meeting, attendees)?;
    store_meeting(tx, &meeting)?;
    tracing::info!(meeting = %meeting.meeting_id, attendees = created.len(), "meeting created");
    Ok(Some(json!({
        "Meeting": public_meeting(&meeting),
        "Attendees": created,
        "Errors": errors,
    })))
}

fn get_meeting(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let meeting = load_meeting(tx, request.label("MeetingId")?)?;
    Ok(wrap("Meeting", public_meeting(&meeting)))
}

/// Stores a new meeting with the record of the request that created it.
fn store_meeting(tx: &mut dyn Tx, meeting: &Meeting) -> Result<(), ApiError> {
    tx.put(meeting)?;
    tx.put(&MeetingRequest {
        client_request_token: meeting.client_request_token.clone(),
        meeting_id: meeting.meeting_id.clone(),
    })?;
    Ok(())
}

/// Removes a meeting with everything that leads to it: its attendees' tokens and its
/// request's record.
fn forget_meeting(tx: &mut dyn Tx, meeting: &Meeting) -> Result<(), ApiError> {
    for a in &meeting.attendees {
        tx.delete::<JoinToken>(&a.join_token)?;
    }
    if tx
        .get::<MeetingRequest>(&meeting.client_request_token)?
        .is_some_and(|r| r.meeting_id == meeting.meeting_id)
    {
        tx.delete::<MeetingRequest>(&meeting.client_request_token)?;
    }
    tx.delete::<Meeting>(&meeting.meeting_id)?;
    Ok(())
}

/// Ends the meeting: its attendees and tokens go, and everyone in it is released.
pub(crate) fn end_meeting(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    meeting: &Meeting,
) -> Result<(), ApiError> {
    forget_meeting(tx, meeting)?;
    ctx.effect(Effect::MeetingEnded {
        meeting_id: meeting.meeting_id.clone(),
    });
    Ok(())
}

fn delete_meeting(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let meeting = load_meeting(tx, request.label("MeetingId")?)?;
    end_meeting(ctx, tx, &meeting)?;
    tracing::info!(meeting = %meeting.meeting_id, "meeting deleted");
    Ok(None)
}

fn create_attendee(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let mut meeting = load_meeting(tx, request.label("MeetingId")?)?;
    let input: AttendeeInput = request.body()?;
    let attendee = add_attendee(tx, &mut meeting, input)?;
    tx.put(&meeting)?;
    Ok(wrap("Attendee", public_attendee(&attendee)))
}

fn batch_create_attendee(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let mut meeting = load_meeting(tx, request.label("MeetingId")?)?;
    let input: BatchCreateInput = request.body()?;
    validate::count("Attendees", input.attendees.len(), 1, 100)?;
    let (created, errors) = add_attendees(tx, &mut meeting, input.attendees)?;
    tx.put(&meeting)?;
    Ok(Some(json!({"Attendees": created, "Errors": errors})))
}

fn find_attendee<'m>(meeting: &'m mut Meeting, id: &str) -> Result<&'m mut Attendee, ApiError> {
    guid("AttendeeId", id)?;
    let meeting_id = meeting.meeting_id.clone();
    meeting
        .attendees
        .iter_mut()
        .find(|a| a.attendee_id.eq_ignore_ascii_case(id))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "The attendee {id} does not exist in meeting {meeting_id}"
            ))
        })
}

fn get_attendee(_: &Ctx<'_>, tx: &mut dyn Tx, request: &OpRequest<'_>) -> Result<Reply, ApiError> {
    let mut meeting = load_meeting(tx, request.label("MeetingId")?)?;
    let attendee = find_attendee(&mut meeting, request.label("AttendeeId")?)?;
    Ok(wrap("Attendee", public_attendee(attendee)))
}

fn list_attendees(
    _: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let meeting = load_meeting(tx, request.label("MeetingId")?)?;
    let mut attendees = meeting.attendees;
    attendees.sort_by(|a, b| a.attendee_id.cmp(&b.attendee_id));
    let (page, next) = paginate(attendees, request, |a| a.attendee_id.as_str())?;
    Ok(list_reply(
        "Attendees",
        page.iter().map(public_attendee).collect(),
        next,
    ))
}

fn delete_attendee(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let mut meeting = load_meeting(tx, request.label("MeetingId")?)?;
    let attendee = find_attendee(&mut meeting, request.label("AttendeeId")?)?.clone();
    meeting
        .attendees
        .retain(|a| a.attendee_id != attendee.attendee_id);
    tx.delete::<JoinToken>(&attendee.join_token)?;
    tx.put(&meeting)?;
    ctx.effect(Effect::AttendeeDeleted {
        meeting_id: meeting.meeting_id.clone(),
        attendee_id: attendee.attendee_id.clone(),
    });
    Ok(None)
}

fn update_capabilities(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let mut meeting = load_meeting(tx, request.label("MeetingId")?)?;
    let input: CapabilitiesUpdateInput = request.body()?;
    let caps = capabilities(Some(input.capabilities))?;
    let attendee = find_attendee(&mut meeting, request.label("AttendeeId")?)?;
    attendee.capabilities = caps.clone();
    let reply = public_attendee(attendee);
    let attendee_id = attendee.attendee_id.clone();
    tx.put(&meeting)?;
    ctx.effect(Effect::CapabilitiesChanged {
        meeting_id: meeting.meeting_id.clone(),
        attendee_id,
        capabilities: caps,
    });
    Ok(wrap("Attendee", reply))
}

fn batch_update_capabilities_except(
    ctx: &Ctx<'_>,
    tx: &mut dyn Tx,
    request: &OpRequest<'_>,
) -> Result<Reply, ApiError> {
    let mut meeting = load_meeting(tx, request.label("MeetingId")?)?;
    let input: BatchUpdateExceptInput = request.body()?;
    validate::count(
        "ExcludedAttendeeIds",
        input.excluded_attendee_ids.len(),
        1,
        250,
    )?;
    for item in &input.excluded_attendee_ids {
        guid("ExcludedAttendeeIds.AttendeeId", &item.attendee_id)?;
    }
    let caps = capabilities(Some(input.capabilities))?;
    let excluded = |a: &Attendee| {
        input
            .excluded_attendee_ids
            .iter()
            .any(|e| e.attendee_id.eq_ignore_ascii_case(&a.attendee_id))
    };
    for attendee in meeting.attendees.iter_mut().filter(|a| !excluded(a)) {
        attendee.capabilities = caps.clone();
        ctx.effect(Effect::CapabilitiesChanged {
            meeting_id: meeting.meeting_id.clone(),
            attendee_id: attendee.attendee_id.clone(),
            capabilities: caps.clone(),
        });
    }
    tx.put(&meeting)?;
    Ok(None)
}

/// Ends `meeting_id` for the runtime (nobody in it for too long): the meeting, its attendees
/// and their tokens go, as `DeleteMeeting` would. Whether it was there.
pub fn end_by_runtime(tx: &mut dyn Tx, meeting_id: &str) -> Result<bool, ApiError> {
    let Some(meeting) = tx.get::<Meeting>(meeting_id)? else {
        return Ok(false);
    };
    forget_meeting(tx, &meeting)?;
    Ok(true)
}

/// The attendee a join token belongs to, with its meeting; `Err` says why the token is no
/// good (for the dial-in's `403` Warning and `JoinChimeMeeting`'s error).
pub fn attendee_by_token(
    tx: &mut dyn Tx,
    token: &str,
) -> Result<Result<(Meeting, Attendee), TokenRefusal>, ApiError> {
    if token.is_empty() {
        return Ok(Err(TokenRefusal::Empty));
    }
    if token.len() > 2048 {
        return Ok(Err(TokenRefusal::TooLong(token.len())));
    }
    let Some(entry) = tx.get::<JoinToken>(token)? else {
        return Ok(Err(TokenRefusal::Unknown));
    };
    let Some(meeting) = tx.get::<Meeting>(&entry.meeting_id)? else {
        return Ok(Err(TokenRefusal::MeetingEnded));
    };
    match meeting
        .attendees
        .iter()
        .find(|a| a.attendee_id == entry.attendee_id && a.join_token == token)
        .cloned()
    {
        Some(attendee) => Ok(Ok((meeting, attendee))),
        None => Ok(Err(TokenRefusal::AttendeeDeleted)),
    }
}

/// Why a join token does not let anyone in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error("the join token is empty")]
    Empty,
    #[error("the join token is {0} characters; at most 2048")]
    TooLong(usize),
    #[error("no attendee has this join token (never issued, or its attendee was deleted)")]
    Unknown,
    #[error("the join token's meeting has ended")]
    MeetingEnded,
    #[error("the join token's attendee was deleted")]
    AttendeeDeleted,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::{
        CallUpdateError, CreateCallError, Deployment, Limits, OutboundCall, Runtime, Service,
    };
    use serde_json::Map;
    use sma_store::SqliteStore;
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    /// The runtime side: records the effects it is handed.
    #[derive(Default)]
    struct Recording(Mutex<Vec<Effect>>);

    impl Runtime for Recording {
        fn store_changed(&self) {}
        fn check_endpoint(&self, _: &str) -> Result<(), String> {
            Ok(())
        }
        fn update_call(
            &self,
            _: &str,
            tx: &str,
            _: Map<String, Value>,
        ) -> Result<(), CallUpdateError> {
            Err(CallUpdateError::NoSuchCall(tx.into()))
        }
        fn create_call(&self, _: OutboundCall) -> Result<String, CreateCallError> {
            Err(CreateCallError::Unavailable("no calls here".into()))
        }
        fn termination_health(&self, _: &str) -> Option<(u64, String)> {
            None
        }
        fn apply(&self, effect: Effect) {
            self.0.lock().unwrap().push(effect);
        }
    }

    fn service(runtime: Arc<Recording>) -> (Service, Arc<SqliteStore>) {
        let store = Arc::new(SqliteStore::in_memory().expect("store"));
        let service = Service::new(
            store.clone(),
            runtime,
            Deployment {
                account_id: "111122223333".into(),
                regions: vec!["us-east-1".into()],
                voice_connector_domain: "vc.test".into(),
                limits: Limits {
                    attendees_per_meeting: 3,
                    ..Limits::default()
                },
                number_pool: Vec::new(),
                meeting_audio_host: "127.0.0.1:5061".into(),
            },
        );
        (service, store)
    }

    fn call(
        s: &Service,
        op: &str,
        labels: &[(&str, &str)],
        body: Value,
    ) -> Result<Reply, ApiError> {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let body = body.to_string();
        s.call(
            op,
            !op.starts_with("Get") && !op.starts_with("List"),
            &OpRequest {
                labels: &labels,
                query: &[],
                body: body.as_bytes(),
            },
        )
    }

    fn meeting(s: &Service) -> String {
        let reply = call(
            s,
            "CreateMeeting",
            &[],
            json!({"ClientRequestToken": "t1", "MediaRegion": "us-east-1", "ExternalMeetingId": "m1"}),
        )
        .unwrap()
        .unwrap();
        reply["Meeting"]["MeetingId"].as_str().unwrap().to_owned()
    }

    fn attendee(s: &Service, meeting: &str, user: &str) -> Value {
        call(
            s,
            "CreateAttendee",
            &[("MeetingId", meeting)],
            json!({"ExternalUserId": user}),
        )
        .unwrap()
        .unwrap()["Attendee"]
            .clone()
    }

    fn lookup(store: &SqliteStore, token: &str) -> Result<(Meeting, Attendee), TokenRefusal> {
        let store: &dyn sma_store::Store = store;
        let mut tx = store.begin().unwrap();
        attendee_by_token(tx.as_mut(), token).unwrap()
    }

    #[test]
    fn a_client_request_token_returns_its_meeting_until_the_meeting_is_deleted() {
        let (s, store) = service(Arc::new(Recording::default()));
        let first = meeting(&s);
        assert_eq!(meeting(&s), first, "the same request, the same meeting");
        let conflict = call(
            &s,
            "CreateMeeting",
            &[],
            json!({"ClientRequestToken": "t1", "MediaRegion": "us-east-1", "ExternalMeetingId": "other"}),
        )
        .unwrap_err();
        assert!(
            conflict.message.contains("ClientRequestToken t1"),
            "{}",
            conflict.message
        );
        call(&s, "DeleteMeeting", &[("MeetingId", &first)], json!({})).unwrap();
        let again = meeting(&s);
        assert_ne!(again, first, "a deleted meeting is not handed out again");
        // Ending it for the runtime forgets the request too.
        let store: &dyn sma_store::Store = store.as_ref();
        let mut tx = store.begin().unwrap();
        assert!(end_by_runtime(tx.as_mut(), &again).unwrap());
        assert!(tx.list::<MeetingRequest>().unwrap().is_empty());
    }

    #[test]
    fn join_tokens_lead_to_their_attendee_until_it_or_its_meeting_is_deleted() {
        let runtime = Arc::new(Recording::default());
        let (s, store) = service(runtime.clone());
        let m = meeting(&s);
        let alice = attendee(&s, &m, "alice");
        let bob = attendee(&s, &m, "bob");
        let token = alice["JoinToken"].as_str().unwrap();
        assert_eq!(token.len(), 64, "244 random bits, hex");
        let (found_meeting, found) = lookup(&store, token).unwrap();
        assert_eq!(found_meeting.meeting_id, m);
        assert_eq!(found.external_user_id, "alice");
        assert_eq!(lookup(&store, ""), Err(TokenRefusal::Empty));
        assert_eq!(
            lookup(&store, &"a".repeat(2049)),
            Err(TokenRefusal::TooLong(2049))
        );
        assert_eq!(lookup(&store, "0123"), Err(TokenRefusal::Unknown));
        // Deleting the attendee: its token is refused, and the runtime is told.
        let alice_id = alice["AttendeeId"].as_str().unwrap();
        call(
            &s,
            "DeleteAttendee",
            &[("MeetingId", &m), ("AttendeeId", alice_id)],
            json!({}),
        )
        .unwrap();
        assert_eq!(lookup(&store, token), Err(TokenRefusal::Unknown));
        assert_eq!(
            runtime.0.lock().unwrap().last(),
            Some(&Effect::AttendeeDeleted {
                meeting_id: m.clone(),
                attendee_id: alice_id.into()
            })
        );
        // Deleting the meeting: every token goes.
        let bob_token = bob["JoinToken"].as_str().unwrap();
        assert!(lookup(&store, bob_token).is_ok());
        call(&s, "DeleteMeeting", &[("MeetingId", &m)], json!({})).unwrap();
        assert_eq!(lookup(&store, bob_token), Err(TokenRefusal::Unknown));
        assert_eq!(
            runtime.0.lock().unwrap().last(),
            Some(&Effect::MeetingEnded { meeting_id: m })
        );
    }

    #[test]
    fn a_refused_request_leaves_nothing_behind_and_limits_hold() {
        let runtime = Arc::new(Recording::default());
        let (s, store) = service(runtime.clone());
        let m = meeting(&s);
        for user in ["u1", "u2", "u3"] {
            attendee(&s, &m, user);
        }
        let err = call(
            &s,
            "CreateAttendee",
            &[("MeetingId", &m)],
            json!({"ExternalUserId": "u4"}),
        )
        .unwrap_err();
        assert_eq!(err.code, "LimitExceededException");
        // A batch over the limit creates none of those beyond it, and reports each.
        let reply = call(
            &s,
            "BatchCreateAttendee",
            &[("MeetingId", &m)],
            json!({"Attendees": [{"ExternalUserId": "u5"}]}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(reply["Errors"][0]["ErrorCode"], "LimitExceeded");
        // CreateMeetingWithAttendees with a bad meeting field creates no meeting and no token.
        let before = {
            let st: &dyn sma_store::Store = store.as_ref();
            let mut tx = st.begin().unwrap();
            tx.list::<JoinToken>().unwrap().len()
        };
        let err = call(
            &s,
            "CreateMeetingWithAttendees",
            &[],
            json!({"ClientRequestToken": "t2", "MediaRegion": "mars-1", "ExternalMeetingId": "m2",
                   "Attendees": [{"ExternalUserId": "a1"}]}),
        )
        .unwrap_err();
        assert_eq!(err.code, "BadRequestException");
        let st: &dyn sma_store::Store = store.as_ref();
        let mut tx = st.begin().unwrap();
        assert_eq!(tx.list::<JoinToken>().unwrap().len(), before);
        assert_eq!(tx.list::<Meeting>().unwrap().len(), 1);
        // Capabilities changes reach the runtime.
        drop(tx);
        runtime.0.lock().unwrap().clear();
        call(
            &s,
            "BatchUpdateAttendeeCapabilitiesExcept",
            &[("MeetingId", &m)],
            json!({"ExcludedAttendeeIds": [{"AttendeeId": "00000000-0000-0000-0000-000000000000"}],
                   "Capabilities": {"Audio": "Receive", "Video": "None", "Content": "None"}}),
        )
        .unwrap();
        assert_eq!(runtime.0.lock().unwrap().len(), 3);
    }
}
