//! Which `chime-sdk-voice` or `chime-sdk-meetings` operation a request is: the models' method
//! and URI template for each operation (`model/routes.json`, generated from botocore's
//! service models by `model/make_routes.py`), matched against the request. The two models'
//! paths do not overlap except for the tag operations, which are the same in both.
//!
//! A template is a path with `{label}` segments and, for some operations, a fixed query
//! (`/tags?operation=tag-resource`): the request must carry that query pair, and among the
//! operations that match, the one with the fixed query wins over the one without.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
struct RouteEntry {
    name: String,
    method: String,
    uri: String,
    code: u16,
    service: String,
}

#[derive(Debug, Deserialize)]
struct RouteFile {
    operations: Vec<RouteEntry>,
}

/// One operation of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub name: String,
    pub method: String,
    /// The status of a success (200, 201, 202 or 204).
    pub code: u16,
    /// `chime-sdk-voice` or `chime-sdk-meetings`.
    pub service: String,
    segments: Vec<Segment>,
    /// `?operation=...`-style pairs the request must carry.
    query: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Label(String),
}

/// A matched request: the operation and its path labels (percent-decoded).
#[derive(Debug, Clone, PartialEq)]
pub struct Matched<'a> {
    pub route: &'a Route,
    pub labels: BTreeMap<String, String>,
}

/// Why no operation matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("no operation of chime-sdk-voice or chime-sdk-meetings has the path {0}")]
    UnknownPath(String),
    #[error("{path} does not accept {method} (it accepts {allowed})")]
    WrongMethod {
        path: String,
        method: String,
        allowed: String,
    },
}

/// Decodes `%XX` escapes into UTF-8 text; `None` for malformed escapes or bytes.
pub fn percent_decode(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The query string's pairs, decoded.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(k).unwrap_or_else(|| k.to_owned()),
                percent_decode(v).unwrap_or_else(|| v.to_owned()),
            )
        })
        .collect()
}

