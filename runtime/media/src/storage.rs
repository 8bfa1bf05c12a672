//! The contract's S3 buckets as directories (until an S3-compatible store is added): bucket
//! `b` is `<root>/b` unless configured elsewhere, an object key is a relative path inside it.
//! Keys are checked so a handler cannot read or write outside its bucket.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct Buckets {
    root: PathBuf,
    overrides: BTreeMap<String, PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("bucket name `{0}` is not valid (3-63 of a-z, 0-9, `.`, `-`)")]
    BadBucket(String),
    #[error("key `{0}` is not a relative path inside the bucket")]
    BadKey(String),
}

fn valid_bucket(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'_'
        })
        && name != "."
        && name != ".."
}

impl Buckets {
    pub fn new(root: PathBuf, overrides: BTreeMap<String, PathBuf>) -> Buckets {
        Buckets { root, overrides }
    }

    pub fn bucket_dir(&self, bucket: &str) -> Result<PathBuf, StorageError> {
        if let Some(dir) = self.overrides.get(bucket) {
            return Ok(dir.clone());
        }
        if !valid_bucket(bucket) {
            return Err(StorageError::BadBucket(bucket.to_owned()));
        }
        Ok(self.root.join(bucket))
    }

    /// The file of an object.
    pub fn object(&self, bucket: &str, key: &str) -> Result<PathBuf, StorageError> {
        let dir = self.bucket_dir(bucket)?;
        let path = Path::new(key);
        let inside =
            !key.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
        if !inside {
            return Err(StorageError::BadKey(key.to_owned()));
        }
        Ok(dir.join(path))
    }
}

/// Civil date and time (UTC) of a Unix time in milliseconds:
/// (year, month, day, hour, minute, second, millisecond).
pub fn civil(ms: u64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = (ms / 1000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
        (ms % 1000) as u32,
    )
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `RecordAudio`'s object key (contract §3.9's recommendation):
/// `<Prefix><yyyy>/<mm>/<dd>/<timestamp>_<TransactionId>_<CallId>.wav`.
pub fn record_audio_key(prefix: &str, transaction_id: &str, call_id: &str, ms: u64) -> String {
    let (y, m, d, ..) = civil(ms);
    format!("{prefix}{y:04}/{m:02}/{d:02}/{ms}_{transaction_id}_{call_id}.wav")
}

/// A call recording's key (contract §3.15):
/// `<prefix or Amazon-Chime-SMA-Call-Recordings>/<yyyy>/<mm>/<dd>/<yyyy-mm-dd-hh-mm-ss-mmm>_<TransactionId>_<CallId>.wav`.
pub fn call_recording_key(
    prefix: Option<&str>,
    transaction_id: &str,
    call_id: &str,
    ms: u64,
) -> String {
    let (y, mo, d, h, mi, s, milli) = civil(ms);
    let prefix = prefix
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
        .unwrap_or("Amazon-Chime-SMA-Call-Recordings");
    format!(
        "{prefix}/{y:04}/{mo:02}/{d:02}/{y:04}-{mo:02}-{d:02}-{h:02}-{mi:02}-{s:02}-{milli:03}_{transaction_id}_{call_id}.wav"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_inside_their_bucket() {
        let b = Buckets::new("/data".into(), BTreeMap::new());
        assert_eq!(
            b.object("prompts", "en/welcome.wav").unwrap(),
            PathBuf::from("/data/prompts/en/welcome.wav")
        );
        for key in ["../etc/passwd", "/etc/passwd", "a/../../b", ""] {
            assert_eq!(
                b.object("prompts", key),
                Err(StorageError::BadKey(key.into()))
            );
        }
        assert!(b.object("../x", "k").is_err());
    }

    #[test]
    fn civil_dates_and_keys() {
        // 2024-05-01T12:34:56.789Z
        let ms = 1_714_566_896_789;
        assert_eq!(civil(ms), (2024, 5, 1, 12, 34, 56, 789));
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0, 0));
        assert_eq!(
            call_recording_key(None, "tx", "c", ms),
            "Amazon-Chime-SMA-Call-Recordings/2024/05/01/2024-05-01-12-34-56-789_tx_c.wav"
        );
        assert_eq!(
            record_audio_key("voicemail/", "tx", "c", ms),
            format!("voicemail/2024/05/01/{ms}_tx_c.wav")
        );
    }
}
