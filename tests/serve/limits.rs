//! The endpoint under abuse: API key, header-read and keep-alive timeouts, the cap on
//! open connections.

use crate::util::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read until the server closes the connection (or `limit` passes); the bytes read and
/// when the close came.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + limit).into(), s.read(&mut buf)).await {
            Err(_) => return (out, None),
            Ok(Ok(0)) | Ok(Err(_)) => return (out, Some(start.elapsed())),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

#[tokio::test]
async fn api_key_guards_v1_routes_only() {
    let mut opts = options(100.0);
    opts.api_key = Some("sk-test".into());
    let server = start(engine(1000, 4096), opts).await;
    let body = json!({"model": MODEL, "prompt": [1, 2, 3], "max_tokens": 2});
    let r = server.post("/v1/completions", &body).await;
    let e = error_of(r, 401).await;
    assert!(e["message"].as_str().unwrap().contains("Bearer"), "{e}");
    for auth in [
        "Bearer sk-wrong",
        "sk-test",
        "Bearer sk-test2",
        "Basic sk-test",
    ] {
        let r = server
            .http
            .get(server.url("/v1/models"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{auth}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
    }
    let r = server
        .http
        .post(server.url("/v1/completions"))
        .bearer_auth("sk-test")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for open in ["/health", "/metrics", "/version"] {
        let r = server.http.get(server.url(open)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{open}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed() {
    let mut opts = options(1.0);
    opts.header_read_timeout = Duration::from_millis(400);
    opts.keep_alive_timeout = Duration::from_millis(200);
    let server = start(engine(1000, 4096), opts).await;

    // Connects and sends nothing: closed by the keep-alive watchdog.
    let mut silent = connect(&server).await;
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(3)).await;
    let t = closed.expect("a silent connection stays open");
    assert!(t >= Duration::from_millis(150), "{t:?}");

    // Trickles a request's headers (slowloris): closed by the header timeout, though
    // bytes keep arriving.
    let mut slow = connect(&server).await;
    slow.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    let start = Instant::now();
    let mut closed = None;
    while start.elapsed() < Duration::from_secs(3) {
        if slow.write_all(b"x").await.is_err() {
            closed = Some(start.elapsed());
            break;
        }
        let mut b = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(50), slow.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = Some(start.elapsed());
                break;
            }
            Ok(Ok(_)) => {
                closed = Some(start.elapsed());
                break;
            }
            Err(_) => {}
        }
    }
    let t = closed.expect("a slowloris connection stays open");
    assert!(
        t >= Duration::from_millis(300) && t < Duration::from_secs(2),
        "{t:?}"
    );

    // A keep-alive connection is closed once idle after its response...
    let mut idle = connect(&server).await;
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let (bytes, closed) = read_until_closed(&mut idle, Duration::from_secs(3)).await;
    assert!(String::from_utf8_lossy(&bytes).starts_with("HTTP/1.1 200"));
    assert!(closed.is_some(), "an idle keep-alive connection stays open");

    // ...but a stream that lasts longer than the keep-alive timeout is not idle.
    let body = json!({"model": MODEL, "prompt": [1, 2, 3], "max_tokens": 60, "stream": true});
    let r = server.post("/v1/completions", &body).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_cap_get_503_and_health_still_answers_after() {
    let mut opts = options(100.0);
    opts.max_connections = 2;
    opts.keep_alive_timeout = Duration::from_secs(30);
    opts.header_read_timeout = Duration::from_secs(30);
    let server = start(engine(1000, 4096), opts).await;
    let a = connect(&server).await;
    let b = connect(&server).await;
    // Both held: the accept loop has taken them before the third arrives.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = connect(&server).await;
    let (bytes, closed) = read_until_closed(&mut c, Duration::from_secs(3)).await;
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("--max-connections"), "{text}");
    assert!(closed.is_some());
    drop((a, b));
    // The two freed slots take new clients.
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(r) = server.http.get(server.url("/health")).send().await {
            if r.status() == 200 {
                ok = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        ok,
        "/health never answered after the held connections closed"
    );
    server.shutdown().await;
}

#[test]
fn the_api_key_is_never_printed() {
    let mut opts = options(1.0);
    opts.api_key = Some("sk-secret-value".into());
    let shown = format!("{opts:?}");
    assert!(
        !shown.contains("sk-secret-value") && shown.contains("<redacted>"),
        "{shown}"
    );
}
