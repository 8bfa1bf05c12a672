//! Text-to-speech: the SSML subset (and its errors), eSpeak NG synthesis with voices,
//! languages and prosody, the cache, and the HTTP engine against a local server.

use sma_media::codec::AudioCodec;
use sma_media::prompt::PromptCache;
use sma_media::tts::espeak::Espeak;
use sma_media::tts::http::{HttpTts, HttpTtsConfig};
use sma_media::tts::ssml::{parse, Prosody, Segment, SsmlError};
use sma_media::tts::{cached, voice, SpeechRequest, Synthesizer, TextType, TtsError};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn text(t: &str) -> SpeechRequest {
    SpeechRequest {
        text: t.into(),
        text_type: TextType::Text,
        voice_id: None,
        language_code: None,
    }
}

fn ssml(t: &str) -> SpeechRequest {
    SpeechRequest {
        text_type: TextType::Ssml,
        ..text(t)
    }
}

fn seconds(s: &sma_media::tts::Speech) -> f64 {
    s.samples.len() as f64 / f64::from(s.sample_rate)
}

fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / samples.len().max(1) as f64)
        .sqrt()
}

#[test]
fn ssml_subset_is_flattened_into_segments() {
    let segs = parse(
        "<speak>Hello <break time=\"1s\"/> <prosody rate=\"x-slow\" pitch=\"+20%\" volume=\"loud\">slow</prosody> \
         call <say-as interpret-as=\"digits\">123</say-as> or <say-as interpret-as=\"telephone\">555-0100</say-as>. \
         <sub alias=\"World Wide Web\">WWW</sub> &amp; <emphasis>more</emphasis><p>para</p></speak>",
    )
    .unwrap();
    assert_eq!(
        segs[0],
        Segment::Text {
            text: "Hello".into(),
            prosody: Prosody::default()
        }
    );
    assert_eq!(segs[1], Segment::Pause { ms: 1000 });
    assert_eq!(
        segs[2],
        Segment::Text {
            text: "slow".into(),
            prosody: Prosody {
                rate: 0.5,
                pitch_percent: 20.0,
                volume_db: 6.0
            }
        }
    );
    let rest: Vec<String> = segs[3..].iter().map(|s| s.to_string()).collect();
    assert_eq!(
        rest,
        vec![
            "call 1 2 3 or 5 5 5, 0 1 0 0 . World Wide Web & more para".to_string(),
            "[700 ms]".to_string()
        ]
    );
}

#[test]
fn broken_ssml_gets_errors_that_name_the_problem() {
    for (doc, expected) in [
        ("", SsmlError::Empty),
        ("hello", SsmlError::NoSpeak),
        ("<p>x</p>", SsmlError::NoSpeak),
        ("<speak>x", SsmlError::Unclosed("speak".into())),
        (
            "<speak><prosody>x</speak>",
            SsmlError::Mismatched {
                open: "prosody".into(),
                close: "speak".into(),
            },
        ),
        (
            "<speak><audio src=\"x\"/></speak>",
            SsmlError::UnsupportedElement("audio".into()),
        ),
        (
            "<speak><break time=\"soon\"/></speak>",
            SsmlError::BadAttribute {
                element: "break".into(),
                attribute: "time".into(),
                value: "soon".into(),
            },
        ),
        (
            "<speak><prosody rate=\"999%\">x</prosody></speak>",
            SsmlError::BadAttribute {
                element: "prosody".into(),
                attribute: "rate".into(),
                value: "999%".into(),
            },
        ),
    ] {
        assert_eq!(parse(doc), Err(expected), "{doc}");
    }
    for doc in [
        "<speak>a &bogus; b</speak>",
        "<speak><break time=1s/></speak>",
        "<speak>a < b</speak>",
        "<speak><x",
    ] {
        assert!(
            matches!(parse(doc), Err(SsmlError::Malformed { .. })),
            "{doc}"
        );
    }
    let big = format!("<speak>{}</speak>", "a ".repeat(50_000));
    assert!(matches!(parse(&big), Err(SsmlError::TooLong(_))));
    let deep = format!("<speak>{}x{}</speak>", "<p>".repeat(40), "</p>".repeat(40));
    assert_eq!(parse(&deep), Err(SsmlError::TooDeep));
    // Every prefix of a good document is handled without panicking.
    let good = "<speak>Hi <prosody rate=\"slow\">there</prosody><break strength=\"strong\"/>&#x41;</speak>";
    for end in 0..good.len() {
        let _ = parse(&good[..end]);
    }
}

