//! The SSML subset speech engines receive: Polly's elements, flattened into text segments
//! with prosody and pauses.
//!
//! Supported and rendered: `speak`, `break` (time, strength), `prosody` (rate, pitch,
//! volume), `say-as` (digits, telephone, characters / spell-out, others read as text), `sub`
//! (alias), `p` and `s` (a pause after). Accepted and read as their text: `emphasis`, `lang`,
//! `mark`, `phoneme`, `w`, `amazon:*`. Anything else, and anything that is not well-formed, is
//! a [`SsmlError`] naming the problem.

use std::fmt;

/// Longest SSML document accepted (Polly's own limit is 6,000 characters of billed text).
pub const MAX_SSML_BYTES: usize = 20_000;
const MAX_DEPTH: usize = 32;
const MAX_BREAK_MS: u32 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsmlError {
    #[error("SSML is empty")]
    Empty,
    #[error("SSML is {0} bytes, more than {MAX_SSML_BYTES}")]
    TooLong(usize),
    #[error("SSML must start with <speak>")]
    NoSpeak,
    #[error("malformed SSML at byte {at}: {why}")]
    Malformed { at: usize, why: String },
    #[error("unsupported SSML element <{0}>")]
    UnsupportedElement(String),
    #[error("bad value `{value}` for {attribute} on <{element}>")]
    BadAttribute {
        element: String,
        attribute: String,
        value: String,
    },
    #[error("<{open}> closed by </{close}>")]
    Mismatched { open: String, close: String },
    #[error("<{0}> is never closed")]
    Unclosed(String),
    #[error("SSML nests deeper than {MAX_DEPTH} elements")]
    TooDeep,
}

/// Prosody relative to the voice's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prosody {
    /// Speaking rate factor (1.0 = default).
    pub rate: f32,
    /// Pitch change in percent.
    pub pitch_percent: f32,
    /// Volume change in dB.
    pub volume_db: f32,
}

impl Default for Prosody {
    fn default() -> Prosody {
        Prosody {
            rate: 1.0,
            pitch_percent: 0.0,
            volume_db: 0.0,
        }
    }
}

/// A piece of speech.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Text { text: String, prosody: Prosody },
    Pause { ms: u32 },
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Text { text, .. } => f.write_str(text),
            Segment::Pause { ms } => write!(f, "[{ms} ms]"),
        }
    }
}

/// Plain text as one segment.
pub fn plain(text: &str) -> Vec<Segment> {
    let text = text.trim();
    if text.is_empty() {
        return Vec::new();
    }
    vec![Segment::Text {
        text: text.to_owned(),
        prosody: Prosody::default(),
    }]
}

#[derive(Debug)]
struct Open {
    name: String,
    prosody: Prosody,
    say_as: Option<String>,
    alias: Option<String>,
    text: String,
}

