//! Webhook invocation over loopback: signature, pooling, and each failure class.

mod common;
#[path = "common/http.rs"]
mod http;

use http::{serve, Reply};
use sma_actions::ResponseError;
use sma_handler::signature::{verify, SIGNATURE_HEADER};
use sma_handler::{InvokeError, WebhookClient, WebhookHandler};
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const OK: &str = r#"{"SchemaVersion":"1.0","Actions":[]}"#;

fn hook(url: &str, secret: Option<&[u8]>, deadline: Duration) -> WebhookHandler {
    WebhookHandler::new(WebhookClient::new().unwrap(), url, secret, deadline).unwrap()
}

#[tokio::test]
async fn posts_the_event_signed_and_reuses_the_connection() {
    let server = serve(Reply::Status(200, OK.into())).await;
    let handler = hook(&server.url, Some(b"s3cret"), Duration::from_secs(5));
    let event = common::fixture("new_inbound_call.json");
    for _ in 0..5 {
        let v = handler.invoke(&event, "tx-1").await.unwrap();
        assert_eq!(v.to_value()["SchemaVersion"], "1.0");
    }
    assert_eq!(server.seen.requests.load(Ordering::SeqCst), 5);
    assert_eq!(
        server.seen.connections.load(Ordering::SeqCst),
        1,
        "keep-alive pooling"
    );
    let (headers, body) = server.seen.last.lock().unwrap().clone().unwrap();
    assert_eq!(body, event.as_bytes());
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == &name.to_ascii_lowercase())
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(header("x-sma-transaction-id"), "tx-1");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    verify(b"s3cret", &header(SIGNATURE_HEADER), &body, now, 300).unwrap();
    assert!(verify(b"other", &header(SIGNATURE_HEADER), &body, now, 300).is_err());
}

#[tokio::test]
async fn non_2xx_is_reported_with_the_body() {
    let server = serve(Reply::Status(500, r#"{"message":"boom"}"#.into())).await;
    let err = hook(&server.url, None, Duration::from_secs(5))
        .invoke(OK, "tx")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        InvokeError::HttpStatus {
            status: 500,
            body: r#"{"message":"boom"}"#.into()
        }
    );
}

#[tokio::test]
async fn slow_webhook_hits_the_deadline() {
    let server = serve(Reply::Slow(Duration::from_secs(10), OK.into())).await;
    let err = hook(&server.url, None, Duration::from_millis(300))
        .invoke(OK, "tx")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        InvokeError::DeadlineExceeded(Duration::from_millis(300))
    );
}

#[tokio::test]
async fn refused_connection_is_a_connect_failure() {
    // Bind then drop a listener: the port is free and nothing accepts on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = hook(
        &format!("http://127.0.0.1:{port}/"),
        None,
        Duration::from_secs(5),
    )
    .invoke(OK, "tx")
    .await
    .unwrap_err();
    assert_eq!(err.kind(), "connect", "{err}");
}

#[tokio::test]
async fn bad_bodies_are_typed() {
    let server = serve(Reply::Status(200, "<html>oops</html>".into())).await;
    let err = hook(&server.url, None, Duration::from_secs(5))
        .invoke(OK, "tx")
        .await
        .unwrap_err();
    assert!(
        matches!(err, InvokeError::InvalidResponse(ResponseError::NotJson(_))),
        "{err:?}"
    );

    let big = format!(r#"{{"SchemaVersion":"1.0","X":"{}"}}"#, "x".repeat(1 << 20));
    let server = serve(Reply::Status(200, big)).await;
    let err = hook(&server.url, None, Duration::from_secs(5))
        .invoke(OK, "tx")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            InvokeError::InvalidResponse(ResponseError::TooLarge { .. })
        ),
        "{err:?}"
    );
}

#[test]
fn urls_are_checked() {
    let client = WebhookClient::new().unwrap();
    for bad in ["not a url", "ftp://example.com/hook"] {
        assert!(matches!(
            WebhookHandler::new(client.clone(), bad, None, Duration::from_secs(1)),
            Err(InvokeError::Load(_))
        ));
    }
}
