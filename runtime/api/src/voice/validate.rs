//! The model's input constraints (lengths, patterns, enumerations), each refused with a
//! message that names the member and the rule.

use crate::error::ApiError;
use sma_store::records::Tag;

/// `SipMediaApplicationName`, `SipRuleName`, `VoiceConnectorName`, …: 1-256 of
/// `[a-zA-Z0-9 _.-]`.
pub fn resource_name(field: &str, value: &str) -> Result<(), ApiError> {
    let ok = (1..=256).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " _.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{field} `{value}` must be 1 to 256 letters, digits, spaces, `_`, `.` or `-`"
        )))
    }
}

/// An E.164 number in its stored form (`+` and 2-15 digits, no leading 0). The model's
/// pattern allows the `+` to be left out; it is added.
pub fn e164(field: &str, value: &str) -> Result<String, ApiError> {
    let digits = value.strip_prefix('+').unwrap_or(value);
    let ok = (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(format!("+{digits}"))
    } else {
        Err(ApiError::bad_request(format!(
            "{field} `{value}` is not an E.164 number (+ then 2 to 15 digits, e.g. +12065550100)"
        )))
    }
}

/// One of `allowed`.
pub fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{field} `{value}` is not one of {}",
            allowed.join(", ")
        )))
    }
}

/// An integer in `min..=max`.
pub fn range(field: &str, value: i64, min: i64, max: i64) -> Result<(), ApiError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{field} {value} is out of range ({min} to {max})"
        )))
    }
}

/// A DNS host name (`RequestUriHostname` triggers, origination hosts).
pub fn host_name(field: &str, value: &str) -> Result<(), ApiError> {
    let ok = (1..=253).contains(&value.len())
        && value.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{field} `{value}` is not a host name"
        )))
    }
}

/// `CallingName`: empty, or 2-15 letters, digits and spaces.
pub fn calling_name(value: &str) -> Result<(), ApiError> {
    let ok = value.is_empty()
        || ((2..=15).contains(&value.len())
            && value.chars().all(|c| c.is_ascii_alphanumeric() || c == ' '));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "CallingName `{value}` must be empty or 2 to 15 letters, digits and spaces"
        )))
    }
}

/// `PhoneNumberName`: up to 256 of words of `[a-zA-Z0-9,._-]` separated by whitespace.
pub fn phone_number_name(value: &str) -> Result<(), ApiError> {
    let ok = value.len() <= 256
        && value.split_whitespace().all(|w| {
            w.chars()
                .all(|c| c.is_ascii_alphanumeric() || ",._-".contains(c))
        })
        && value.trim() == value;
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Name `{value}` must be up to 256 characters: words of letters, digits, `,`, `.`, `_` or `-`"
        )))
    }
}

/// Tags: key 1-128 characters not starting with `aws:`, value up to 256, keys unique.
pub fn tags(tags: &[Tag]) -> Result<(), ApiError> {
    for (i, tag) in tags.iter().enumerate() {
        if !(1..=128).contains(&tag.key.chars().count()) {
            return Err(ApiError::bad_request(format!(
                "Tags[{i}].Key must be 1 to 128 characters"
            )));
        }
        if tag.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ApiError::bad_request(format!(
                "Tags[{i}].Key `{}`: the aws: prefix is reserved",
                tag.key
            )));
        }
        if tag.value.chars().count() > 256 {
            return Err(ApiError::bad_request(format!(
                "Tags[{i}].Value of `{}` is over 256 characters",
                tag.key
            )));
        }
        if tags[..i].iter().any(|t| t.key == tag.key) {
            return Err(ApiError::bad_request(format!(
                "Tags[{i}].Key `{}` is given twice",
                tag.key
            )));
        }
    }
    Ok(())
}

/// The `Tags` of a Create: absent, or 1 or more (the model's `TagList` has at least one)
/// valid tags, no more than `limit`.
pub fn new_tags(tags: Option<Vec<Tag>>, limit: usize) -> Result<Vec<Tag>, ApiError> {
    if tags.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::bad_request(
            "Tags needs 1 to 50 item(s), has 0: leave Tags out for none",
        ));
    }
    let tags = tags.unwrap_or_default();
    self::tags(&tags)?;
    if tags.len() > limit {
        return Err(ApiError::limit_exceeded(format!(
            "Tags: {} tags is over the limit of {limit}",
            tags.len()
        )));
    }
    Ok(tags)
}