/// Parses an SSML document into segments.
pub fn parse(ssml: &str) -> Result<Vec<Segment>, SsmlError> {
    if ssml.len() > MAX_SSML_BYTES {
        return Err(SsmlError::TooLong(ssml.len()));
    }
    let doc = ssml.trim();
    if doc.is_empty() {
        return Err(SsmlError::Empty);
    }
    let mut out: Vec<Segment> = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut saw_speak = false;
    let mut pos = 0;
    let bytes = doc.as_bytes();
    while pos < bytes.len() {
        if bytes[pos] == b'<' {
            let end =
                doc[pos..]
                    .find('>')
                    .map(|i| pos + i)
                    .ok_or_else(|| SsmlError::Malformed {
                        at: pos,
                        why: "unterminated tag".into(),
                    })?;
            let tag = &doc[pos + 1..end];
            let at = pos;
            pos = end + 1;
            if tag.starts_with("!--") {
                let close = doc[at..].find("-->").ok_or_else(|| SsmlError::Malformed {
                    at,
                    why: "unterminated comment".into(),
                })?;
                pos = at + close + 3;
                continue;
            }
            if tag.starts_with('?') || tag.starts_with('!') {
                continue; // XML declaration, doctype
            }
            if let Some(name) = tag.strip_prefix('/') {
                let name = name.trim();
                let open = stack.pop().ok_or_else(|| SsmlError::Malformed {
                    at,
                    why: format!("</{name}> without an open element"),
                })?;
                if open.name != name {
                    return Err(SsmlError::Mismatched {
                        open: open.name,
                        close: name.to_owned(),
                    });
                }
                close_element(open, &mut stack, &mut out);
                continue;
            }
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let (name, attrs) = match tag.find(|c: char| c.is_ascii_whitespace()) {
                Some(i) => (&tag[..i], &tag[i..]),
                None => (tag, ""),
            };
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-:_".contains(&b))
            {
                return Err(SsmlError::Malformed {
                    at,
                    why: format!(
                        "bad element name `{}`",
                        name.chars().take(20).collect::<String>()
                    ),
                });
            }
            let attrs = attributes(attrs, at)?;
            if stack.is_empty() {
                if name != "speak" || saw_speak {
                    return Err(SsmlError::NoSpeak);
                }
                saw_speak = true;
            }
            if stack.len() >= MAX_DEPTH {
                return Err(SsmlError::TooDeep);
            }
            let parent = stack.last().map(|o| o.prosody).unwrap_or_default();
            let mut open = Open {
                name: name.to_owned(),
                prosody: parent,
                say_as: None,
                alias: None,
                text: String::new(),
            };
            let attr = |key: &str| {
                attrs
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
            };
            let bad = |attribute: &str, value: &str| SsmlError::BadAttribute {
                element: name.to_owned(),
                attribute: attribute.to_owned(),
                value: value.to_owned(),
            };
            match name {
                "speak" | "p" | "s" | "emphasis" | "lang" | "mark" | "phoneme" | "w" => {}
                n if n.starts_with("amazon:") => {}
                "break" => {
                    let ms = match (attr("time"), attr("strength")) {
                        (Some(t), _) => break_time(t).ok_or_else(|| bad("time", t))?,
                        (None, Some(s)) => break_strength(s).ok_or_else(|| bad("strength", s))?,
                        (None, None) => 400,
                    };
                    push_pause(&mut out, ms);
                }
                "prosody" => {
                    if let Some(v) = attr("rate") {
                        open.prosody.rate = rate(v).ok_or_else(|| bad("rate", v))?;
                    }
                    if let Some(v) = attr("pitch") {
                        open.prosody.pitch_percent = pitch(v).ok_or_else(|| bad("pitch", v))?;
                    }
                    if let Some(v) = attr("volume") {
                        open.prosody.volume_db = volume(v).ok_or_else(|| bad("volume", v))?;
                    }
                }
                "say-as" => {
                    let v = attr("interpret-as").ok_or_else(|| bad("interpret-as", ""))?;
                    open.say_as = Some(v.to_owned());
                }
                "sub" => {
                    let v = attr("alias").ok_or_else(|| bad("alias", ""))?;
                    open.alias = Some(v.to_owned());
                }
                other => return Err(SsmlError::UnsupportedElement(other.to_owned())),
            }
            if self_closing {
                close_element(open, &mut stack, &mut out);
            } else {
                stack.push(open);
            }
        } else {
            let next = doc[pos..].find('<').map(|i| pos + i).unwrap_or(bytes.len());
            let raw = &doc[pos..next];
            let at = pos;
            pos = next;
            let text = unescape(raw, at)?;
            match stack.last_mut() {
                Some(open) if open.say_as.is_some() || open.alias.is_some() => {
                    open.text.push_str(&text)
                }
                Some(open) => push_text(&mut out, &text, open.prosody),
                None if text.trim().is_empty() => {}
                None => return Err(SsmlError::NoSpeak),
            }
        }
    }
    if let Some(open) = stack.pop() {
        return Err(SsmlError::Unclosed(open.name));
    }
    if !saw_speak {
        return Err(SsmlError::NoSpeak);
    }
    Ok(out)
}

fn close_element(open: Open, stack: &mut [Open], out: &mut Vec<Segment>) {
    let text = if let Some(alias) = &open.alias {
        alias.clone()
    } else if let Some(kind) = &open.say_as {
        say_as(kind, &open.text)
    } else {
        String::new()
    };
    if !text.is_empty() {
        match stack.last_mut() {
            Some(parent) if parent.say_as.is_some() || parent.alias.is_some() => {
                parent.text.push_str(&text)
            }
            _ => push_text(out, &text, open.prosody),
        }
    }
    if matches!(open.name.as_str(), "p" | "s") {
        push_pause(out, if open.name == "p" { 700 } else { 300 });
    }
}

fn push_text(out: &mut Vec<Segment>, text: &str, prosody: Prosody) {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.is_empty() {
        return;
    }
    if let Some(Segment::Text {
        text: last,
        prosody: p,
    }) = out.last_mut()
    {
        if *p == prosody {
            last.push(' ');
            last.push_str(&text);
            return;
        }
    }
    out.push(Segment::Text { text, prosody });
}

fn push_pause(out: &mut Vec<Segment>, ms: u32) {
    if ms == 0 {
        return;
    }
    if let Some(Segment::Pause { ms: last }) = out.last_mut() {
        *last = (*last + ms).min(MAX_BREAK_MS);
        return;
    }
    out.push(Segment::Pause {
        ms: ms.min(MAX_BREAK_MS),
    });
}

