//! `sma.toml`'s resources applied to the store at start (and on SIGHUP).
//!
//! Declared resources are checked against each other first — every error names the entry —
//! then written in one transaction: each is created or replaced (keeping its creation time
//! and tags), and a resource an earlier start declared that the file no longer lists is
//! removed. Resources created through the API are left alone, but a declaration that would
//! clash with one (the same trigger) is refused.

use crate::config::{self, ConfigError, File};
use crate::routing::normalize_number;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sma_store::records::{
    Credential, HandlerSettings, Origination, OriginationRoute, PhoneNumber, Resource,
    SipMediaApplication, SipMediaApplicationEndpoint, SipRule, SipRuleTargetApplication,
    Termination, VoiceConnector,
};
use sma_store::time::{iso8601, now_ms};
use sma_store::{Store, Tx};
use std::collections::{BTreeMap, BTreeSet};

fn bad(message: String) -> ConfigError {
    ConfigError::Resource(message)
}

/// A stable id for a resource named `name` when the configuration gives none.
fn id_from_name(kind: &str, name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("{kind}-{slug}")
}

/// The model's resource-name rule, as the API applies it.
fn check_name(what: &str, name: &str) -> Result<(), ConfigError> {
    sma_api::voice::validate::resource_name(&format!("{what} name"), name)
        .map_err(|e| bad(e.message))
}

/// The resources a configuration declares, as store records.
#[derive(Default)]
pub struct Declared {
    pub numbers: Vec<PhoneNumber>,
    pub applications: Vec<SipMediaApplication>,
    pub rules: Vec<SipRule>,
    pub connectors: Vec<VoiceConnector>,
}

fn arn(file: &File, region: &str, kind: &str, id: &str) -> String {
    format!(
        "arn:aws:chime:{region}:{}:{kind}/{id}",
        file.node.account_id
    )
}

