//! Limits of the contract (§6). Every one is a value an operator can change; the defaults are
//! the documented numbers.

/// Limits applied when validating a handler response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest response body in bytes (1 MiB).
    pub max_response_bytes: usize,
    /// Actions per response (10).
    pub max_actions: usize,
    /// Transaction attribute pairs (100; the legacy profile has 10).
    pub max_attribute_pairs: usize,
    /// Serialized transaction attributes in bytes (20 KB).
    pub max_attributes_bytes: usize,
    /// Characters per attribute key and value (none; the legacy profile has 1024).
    pub max_attribute_entry_chars: Option<usize>,
    /// Characters of `Speak` text (1,000).
    pub max_speech_chars: usize,
    /// Symbols in a `SendDigits` string (50).
    pub max_send_digits: usize,
    /// `MaxNumberOfDigits` ceiling (128).
    pub max_collect_digits: i64,
    /// Longest `Pause` in milliseconds (30,000).
    pub max_pause_ms: i64,
    /// Longest `CallAndBridge` answer timeout in seconds (120).
    pub max_call_timeout_seconds: i64,
    /// Serialized `StartBotConversation.Configuration` in bytes (10 KB).
    pub max_bot_configuration_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_response_bytes: 1024 * 1024,
            max_actions: 10,
            max_attribute_pairs: 100,
            max_attributes_bytes: 20 * 1024,
            max_attribute_entry_chars: None,
            max_speech_chars: 1000,
            max_send_digits: 50,
            max_collect_digits: 128,
            max_pause_ms: 30_000,
            max_call_timeout_seconds: 120,
            max_bot_configuration_bytes: 10 * 1024,
        }
    }
}

impl Limits {
    /// The stricter profile some handlers were written against: 10 attribute pairs with keys and
    /// values of at most 1024 characters.
    pub fn legacy() -> Self {
        Self {
            max_attribute_pairs: 10,
            max_attribute_entry_chars: Some(1024),
            ..Self::default()
        }
    }
}
