//! Numbering facts the router and the API share: country calling codes.

/// Country calling codes of the regions a `calling_regions` list can name (ISO 3166 alpha-2).
/// Longest prefix first where codes nest (+1 covers the whole North American plan).
pub const CALLING_CODES: &[(&str, &str)] = &[
    ("1", "US"),
    ("1", "CA"),
    ("44", "GB"),
    ("49", "DE"),
    ("33", "FR"),
    ("39", "IT"),
    ("34", "ES"),
    ("31", "NL"),
    ("32", "BE"),
    ("41", "CH"),
    ("43", "AT"),
    ("45", "DK"),
    ("46", "SE"),
    ("47", "NO"),
    ("353", "IE"),
    ("351", "PT"),
    ("358", "FI"),
    ("48", "PL"),
    ("61", "AU"),
    ("64", "NZ"),
    ("81", "JP"),
    ("82", "KR"),
    ("65", "SG"),
    ("852", "HK"),
    ("91", "IN"),
    ("55", "BR"),
    ("52", "MX"),
    ("27", "ZA"),
    ("971", "AE"),
    ("972", "IL"),
];

/// The ISO 3166 country of an E.164 number's digits (the first region its calling code
/// names; `+1` is reported as `US`).
pub fn country_of(digits: &str) -> Option<&'static str> {
    let mut best: Option<&(&str, &'static str)> = None;
    for entry in CALLING_CODES
        .iter()
        .filter(|(code, _)| digits.starts_with(code))
    {
        if best.is_none_or(|b| entry.0.len() > b.0.len()) {
            best = Some(entry);
        }
    }
    best.map(|(_, region)| *region)
}

/// Toll-free numbers of the North American plan (`+1 8xx` codes reserved for them).
pub fn is_toll_free(digits: &str) -> bool {
    ["1800", "1833", "1844", "1855", "1866", "1877", "1888"]
        .iter()
        .any(|p| digits.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_and_toll_free() {
        assert_eq!(country_of("12065550100"), Some("US"));
        assert_eq!(country_of("353861234567"), Some("IE"));
        assert_eq!(country_of("999"), None);
        assert!(is_toll_free("18005550100"));
        assert!(!is_toll_free("12065550100"));
    }
}