/// Checks the configuration's resources against each other and turns them into records.
pub fn declare(file: &File) -> Result<Declared, ConfigError> {
    let now = iso8601(now_ms());
    let mut declared = Declared::default();
    let mut digits_seen = BTreeSet::new();
    for entry in &file.phone_numbers {
        if !sma_actions::is_e164(&entry.number) {
            return Err(bad(format!(
                "phone number `{}` is not E.164 (expected + and 2-15 digits, e.g. +12065550100)",
                entry.number
            )));
        }
        if !matches!(
            entry.product_type.as_str(),
            "SipMediaApplicationDialIn" | "VoiceConnector"
        ) {
            return Err(bad(format!(
                "phone number {}: product_type `{}` is not SipMediaApplicationDialIn or VoiceConnector",
                entry.number, entry.product_type
            )));
        }
        let digits = normalize_number(&entry.number).unwrap_or_default();
        if !digits_seen.insert(digits.clone()) {
            return Err(bad(format!(
                "phone number {} is listed twice",
                entry.number
            )));
        }
        let e164 = format!("+{digits}");
        let arn = arn(file, &file.node.region, "phone-number", &e164);
        let mut number = PhoneNumber::new_in_inventory(&e164, &entry.product_type, arn, &now);
        number.declared = true;
        declared.numbers.push(number);
    }
    for entry in &file.applications {
        check_name("application", &entry.name)?;
        let id = entry
            .id
            .clone()
            .unwrap_or_else(|| id_from_name("sma", &entry.name));
        if declared
            .applications
            .iter()
            .any(|a| a.sip_media_application_id == id)
        {
            return Err(bad(format!("application id `{id}` is used twice")));
        }
        if let Some(mode) = entry.instance_mode.as_deref() {
            if !matches!(mode, "fresh" | "reuse-per-call") {
                return Err(bad(format!(
                    "application `{}`: instance_mode `{mode}` is not `fresh` or `reuse-per-call`",
                    entry.name
                )));
            }
        }
        if let Some(dial_in) = &entry.meeting_dial_in {
            crate::meeting_backend::MeetingDialIn::parse(dial_in).map_err(|why| {
                bad(format!(
                    "application `{}`: meeting_dial_in: {why}",
                    entry.name
                ))
            })?;
        }
        let region = entry.region.clone().unwrap_or(file.node.region.clone());
        declared.applications.push(SipMediaApplication {
            sip_media_application_arn: arn(file, &region, "sma", &id),
            sip_media_application_id: id,
            aws_region: region,
            name: entry.name.clone(),
            endpoints: vec![SipMediaApplicationEndpoint {
                lambda_arn: entry.endpoint.clone(),
            }],
            created_timestamp: now.clone(),
            updated_timestamp: now.clone(),
            tags: Vec::new(),
            handler: HandlerSettings {
                secret: entry.secret.clone(),
                memory_mib: entry.memory_mib,
                instance_mode: entry.instance_mode.clone(),
            },
            declared: true,
            logging: Default::default(),
            meeting_dial_in: entry.meeting_dial_in.clone(),
        });
    }
    for entry in &file.voice_connectors {
        check_name("voice connector", &entry.name)?;
        let id = entry
            .id
            .clone()
            .unwrap_or_else(|| id_from_name("vc", &entry.name));
        for cidr in &entry.termination.cidr_allow_list {
            cidr.parse::<ipnet::IpNet>().map_err(|e| {
                bad(format!(
                    "voice connector `{}`: cidr_allow_list entry `{cidr}`: {e}",
                    entry.name
                ))
            })?;
        }
        let algorithms = &entry.termination.digest_algorithms;
        for (i, a) in algorithms.iter().enumerate() {
            if sma_sip::auth::Algorithm::parse(a).is_none() {
                return Err(bad(format!(
                    "voice connector `{}`: digest_algorithms entry `{a}` is not SHA-256 or MD5",
                    entry.name
                )));
            }
            if algorithms[..i].iter().any(|b| b.eq_ignore_ascii_case(a)) {
                return Err(bad(format!(
                    "voice connector `{}`: digest_algorithms lists {a} twice",
                    entry.name
                )));
            }
        }
        if let Some(path) = &entry.termination.tls_client_ca_file {
            sma_net::tls::ClientTrust::from_pem_file(path).map_err(|e| {
                bad(format!(
                    "voice connector `{}`: tls_client_ca_file: {e}",
                    entry.name
                ))
            })?;
        }
        let host = entry.outbound_host_name.to_ascii_lowercase();
        if declared
            .connectors
            .iter()
            .any(|v| v.outbound_host_name == host)
        {
            return Err(bad(format!(
                "voice connector `{}`: outbound host name {host} is used twice",
                entry.name
            )));
        }
        let region = entry.region.clone().unwrap_or(file.node.region.clone());
        let t = &entry.termination;
        for r in entry.origination.iter().flat_map(|o| &o.routes) {
            if r.host.trim().is_empty() {
                return Err(bad(format!(
                    "voice connector `{}`: an origination route has no host",
                    entry.name
                )));
            }
            if sma_sip::Transport::from_token(&r.protocol).is_none() {
                return Err(bad(format!(
                    "voice connector `{}`: origination route protocol `{}` is not UDP, TCP or TLS",
                    entry.name, r.protocol
                )));
            }
            if !(1..=99).contains(&r.priority) || !(1..=99).contains(&r.weight) {
                return Err(bad(format!(
                    "voice connector `{}`: origination route {} priority and weight are 1-99",
                    entry.name, r.host
                )));
            }
        }
        declared.connectors.push(VoiceConnector {
            voice_connector_arn: arn(file, &region, "vc", &id),
            voice_connector_id: id,
            aws_region: region,
            name: entry.name.clone(),
            outbound_host_name: host,
            require_encryption: entry.require_encryption,
            created_timestamp: now.clone(),
            updated_timestamp: now.clone(),
            integration_type: None,
            network_type: None,
            termination: Some(Termination {
                cps_limit: (t.cps_limit > 0).then_some(t.cps_limit),
                default_phone_number: None,
                calling_regions: t
                    .calling_regions
                    .iter()
                    .map(|r| r.to_ascii_uppercase())
                    .collect(),
                cidr_allowed_list: t.cidr_allow_list.clone(),
                disabled: t.disabled,
            }),
            origination: entry.origination.as_ref().map(|o| Origination {
                routes: o
                    .routes
                    .iter()
                    .map(|r| OriginationRoute {
                        host: r.host.clone(),
                        port: r.port,
                        protocol: r.protocol.to_ascii_uppercase(),
                        priority: r.priority,
                        weight: r.weight,
                    })
                    .collect(),
                disabled: o.disabled,
            }),
            credentials: t
                .credentials
                .iter()
                .map(|c| Credential {
                    username: c.username.clone(),
                    password: c.password.clone(),
                })
                .collect(),
            logging: None,
            streaming: None,
            tags: Vec::new(),
            declared: true,
            emergency_calling: None,
            digest_algorithms: t.digest_algorithms.clone(),
            tls_client_ca_file: t
                .tls_client_ca_file
                .as_ref()
                .map(|p| p.display().to_string()),
        });
    }
    for entry in &file.sip_rules {
        let rule = declare_rule(entry, &declared, &digits_seen, &now)?;
        declared.rules.push(rule);
    }
    Ok(declared)
}