/// Every operation of the model.
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// The router for the bundled models.
    pub fn chime_sdk() -> Router {
        Router::from_json(include_str!("../model/routes.json"))
            .unwrap_or_else(|e| panic!("the bundled model/routes.json is invalid: {e}"))
    }

    fn from_json(text: &str) -> Result<Router, serde_json::Error> {
        let file: RouteFile = serde_json::from_str(text)?;
        let routes = file
            .operations
            .into_iter()
            .map(|e| {
                let (path, query) = e.uri.split_once('?').unwrap_or((&e.uri, ""));
                let segments = path
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(
                        |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some(label) => Segment::Label(label.trim_end_matches('+').to_owned()),
                            None => Segment::Literal(s.to_owned()),
                        },
                    )
                    .collect();
                Route {
                    name: e.name,
                    method: e.method,
                    code: e.code,
                    service: e.service,
                    segments,
                    query: query_pairs(query),
                }
            })
            .collect();
        Ok(Router { routes })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The operation a request is.
    pub fn find(&self, method: &str, target: &str) -> Result<Matched<'_>, RouteError> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let pairs = query_pairs(query);
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut best: Option<Matched<'_>> = None;
        let mut methods = Vec::new();
        for route in &self.routes {
            if route.segments.len() != parts.len() {
                continue;
            }
            let mut labels = BTreeMap::new();
            let fits = route
                .segments
                .iter()
                .zip(&parts)
                .all(|(seg, part)| match seg {
                    Segment::Literal(l) => l == part,
                    Segment::Label(name) => match percent_decode(part) {
                        Some(v) if !v.is_empty() => {
                            labels.insert(name.clone(), v);
                            true
                        }
                        _ => false,
                    },
                });
            let query_fits = route.query.iter().all(|q| pairs.contains(q));
            if !fits || !query_fits {
                continue;
            }
            if route.method != method {
                methods.push(route.method.clone());
                continue;
            }
            let better = best
                .as_ref()
                .is_none_or(|b| route.query.len() > b.route.query.len());
            if better {
                best = Some(Matched { route, labels });
            }
        }
        match best {
            Some(m) => Ok(m),
            None if !methods.is_empty() => {
                methods.sort();
                methods.dedup();
                Err(RouteError::WrongMethod {
                    path: path.to_owned(),
                    method: method.to_owned(),
                    allowed: methods.join(", "),
                })
            }
            None => Err(RouteError::UnknownPath(path.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_model_has_every_operation() {
        let r = Router::chime_sdk();
        assert_eq!(r.routes().len(), 109);
        let names: Vec<&str> = r.routes().iter().map(|r| r.name.as_str()).collect();
        for op in [
            "CreateSipMediaApplication",
            "UpdateSipMediaApplicationCall",
            "CreatePhoneNumberOrder",
            "PutVoiceConnectorTermination",
            "ListAvailableVoiceConnectorRegions",
            "TagResource",
            "CreateMeeting",
            "BatchUpdateAttendeeCapabilitiesExcept",
        ] {
            assert!(names.contains(&op), "{op}");
        }
        let tags = r
            .routes()
            .iter()
            .filter(|r| r.name == "TagResource")
            .count();
        assert_eq!(tags, 1, "the tag operations are listed once");
    }

    #[test]
    fn matches_paths_labels_and_fixed_queries() {
        let r = Router::chime_sdk();
        let m = r.find("GET", "/sip-media-applications/abc-123").unwrap();
        assert_eq!(m.route.name, "GetSipMediaApplication");
        assert_eq!(m.labels["sipMediaApplicationId"], "abc-123");
        let m = r.find("POST", "/sip-media-applications").unwrap();
        assert_eq!(
            (m.route.name.as_str(), m.route.code),
            ("CreateSipMediaApplication", 201)
        );
        let m = r
            .find("GET", "/sip-media-applications?max-results=5")
            .unwrap();
        assert_eq!(m.route.name, "ListSipMediaApplications");
        let m = r.find("POST", "/tags?operation=tag-resource").unwrap();
        assert_eq!(m.route.name, "TagResource");
        let m = r.find("POST", "/tags?operation=untag-resource").unwrap();
        assert_eq!(m.route.name, "UntagResource");
        let m = r.find("GET", "/phone-numbers/%2B12065550100").unwrap();
        assert_eq!(m.route.name, "GetPhoneNumber");
        assert_eq!(m.labels["phoneNumberId"], "+12065550100");
        let m = r
            .find(
                "POST",
                "/voice-connectors/vc1?operation=associate-phone-numbers",
            )
            .unwrap();
        assert_eq!(m.route.name, "AssociatePhoneNumbersWithVoiceConnector");
        let id = "5b1a3f9e-0000-4000-8000-00000000abcd";
        let m = r
            .find("POST", "/meetings?operation=create-attendees")
            .unwrap();
        assert_eq!(
            (m.route.name.as_str(), m.route.service.as_str()),
            ("CreateMeetingWithAttendees", "chime-sdk-meetings")
        );
        assert_eq!(
            r.find("POST", "/meetings").unwrap().route.name,
            "CreateMeeting"
        );
        let m = r
            .find(
                "POST",
                &format!("/meetings/{id}/attendees?operation=batch-create"),
            )
            .unwrap();
        assert_eq!(m.route.name, "BatchCreateAttendee");
        assert_eq!(m.labels["MeetingId"], id);
        let m = r
            .find("DELETE", &format!("/meetings/{id}/attendees/{id}"))
            .unwrap();
        assert_eq!(
            (m.route.name.as_str(), m.route.code),
            ("DeleteAttendee", 204)
        );
    }

    #[test]
    fn unknown_paths_and_methods_are_told_apart() {
        let r = Router::chime_sdk();
        assert_eq!(
            r.find("GET", "/nothing/here"),
            Err(RouteError::UnknownPath("/nothing/here".into()))
        );
        match r.find("PATCH", "/sip-media-applications/x") {
            Err(RouteError::WrongMethod { allowed, .. }) => assert_eq!(allowed, "DELETE, GET, PUT"),
            other => panic!("{other:?}"),
        }
        assert!(r.find("GET", "/sip-media-applications/%zz").is_err());
        assert!(r.find("GET", "").is_err());
    }
}