/// An S3 bucket name (`S3BucketName`): 3 to 63 of lower-case letters, digits and `-`,
/// starting and ending with a letter or digit, not `xn--…` and not `…-s3alias`.
pub fn bucket_name(field: &str, value: &str) -> Result<(), ApiError> {
    let b = value.as_bytes();
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = (3..=63).contains(&b.len())
        && b.first().copied().is_some_and(edge)
        && b.last().copied().is_some_and(edge)
        && b.iter().all(|&c| edge(c) || c == b'-')
        && !value.starts_with("xn--")
        && !value.ends_with("-s3alias");
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{field} `{value}` is not a bucket name: 3 to 63 lower-case letters, digits and `-`, starting and ending with a letter or digit, not starting with xn-- or ending with -s3alias"
        )))
    }
}

/// A list's length in `min..=max`.
pub fn count(field: &str, len: usize, min: usize, max: usize) -> Result<(), ApiError> {
    if (min..=max).contains(&len) {
        Ok(())
    } else if max == usize::MAX {
        Err(ApiError::bad_request(format!(
            "{field} needs at least {min} item(s), has {len}"
        )))
    } else {
        Err(ApiError::bad_request(format!(
            "{field} needs {min} to {max} item(s), has {len}"
        )))
    }
}

/// A new GUID-form id.
pub fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A new voice connector id in the model's short form: 22 of `[a-z0-9]`.
pub fn new_voice_connector_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut value = u128::from_le_bytes(*uuid::Uuid::new_v4().as_bytes());
    (0..22)
        .map(|_| {
            let c = ALPHABET[(value % 36) as usize] as char;
            value /= 36;
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_adds_the_plus_and_refuses_the_rest() {
        assert_eq!(e164("n", "12065550100").unwrap(), "+12065550100");
        assert_eq!(e164("n", "+442071838750").unwrap(), "+442071838750");
        for bad in ["", "+", "+0123", "+1", "+1206555010012345", "+1-206", "abc"] {
            let e = e164("E164PhoneNumbers[0]", bad).unwrap_err();
            assert!(e.message.contains("E164PhoneNumbers[0]"), "{}", e.message);
        }
    }

    #[test]
    fn names_hosts_and_tags() {
        assert!(resource_name("Name", "IVR main-1.0_x").is_ok());
        assert!(resource_name("Name", "").is_err());
        assert!(resource_name("Name", "bad/slash").is_err());
        assert!(resource_name("Name", &"x".repeat(257)).is_err());
        assert!(host_name("TriggerValue", "pbx.example.com").is_ok());
        assert!(host_name("TriggerValue", "-bad.example").is_err());
        assert!(host_name("TriggerValue", "a..b").is_err());
        assert!(calling_name("").is_ok() && calling_name("Acme Inc").is_ok());
        assert!(calling_name("A").is_err() && calling_name("Acme!").is_err());
        assert!(phone_number_name("main line, 2").is_ok());
        assert!(phone_number_name(" lead").is_err());
        let tag = |k: &str, v: &str| Tag {
            key: k.into(),
            value: v.into(),
        };
        assert!(tags(&[tag("team", "ivr"), tag("env", "")]).is_ok());
        assert!(tags(&[tag("aws:x", "y")]).is_err());
        assert!(tags(&[tag("", "y")]).is_err());
        assert!(tags(&[tag("a", "1"), tag("a", "2")]).is_err());
        assert!(new_tags(Some(vec![]), 50).is_err());
        assert_eq!(new_tags(None, 50).unwrap(), vec![]);
        for good in ["call-records", "abc", "a1-b2"] {
            assert!(bucket_name("CdrBucket", good).is_ok(), "{good}");
        }
        for bad in [
            "x",
            "Call-Records",
            "-abc",
            "abc-",
            "xn--abc",
            "abc-s3alias",
            "a_b",
            "a.b",
        ] {
            assert!(bucket_name("CdrBucket", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn voice_connector_ids_have_the_model_shape() {
        let id = new_voice_connector_id();
        assert_eq!(id.len(), 22);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(id, new_voice_connector_id());
    }
}