fn declare_rule(
    entry: &config::SipRuleEntry,
    declared: &Declared,
    numbers: &BTreeSet<String>,
    now: &str,
) -> Result<SipRule, ConfigError> {
    check_name("SIP rule", &entry.name)?;
    let id = entry
        .id
        .clone()
        .unwrap_or_else(|| id_from_name("rule", &entry.name));
    let trigger_value = match entry.trigger_type.as_str() {
        "ToPhoneNumber" => {
            if !sma_actions::is_e164(&entry.trigger_value) {
                return Err(bad(format!(
                    "SIP rule `{}`: trigger_value `{}` is not an E.164 number",
                    entry.name, entry.trigger_value
                )));
            }
            let digits = normalize_number(&entry.trigger_value).unwrap_or_default();
            if !numbers.contains(&digits) {
                return Err(bad(format!(
                    "SIP rule `{}`: {} is not in phone_numbers",
                    entry.name, entry.trigger_value
                )));
            }
            format!("+{digits}")
        }
        "RequestUriHostname" => entry.trigger_value.to_ascii_lowercase(),
        other => {
            return Err(bad(format!(
                "SIP rule `{}`: trigger_type `{other}` is not ToPhoneNumber or RequestUriHostname",
                entry.name
            )))
        }
    };
    if declared
        .rules
        .iter()
        .any(|r| r.trigger_type == entry.trigger_type && r.trigger_value == trigger_value)
    {
        return Err(bad(format!(
            "SIP rule `{}`: another rule already triggers on {}",
            entry.name, entry.trigger_value
        )));
    }
    if declared.rules.iter().any(|r| r.sip_rule_id == id) {
        return Err(bad(format!("SIP rule id `{id}` is used twice")));
    }
    if entry.targets.is_empty() || entry.targets.len() > 25 {
        return Err(bad(format!(
            "SIP rule `{}`: needs 1-25 targets, has {}",
            entry.name,
            entry.targets.len()
        )));
    }
    let mut regions = BTreeSet::new();
    let mut targets = Vec::new();
    for t in &entry.targets {
        let app = declared
            .applications
            .iter()
            .find(|a| a.sip_media_application_id == t.application)
            .or_else(|| {
                declared
                    .applications
                    .iter()
                    .find(|a| a.name == t.application)
            })
            .ok_or_else(|| {
                bad(format!(
                    "SIP rule `{}`: target application `{}` is not defined",
                    entry.name, t.application
                ))
            })?;
        if t.priority == 0 {
            return Err(bad(format!(
                "SIP rule `{}`: priority of `{}` must be at least 1",
                entry.name, t.application
            )));
        }
        let region = t.region.clone().unwrap_or(app.aws_region.clone());
        if region != app.aws_region {
            return Err(bad(format!(
                "SIP rule `{}`: application `{}` is in {}, not {region}",
                entry.name, app.name, app.aws_region
            )));
        }
        if !regions.insert(region.clone()) {
            return Err(bad(format!(
                "SIP rule `{}`: more than one target in region {region}",
                entry.name
            )));
        }
        targets.push(SipRuleTargetApplication {
            sip_media_application_id: app.sip_media_application_id.clone(),
            priority: t.priority,
            aws_region: region,
        });
    }
    targets.sort_by_key(|t| t.priority);
    Ok(SipRule {
        sip_rule_id: id,
        name: entry.name.clone(),
        disabled: entry.disabled,
        trigger_type: entry.trigger_type.clone(),
        trigger_value,
        target_applications: targets,
        created_timestamp: now.to_owned(),
        updated_timestamp: now.to_owned(),
        declared: true,
    })
}