#[test]
fn espeak_speaks_text_in_the_voice_and_language_asked() {
    let engine = Espeak;
    let hello = engine
        .synthesize(&text("Thank you for calling. Goodbye."))
        .unwrap();
    assert!(hello.sample_rate >= 16_000);
    assert!(
        (0.8..6.0).contains(&seconds(&hello)),
        "{} s",
        seconds(&hello)
    );
    assert!(rms(&hello.samples) > 500.0, "audible");
    // A male voice, Spanish, a bilingual override: all speak.
    for (voice_id, language) in [
        (Some("Matthew"), None),
        (Some("Lucia"), None),
        (Some("Joanna"), Some("es-US")),
    ] {
        let mut r = text("Hola, gracias por llamar.");
        r.voice_id = voice_id.map(String::from);
        r.language_code = language.map(String::from);
        let s = engine.synthesize(&r).unwrap();
        assert!(seconds(&s) > 0.5, "{voice_id:?}");
    }
    // Pauses and rate change the length.
    let plain = seconds(
        &engine
            .synthesize(&ssml("<speak>one two three</speak>"))
            .unwrap(),
    );
    let paused = seconds(
        &engine
            .synthesize(&ssml("<speak>one <break time=\"2s\"/> two three</speak>"))
            .unwrap(),
    );
    assert!((paused - plain - 2.0).abs() < 0.4, "{plain} -> {paused}");
    let slow = seconds(
        &engine
            .synthesize(&ssml(
                "<speak><prosody rate=\"x-slow\">one two three four five</prosody></speak>",
            ))
            .unwrap(),
    );
    let fast = seconds(
        &engine
            .synthesize(&ssml(
                "<speak><prosody rate=\"x-fast\">one two three four five</prosody></speak>",
            ))
            .unwrap(),
    );
    assert!(slow > fast * 1.8, "x-slow {slow} s vs x-fast {fast} s");
}

#[test]
fn espeak_errors_name_the_voice_or_language() {
    let engine = Espeak;
    let mut r = text("hello");
    r.voice_id = Some("Nobody".into());
    assert_eq!(
        engine.synthesize(&r),
        Err(TtsError::UnknownVoice("Nobody".into()))
    );
    let mut r = text("hello");
    r.language_code = Some("xx-XX".into());
    assert_eq!(
        engine.synthesize(&r),
        Err(TtsError::UnsupportedLanguage {
            engine: "espeak",
            language: "xx-XX".into()
        })
    );
    assert_eq!(engine.synthesize(&text("   ")), Err(TtsError::Empty));
    assert!(matches!(
        engine.synthesize(&ssml("<speak>broken")),
        Err(TtsError::Ssml(_))
    ));
    assert!(voice("joanna").unwrap().female);
}

#[test]
fn synthesized_speech_is_cached_by_engine_voice_and_text() {
    let cache = PromptCache::new(8, 20);
    let engine = Espeak;
    let a = cached(
        &cache,
        &engine,
        &text("Press one for sales."),
        AudioCodec::Pcmu,
    )
    .unwrap();
    let b = cached(
        &cache,
        &engine,
        &text("Press one for sales."),
        AudioCodec::Pcmu,
    )
    .unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert_eq!(cache.decodes.load(Ordering::Relaxed), 1);
    let mut other = text("Press one for sales.");
    other.voice_id = Some("Matthew".into());
    cached(&cache, &engine, &other, AudioCodec::Pcmu).unwrap();
    assert_eq!(cache.decodes.load(Ordering::Relaxed), 2);
    assert!(a.frames() > 20, "resampled to 8 kHz and encoded");
}

/// A one-request speech server: checks the request and answers with `status` and `body`.
fn server(status: &'static str, body: Vec<u8>) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut length = 0;
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
        }
        let mut request = vec![0u8; length];
        reader.read_exact(&mut request).unwrap();
        let mut stream = stream;
        write!(stream, "HTTP/1.1 {status}\r\nContent-Type: audio/wav\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
        stream.write_all(&body).unwrap();
        format!("{head}\n{}", String::from_utf8_lossy(&request))
    });
    (url, handle)
}

fn wav_tone() -> Vec<u8> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 24_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
    for i in 0..24_000 {
        w.write_sample(((i as f32 * 0.1).sin() * 8000.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
    cursor.into_inner()
}

fn http_engine(url: &str) -> HttpTts {
    HttpTts::new(HttpTtsConfig {
        base_url: url.into(),
        model: "tts-1".into(),
        default_voice: "alloy".into(),
        voice_map: vec![("Joanna".into(), "nova".into())],
        api_key: Some("secret".into()),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

#[test]
fn http_engine_posts_openai_style_requests_and_decodes_wav() {
    let (url, handle) = server("200 OK", wav_tone());
    let mut r = ssml("<speak>Hello <break time=\"1s\"/> world</speak>");
    r.voice_id = Some("Joanna".into());
    let speech = http_engine(&url).synthesize(&r).unwrap();
    assert_eq!(speech.sample_rate, 24_000);
    assert_eq!(speech.samples.len(), 24_000);
    let request = handle.join().unwrap();
    assert!(request.starts_with("POST /v1/audio/speech"), "{request}");
    assert!(request
        .to_ascii_lowercase()
        .contains("authorization: bearer secret"));
    let body: serde_json::Value =
        serde_json::from_str(request.split('\n').next_back().unwrap()).unwrap();
    assert_eq!(body["input"], "Hello world");
    assert_eq!(body["voice"], "nova");
    assert_eq!(body["model"], "tts-1");
    assert_eq!(body["response_format"], "wav");
}

#[test]
fn http_engine_failures_are_typed() {
    let (url, handle) = server("500 Internal Server Error", b"oops".to_vec());
    let err = http_engine(&url).synthesize(&text("hi")).unwrap_err();
    assert!(err.to_string().contains("500"), "{err}");
    handle.join().unwrap();
    let (url, handle) = server("200 OK", b"not audio".to_vec());
    let err = http_engine(&url).synthesize(&text("hi")).unwrap_err();
    assert!(err.to_string().contains("returned audio that"), "{err}");
    handle.join().unwrap();
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = http_engine(&format!("http://{closed}"))
        .synthesize(&text("hi"))
        .unwrap_err();
    assert!(
        matches!(err, TtsError::Engine { engine: "http", .. }),
        "{err}"
    );
}
