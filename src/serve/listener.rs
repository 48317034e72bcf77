//! The accept loop: one HTTP/1.1 connection task per client, under a cap on open
//! connections, with a header-read timeout and an idle keep-alive timeout.
//!
//! * **Header read:** a request's headers must arrive within `header_read_timeout` of
//!   the connection opening or of the previous response (hyper's timer): a client that
//!   trickles bytes (slowloris) is closed.
//! * **Keep-alive:** a connection with no request in flight and no byte received for
//!   `keep_alive_timeout` is closed (a watchdog per connection; streaming responses and
//!   queued requests are in flight, so they are never idle).
//! * **Cap:** beyond `max_connections` open connections, a new one gets a 503 and is
//!   closed at once, so a flood cannot exhaust file descriptors or memory.
//!
//! On shutdown the loop stops accepting, asks every connection to finish its requests
//! and close, and returns once all are closed.

use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Limits on connections.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnLimits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) max_connections: usize,
}

/// What a connection's watchdog reads: requests in flight and when it last went idle.
#[derive(Debug)]
struct Activity {
    base: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `base` when the last request ended (or the connection opened).
    idle_since_ms: AtomicU64,
    /// A byte arrived since then (a request is on its way: the header timer governs).
    read_since_idle: AtomicBool,
}

impl Activity {
    fn new(base: Instant) -> Self {
        let a = Activity {
            base,
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            read_since_idle: AtomicBool::new(false),
        };
        a.mark_idle();
        a
    }
    fn mark_idle(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.idle_since_ms.store(ms, Ordering::Relaxed);
        self.read_since_idle.store(false, Ordering::Relaxed);
    }
    /// When the connection may be closed as idle, or None while it is busy.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0
            || self.read_since_idle.load(Ordering::Relaxed)
        {
            return None;
        }
        let since = Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed));
        Some(self.base + since + timeout)
    }
}

/// Ends a request's time in flight when dropped (with its response body).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(a: &Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.mark_idle();
        }
    }
}

/// A TCP stream that notes every byte read.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read_since_idle.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The body of the 503 sent to a connection over the cap.
const OVER_CAP_BODY: &str = r#"{"error":{"message":"The server has too many open connections (--max-connections). Retry later.","type":"server_error","param":null,"code":"service_unavailable"}}"#;

/// Answer 503 on a connection over the cap and close it (at most a second of effort).
async fn refuse(mut tcp: TcpStream) {
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{OVER_CAP_BODY}",
        OVER_CAP_BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = tcp.write_all(response.as_bytes()).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}

/// Serve `app` on `listener` until `shutdown` resolves; then stop accepting, let every
/// connection finish its requests, and return when all are closed (the caller bounds
/// how long it waits).
pub(crate) async fn serve_connections(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let base = Instant::now();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                // Out of descriptors or a connection reset before accept: not fatal.
                Err(e) if is_transient(&e) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tokio::spawn(refuse(tcp));
            continue;
        };
        // Token chunks are small writes: without TCP_NODELAY, Nagle's algorithm holds
        // each one until the previous is acknowledged (tens of ms behind a delayed ACK).
        let _ = tcp.set_nodelay(true);
        let activity = Arc::new(Activity::new(base));
        let io = TokioIo::new(Tracked {
            inner: tcp,
            activity: activity.clone(),
        });
        let service = {
            let app = app.clone();
            let activity = activity.clone();
            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let guard = InFlight::start(&activity);
                let call = tower::ServiceExt::oneshot(app.clone(), req);
                async move {
                    let response = call.await?;
                    // The request stays in flight until its body has been sent.
                    Ok::<_, std::convert::Infallible>(response.map(|body| {
                        axum::body::Body::new(body.map_frame(move |f| {
                            let _ = &guard;
                            f
                        }))
                    }))
                }
            })
        };
        let conn = http.serve_connection(io, service);
        let mut stop = stop_rx.clone();
        let keep_alive = limits.keep_alive_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(conn);
            let mut closing = false;
            loop {
                let idle_at = activity.idle_deadline(keep_alive);
                let watchdog = async {
                    match idle_at {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        // Busy: look again a little later.
                        None => tokio::time::sleep(keep_alive.min(Duration::from_secs(1))).await,
                    }
                };
                tokio::select! {
                    _ = conn.as_mut() => break,
                    () = watchdog, if !closing => {
                        if activity
                            .idle_deadline(keep_alive)
                            .is_some_and(|at| at <= Instant::now())
                        {
                            conn.as_mut().graceful_shutdown();
                            closing = true;
                        }
                    }
                    r = stop.changed(), if !closing => {
                        if r.is_err() || *stop.borrow() {
                            conn.as_mut().graceful_shutdown();
                            closing = true;
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit until it closes.
    let _ = permits.acquire_many(limits.max_connections as u32).await;
    Ok(())
}

/// Accept errors that concern one connection or a passing shortage, not the listener.
fn is_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock | TimedOut
    ) || e.raw_os_error().is_some_and(|c| c == 23 || c == 24) // ENFILE, EMFILE
}