fn store_error(e: sma_store::StoreError) -> ConfigError {
    ConfigError::Resource(e.to_string())
}

/// Writes `records` of one kind: each declared record replaces the stored one with its id
/// (keeping creation time and tags via `keep`); stored declared records not in `records`
/// are removed. Returns the kind's records after the change.
fn sync<T, F>(
    tx: &mut dyn Tx,
    records: Vec<T>,
    is_declared: impl Fn(&T) -> bool,
    keep: F,
) -> Result<Vec<T>, ConfigError>
where
    T: Resource + Serialize + DeserializeOwned,
    F: Fn(&mut T, &T),
{
    let mut existing: BTreeMap<String, T> = tx
        .list::<T>()
        .map_err(store_error)?
        .into_iter()
        .map(|r| (r.id().to_owned(), r))
        .collect();
    let wanted: BTreeSet<String> = records.iter().map(|r| r.id().to_owned()).collect();
    for (id, old) in &existing {
        if is_declared(old) && !wanted.contains(id) {
            tx.delete::<T>(id).map_err(store_error)?;
        }
    }
    existing.retain(|id, old| !is_declared(old) || wanted.contains(id));
    for mut record in records {
        if let Some(old) = existing.get(record.id()) {
            keep(&mut record, old);
        }
        tx.put(&record).map_err(store_error)?;
        existing.insert(record.id().to_owned(), record);
    }
    Ok(existing.into_values().collect())
}

