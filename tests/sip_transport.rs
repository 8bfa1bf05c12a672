//! `sma serve`'s transports from the outside, with plain sockets: UDP and TCP over IPv4 and
//! IPv6, TLS with the generated development certificate, connection reuse and idle close,
//! the size limit (513), malformed requests (400) and garbage (dropped).

use sma_e2e::{require_program, Serve};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

fn options(transport: &str, local: SocketAddr, branch: &str, call_id: &str) -> String {
    format!(
        "OPTIONS sip:sma@{local} SIP/2.0\r\n\
Via: SIP/2.0/{transport} {local};branch=z9hG4bK{branch};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:probe@example.test>;tag=p1\r\n\
To: <sip:sma@example.test>\r\n\
Call-ID: {call_id}\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
    )
}

/// Sends the request `make` builds for the client socket's own address; returns the answer.
fn udp_exchange(
    server: SocketAddr,
    bind: &str,
    make: impl FnOnce(SocketAddr) -> Vec<u8>,
) -> Option<String> {
    let socket = UdpSocket::bind(bind).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let request = make(socket.local_addr().expect("local address"));
    socket.send_to(&request, server).expect("send");
    let mut buf = vec![0u8; 65_536];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Reads one whole response (head and Content-Length body) from a stream.
fn read_response(stream: &mut impl Read) -> Option<String> {
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while !data.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => data.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&data).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some(head + &String::from_utf8_lossy(&body))
}

fn status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn options_over_udp_and_tcp_on_ipv4_and_ipv6() {
    let serve = Serve::start(
        "",
        &[
            "udp:127.0.0.1:0",
            "tcp:127.0.0.1:0",
            "udp:[::1]:0",
            "tcp:[::1]:0",
        ],
        &[],
    );
    for (i, (server, bind)) in serve
        .listeners
        .iter()
        .filter(|(t, _)| t == "udp")
        .map(|(_, a)| {
            (
                *a,
                if a.is_ipv4() {
                    "127.0.0.1:0"
                } else {
                    "[::1]:0"
                },
            )
        })
        .enumerate()
    {
        let resp = udp_exchange(server, bind, |local| {
            options("UDP", local, &format!("u{i}"), &format!("udp-{i}")).into_bytes()
        })
        .expect("UDP answer");
        assert_eq!(status(&resp), 200, "{resp}");
        assert!(resp.contains("Allow: INVITE"), "{resp}");
        assert!(resp.contains("Accept: application/sdp"), "{resp}");
        // RFC 3581: rport filled with the source port, received with the source address.
        assert!(resp.contains(";rport="), "{resp}");
    }
    for (server, family) in serve
        .listeners
        .iter()
        .filter(|(t, _)| t == "tcp")
        .map(|(_, a)| (*a, a.is_ipv4()))
    {
        let mut stream = TcpStream::connect(server).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let local = stream.local_addr().unwrap();
        // Two requests on one connection, the second split across writes: both answered on it.
        stream
            .write_all(options("TCP", local, "t1", &format!("tcp-{family}-1")).as_bytes())
            .unwrap();
        let second = options("TCP", local, "t2", &format!("tcp-{family}-2"));
        let (a, b) = second.as_bytes().split_at(40);
        stream.write_all(a).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        stream.write_all(b).unwrap();
        for n in 1..=2 {
            let resp = read_response(&mut stream).expect("TCP answer");
            assert_eq!(status(&resp), 200, "{resp}");
            assert!(resp.contains(&format!("tcp-{family}-{n}")), "{resp}");
        }
    }
}

#[test]
fn oversize_messages_get_513_and_the_connection_closes() {
    let serve = Serve::start(
        "[sip]\nmax_message_bytes = 2000\n",
        &["udp:127.0.0.1:0", "tcp:127.0.0.1:0"],
        &[],
    );
    let pad = format!("X-Pad: {}\r\n", "a".repeat(3000));
    let resp = udp_exchange(serve.addr("udp"), "127.0.0.1:0", |local| {
        options("UDP", local, "big1", "big-udp")
            .replace("Content-Length", &format!("{pad}Content-Length"))
            .into_bytes()
    })
    .expect("answer");
    assert_eq!(status(&resp), 513, "{resp}");
    let mut stream = TcpStream::connect(serve.addr("tcp")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let local = stream.local_addr().unwrap();
    let req = options("TCP", local, "big2", "big-tcp")
        .replace("Content-Length: 0", "Content-Length: 5000");
    stream.write_all(req.as_bytes()).unwrap();
    let resp = read_response(&mut stream).expect("513 before close");
    assert_eq!(status(&resp), 513, "{resp}");
    assert!(resp.contains("2000-byte limit"), "{resp}");
    let mut rest = Vec::new();
    assert_eq!(
        stream.read_to_end(&mut rest).unwrap_or(0),
        0,
        "closed after the 513"
    );
}

#[test]
fn malformed_requests_get_400_and_garbage_is_dropped() {
    let serve = Serve::start("", &["udp:127.0.0.1:0"], &[]);
    let server = serve.addr("udp");
    let resp = udp_exchange(server, "127.0.0.1:0", |local| {
        options("UDP", local, "m1", "bad-1")
            .replace("CSeq: 1 OPTIONS", "CSeq: one OPTIONS")
            .into_bytes()
    })
    .expect("400");
    assert_eq!(status(&resp), 400, "{resp}");
    assert!(resp.contains("CSeq"), "the reason names the header: {resp}");
    assert_eq!(
        udp_exchange(server, "127.0.0.1:0", |_| {
            b"\x00\x01 not sip at all\r\n\r\n".to_vec()
        }),
        None,
        "garbage gets no answer"
    );
    serve.wait_for_log("message dropped", 1, Duration::from_secs(2));
    let resp = udp_exchange(server, "127.0.0.1:0", |local| {
        options("UDP", local, "m2", "after-garbage").into_bytes()
    })
    .expect("still serving");
    assert_eq!(status(&resp), 200);
}

#[test]
fn idle_tcp_connections_are_closed() {
    let serve = Serve::start(
        "[sip]\nconnection_idle_secs = 1\n",
        &["tcp:127.0.0.1:0"],
        &[],
    );
    let mut stream = TcpStream::connect(serve.addr("tcp")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    assert_eq!(
        stream.read(&mut buf).unwrap_or(0),
        0,
        "closed by the server"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[test]
fn tls_listener_answers_with_the_generated_certificate() {
    let openssl = require_program("openssl", "openssl");
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("dev.pem");
    let serve = Serve::start(
        "",
        &["tls:127.0.0.1:0"],
        &["--tls-dev-cert-out", cert.to_str().unwrap()],
    );
    let server = serve.addr("tls");
    let mut child = Command::new(openssl)
        .args(["s_client", "-quiet", "-verify_return_error", "-connect"])
        .arg(server.to_string())
        .arg("-CAfile")
        .arg(&cert)
        .args(["-verify_hostname", "localhost"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = child.stdin.take().unwrap();
    let local: SocketAddr = "127.0.0.1:5999".parse().unwrap();
    stdin
        .write_all(options("TLS", local, "tls1", "tls-1").as_bytes())
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || read_response(&mut stdout));
    std::thread::sleep(Duration::from_secs(2));
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let resp = reader
        .join()
        .unwrap()
        .unwrap_or_else(|| panic!("no TLS answer\n{}", serve.log()));
    assert_eq!(status(&resp), 200, "{resp}");
    assert!(resp.contains("tls-1"));
}