/// Renders `say-as`: digits and characters one by one, telephone numbers in groups.
fn say_as(kind: &str, text: &str) -> String {
    let text = text.trim();
    match kind {
        "digits" => text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        "characters" | "spell-out" => text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        "telephone" => {
            // Digits one by one, separators become short pauses (commas).
            let mut out = String::new();
            for c in text.chars() {
                if c.is_ascii_digit() || c == '+' {
                    if !out.is_empty() && !out.ends_with(", ") {
                        out.push(' ');
                    }
                    out.push(if c == '+' { '+' } else { c });
                } else if !out.is_empty() && !out.ends_with(", ") {
                    out.push_str(", ");
                }
            }
            out.trim_end_matches([',', ' ']).to_owned()
        }
        _ => text.to_owned(),
    }
}

fn attributes(text: &str, at: usize) -> Result<Vec<(String, String)>, SsmlError> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| SsmlError::Malformed {
            at,
            why: format!(
                "attribute without a value in `{}`",
                rest.chars().take(30).collect::<String>()
            ),
        })?;
        let key = rest[..eq].trim().to_owned();
        let after = rest[eq + 1..].trim_start();
        let quote = after
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or_else(|| SsmlError::Malformed {
                at,
                why: format!("unquoted value for `{key}`"),
            })?;
        let close = after[1..].find(quote).ok_or_else(|| SsmlError::Malformed {
            at,
            why: format!("unterminated value for `{key}`"),
        })?;
        out.push((key, unescape(&after[1..1 + close], at)?));
        rest = after[close + 2..].trim_start();
    }
    Ok(out)
}

fn unescape(text: &str, at: usize) -> Result<String, SsmlError> {
    if !text.contains('&') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let semi = rest[i..].find(';').ok_or_else(|| SsmlError::Malformed {
            at,
            why: "`&` without `;`".into(),
        })?;
        let entity = &rest[i + 1..i + semi];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| SsmlError::Malformed {
                    at,
                    why: format!("bad character reference &{e};"),
                })?,
            e if e.starts_with('#') => e[1..]
                .parse::<u32>()
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| SsmlError::Malformed {
                    at,
                    why: format!("bad character reference &{e};"),
                })?,
            e => {
                return Err(SsmlError::Malformed {
                    at,
                    why: format!(
                        "unknown entity &{};",
                        e.chars().take(20).collect::<String>()
                    ),
                })
            }
        };
        out.push(c);
        rest = &rest[i + semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn break_time(v: &str) -> Option<u32> {
    let v = v.trim();
    let ms = if let Some(n) = v.strip_suffix("ms") {
        n.trim().parse::<f32>().ok()?
    } else if let Some(n) = v.strip_suffix('s') {
        n.trim().parse::<f32>().ok()? * 1000.0
    } else {
        return None;
    };
    (ms.is_finite() && ms >= 0.0).then(|| (ms as u32).min(MAX_BREAK_MS))
}

fn break_strength(v: &str) -> Option<u32> {
    Some(match v {
        "none" => 0,
        "x-weak" => 100,
        "weak" => 250,
        "medium" => 400,
        "strong" => 700,
        "x-strong" => 1_000,
        _ => return None,
    })
}

fn percent(v: &str) -> Option<f32> {
    let n: f32 = v.strip_suffix('%')?.trim().parse().ok()?;
    n.is_finite().then_some(n)
}

fn rate(v: &str) -> Option<f32> {
    Some(match v {
        "x-slow" => 0.5,
        "slow" => 0.75,
        "medium" => 1.0,
        "fast" => 1.25,
        "x-fast" => 1.75,
        v => {
            let p = percent(v)?;
            (20.0..=200.0).contains(&p).then_some(p / 100.0)?
        }
    })
}

fn pitch(v: &str) -> Option<f32> {
    Some(match v {
        "x-low" => -40.0,
        "low" => -20.0,
        "medium" | "default" => 0.0,
        "high" => 20.0,
        "x-high" => 40.0,
        v => {
            let p = percent(v)?;
            (-100.0..=100.0).contains(&p).then_some(p)?
        }
    })
}

fn volume(v: &str) -> Option<f32> {
    Some(match v {
        "silent" => -100.0,
        "x-soft" => -12.0,
        "soft" => -6.0,
        "medium" | "default" => 0.0,
        "loud" => 6.0,
        "x-loud" => 12.0,
        v => {
            let n: f32 = v.strip_suffix("dB")?.trim().parse().ok()?;
            (n.is_finite() && (-100.0..=20.0).contains(&n)).then_some(n)?
        }
    })
}