/// Applies the declarations in one transaction; nothing is written when a check fails.
pub fn apply(store: &dyn Store, declared: Declared) -> Result<(), ConfigError> {
    let mut tx = store.begin().map_err(store_error)?;
    let numbers = sync(
        tx.as_mut(),
        declared.numbers,
        |n: &PhoneNumber| n.declared,
        |new, old| {
            new.created_timestamp = old.created_timestamp.clone();
            new.tags = old.tags.clone();
            new.associations = old.associations.clone();
            new.calling_name = old.calling_name.clone();
            new.calling_name_status = old.calling_name_status.clone();
        },
    )?;
    let apps = sync(
        tx.as_mut(),
        declared.applications,
        |a: &SipMediaApplication| a.declared,
        |new, old| {
            new.created_timestamp = old.created_timestamp.clone();
            new.tags = old.tags.clone();
            new.logging = old.logging;
        },
    )?;
    sync(
        tx.as_mut(),
        declared.connectors,
        |v: &VoiceConnector| v.declared,
        |new, old| {
            new.created_timestamp = old.created_timestamp.clone();
            new.tags = old.tags.clone();
            if new.origination.is_none() {
                new.origination = old.origination.clone();
            }
            new.logging = old.logging.clone();
            new.streaming = old.streaming.clone();
            new.emergency_calling = old.emergency_calling.clone();
        },
    )?;
    let rules = sync(
        tx.as_mut(),
        declared.rules,
        |r: &SipRule| r.declared,
        |new, old| new.created_timestamp = old.created_timestamp.clone(),
    )?;
    // The file's rules were checked among themselves; now against the API's.
    let mut triggers = BTreeMap::new();
    for rule in &rules {
        if let Some(other) = triggers.insert(
            (rule.trigger_type.clone(), rule.trigger_value.clone()),
            rule.sip_rule_id.clone(),
        ) {
            return Err(bad(format!(
                "SIP rule `{}`: another rule (`{other}`) already triggers on {}",
                rule.name, rule.trigger_value
            )));
        }
        if rule.disabled {
            continue;
        }
        for t in &rule.target_applications {
            if !apps
                .iter()
                .any(|a| a.sip_media_application_id == t.sip_media_application_id)
            {
                return Err(bad(format!(
                    "SIP rule `{}` targets application `{}`, which is no longer defined",
                    rule.name, t.sip_media_application_id
                )));
            }
        }
        if rule.trigger_type == "ToPhoneNumber"
            && !numbers
                .iter()
                .any(|n| n.e164_phone_number == rule.trigger_value)
        {
            return Err(bad(format!(
                "SIP rule `{}`: {} is no longer in the phone number inventory",
                rule.name, rule.trigger_value
            )));
        }
    }
    tx.commit().map_err(store_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sma_store::SqliteStore;
    use std::path::Path;

    fn file(text: &str) -> File {
        File::parse(text, Path::new("test.toml")).expect("parse")
    }

    const BASE: &str = r#"
[[phone_numbers]]
number = "+12065550100"
[[phone_numbers]]
number = "+12065550101"
[[applications]]
id = "app-1"
name = "first"
endpoint = "http://127.0.0.1:9/"
[[sip_rules]]
id = "rule-1"
name = "demo"
trigger_type = "ToPhoneNumber"
trigger_value = "+12065550100"
targets = [{ application = "app-1", priority = 1 }]
"#;

    fn all<T: Resource + DeserializeOwned>(store: &SqliteStore) -> Vec<T> {
        let mut tx = store.begin().expect("begin");
        tx.list::<T>().expect("list")
    }

    #[test]
    fn declarations_are_created_replaced_and_removed_while_api_resources_stay() {
        let store = SqliteStore::in_memory().expect("store");
        apply(&store, declare(&file(BASE)).expect("declare")).expect("apply");
        let first = all::<SipMediaApplication>(&store);
        assert_eq!(first.len(), 1);
        assert!(first[0].declared);
        // A resource the API created (not declared) is kept by every later start.
        let mut api_app = first[0].clone();
        api_app.sip_media_application_id = "from-api".into();
        api_app.declared = false;
        {
            let mut tx = store.begin().expect("begin");
            tx.put(&api_app).expect("put");
            tx.commit().expect("commit");
        }
        // The file changes: the application is renamed and the rule is gone.
        let changed = BASE.replace("name = \"first\"", "name = \"renamed\"");
        let changed = &changed[..changed.find("[[sip_rules]]").expect("rules")];
        apply(&store, declare(&file(changed)).expect("declare")).expect("apply");
        let apps = all::<SipMediaApplication>(&store);
        let declared = apps.iter().find(|a| a.declared).expect("declared app");
        assert_eq!(declared.name, "renamed");
        assert_eq!(declared.created_timestamp, first[0].created_timestamp);
        assert!(apps
            .iter()
            .any(|a| a.sip_media_application_id == "from-api"));
        assert!(all::<SipRule>(&store).is_empty());
        assert_eq!(all::<PhoneNumber>(&store).len(), 2);
    }

    #[test]
    fn a_declaration_that_clashes_with_the_api_is_refused_and_writes_nothing() {
        let store = SqliteStore::in_memory().expect("store");
        let without_rule = &BASE[..BASE.find("[[sip_rules]]").expect("rules")];
        apply(&store, declare(&file(without_rule)).expect("declare")).expect("apply");
        let mut api_rule = declare(&file(BASE)).expect("declare").rules.remove(0);
        api_rule.sip_rule_id = "api-rule".into();
        api_rule.declared = false;
        {
            let mut tx = store.begin().expect("begin");
            tx.put(&api_rule).expect("put");
            tx.commit().expect("commit");
        }
        let err = apply(&store, declare(&file(BASE)).expect("declare")).expect_err("clash");
        assert!(
            err.to_string().contains("already triggers on +12065550100"),
            "{err}"
        );
        let rules = all::<SipRule>(&store);
        assert_eq!(rules.len(), 1, "the refused start wrote its rule");
        assert_eq!(rules[0].sip_rule_id, "api-rule");
    }

    #[test]
    fn a_meeting_dial_in_is_kept_with_its_application_and_a_bad_one_refused() {
        let with = |uri: &str| {
            BASE.replace(
                "endpoint = \"http://127.0.0.1:9/\"",
                &format!("endpoint = \"http://127.0.0.1:9/\"\nmeeting_dial_in = \"{uri}\""),
            )
        };
        let uri = "sip:+17035550122@vc.example;transport=tls";
        let declared = declare(&file(&with(uri))).expect("declare");
        assert_eq!(
            declared.applications[0].meeting_dial_in.as_deref(),
            Some(uri)
        );
        let Err(err) = declare(&file(&with("tel:+17035550122"))) else {
            panic!("a tel: dial-in was accepted");
        };
        assert!(
            err.to_string()
                .contains("application `first`: meeting_dial_in: `tel:+17035550122` is a tel: URI"),
            "{err}"
        );
    }
}
