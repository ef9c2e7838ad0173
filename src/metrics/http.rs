//! The tiny HTTP listener that serves `/metrics` and `/healthz`.
//!
//! Why hand-written HTTP: the listener serves two GET paths to a scraper and a health probe on
//! a local address. A small HTTP/1.1 responder on tokio (one request per connection, bounded
//! head, timeouts, `Connection: close`) is a few dozen lines and carries no framework into a
//! security tool; every malformed request gets a 4xx and never a panic.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Metrics;
use crate::store::{SharedStore, Stats};

/// The largest request head (request line plus headers) read; larger ones get 431.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// Time a client has to send its request head, and to take the response.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Time the store may take to answer a scrape or a health probe.
const STORE_TIMEOUT: Duration = Duration::from_secs(3);

/// Connections served at once; more wait for a slot (a scraper and a probe need two).
const MAX_CONNECTIONS: usize = 16;

/// A failure to start the listener.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for /metrics on {addr}: {source}; to fix: choose a free address in [metrics] listen, or remove it")]
pub struct ListenError {
    /// The address asked for in `[metrics] listen`.
    pub addr: SocketAddr,
    /// Why it could not be bound (in use, not an address of this host, a privileged port).
    #[source]
    pub source: std::io::Error,
}

/// What the listener understood of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    /// HEAD gets the headers of the GET response without its body.
    head_only: bool,
    /// The path without the query string.
    path: String,
}

/// A complete response; always `Connection: close`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
    head_only: bool,
}

const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Response {
    fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: TEXT,
            body: body.into(),
            head_only: false,
        }
    }

    fn reason(&self) -> &'static str {
        match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            505 => "HTTP Version Not Supported",
            _ => "Internal Server Error",
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.reason(),
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !self.head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

/// Parses a request head (everything up to the blank line). Only the request line matters:
/// headers are ignored, and a body is never read (GET and HEAD have none).
fn parse_request(head: &[u8]) -> Result<Request, Response> {
    let line_end = head.iter().position(|b| *b == b'\n').unwrap_or(head.len());
    let line = std::str::from_utf8(&head[..line_end])
        .map_err(|_| Response::text(400, "bad request: the request line is not UTF-8\n"))?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Response::text(
            400,
            "bad request: expected METHOD PATH HTTP/1.1\n",
        ));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(Response::text(505, "only HTTP/1.x is spoken here\n"));
    }
    if !target.starts_with('/') {
        return Err(Response::text(
            400,
            "bad request: the path must start with /\n",
        ));
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(Response::text(405, "only GET and HEAD are allowed\n")),
    };
    let path = target.split(['?', '#']).next().unwrap_or(target).to_owned();
    Ok(Request { head_only, path })
}

/// Why a request head could not be read.
#[derive(Debug, PartialEq, Eq)]
enum ReadError {
    /// The connection closed before a complete head; nothing to answer.
    Closed,
    TooLarge,
    Incomplete,
}

/// Reads until the blank line that ends the head, at most [`MAX_REQUEST_HEAD`] bytes.
async fn read_head<R: AsyncReadExt + Unpin>(reader: &mut R) -> Result<Vec<u8>, ReadError> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = reader
            .read(&mut chunk)
            .await
            .map_err(|_| ReadError::Closed)?;
        if n == 0 {
            return Err(if buffer.is_empty() {
                ReadError::Closed
            } else {
                ReadError::Incomplete
            });
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&buffer) {
            buffer.truncate(end);
            return Ok(buffer);
        }
        if buffer.len() > MAX_REQUEST_HEAD {
            return Err(ReadError::TooLarge);
        }
    }
}

fn head_end(buffer: &[u8]) -> Option<usize> {
    let crlf = buffer.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buffer.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
    .filter(|end| *end <= MAX_REQUEST_HEAD)
}

/// What the listener serves from.
#[derive(Clone)]
pub(crate) struct Endpoint {
    /// The daemon's counters: rendered by `/metrics`, and the poller's health for `/healthz`.
    pub metrics: Arc<Metrics>,
    /// The state database: its [`Stats`] go into `/metrics`, and `/healthz` fails when it
    /// cannot be read.
    pub store: SharedStore,
}

impl Endpoint {
    async fn stats(&self) -> Result<Stats, String> {
        match tokio::time::timeout(STORE_TIMEOUT, self.store.with(|s| s.stats())).await {
            Ok(Ok(stats)) => Ok(stats),
            Ok(Err(error)) => Err(format!("the store cannot be read: {error}")),
            Err(_) => Err(format!("the store did not answer within {STORE_TIMEOUT:?}")),
        }
    }

    /// The response to a well-formed request.
    async fn respond(&self, request: &Request) -> Response {
        let mut response = match request.path.as_str() {
            "/metrics" => {
                let stats = match self.stats().await {
                    Ok(stats) => Some(stats),
                    Err(error) => {
                        tracing::warn!("/metrics: {error}");
                        None
                    }
                };
                Response {
                    status: 200,
                    content_type: PROMETHEUS,
                    body: self.metrics.render(stats.as_ref()),
                    head_only: false,
                }
            }
            "/healthz" => {
                let health = self
                    .metrics
                    .poller_health(Utc::now())
                    .and(self.stats().await.map(|_| ()));
                match health {
                    Ok(()) => Response::text(200, "ok\n"),
                    Err(reason) => Response::text(503, format!("unhealthy: {reason}\n")),
                }
            }
            _ => Response::text(404, "not found: try /metrics or /healthz\n"),
        };
        response.head_only = request.head_only;
        response
    }

    async fn connection(&self, mut stream: TcpStream) {
        let response = match tokio::time::timeout(IO_TIMEOUT, read_head(&mut stream)).await {
            Err(_) => Response::text(408, "request timeout\n"),
            Ok(Err(ReadError::Closed)) => return,
            Ok(Err(ReadError::TooLarge)) => Response::text(431, "request head too large\n"),
            Ok(Err(ReadError::Incomplete)) => Response::text(400, "incomplete request\n"),
            Ok(Ok(head)) => match parse_request(&head) {
                Ok(request) => self.respond(&request).await,
                Err(response) => response,
            },
        };
        let bytes = response.to_bytes();
        let _ = tokio::time::timeout(IO_TIMEOUT, async {
            stream.write_all(&bytes).await?;
            stream.shutdown().await
        })
        .await;
    }
}

/// Binds the listener (so a busy address fails `run` at start-up, not silently later).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ListenError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError { addr, source })
}

/// Serves `/metrics` and `/healthz` until `stop` fires.
pub(crate) async fn serve(listener: TcpListener, endpoint: Endpoint, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics and /healthz");
    }
    loop {
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let endpoint = endpoint.clone();
                tokio::spawn(async move {
                    endpoint.connection(stream).await;
                    drop(permit);
                });
            }
            Err(error) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(%error, "cannot accept a /metrics connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::metrics::testing::metrics;

    #[test]
    fn request_lines_parse_and_garbage_gets_a_4xx() {
        assert_eq!(
            parse_request(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n"),
            Ok(Request {
                head_only: false,
                path: "/metrics".into()
            })
        );
        assert!(parse_request(b"HEAD /healthz HTTP/1.0").unwrap().head_only);
        let status = |head: &[u8]| parse_request(head).unwrap_err().status;
        assert_eq!(status(b""), 400);
        assert_eq!(status(b"\xff\xfe\x00garbage"), 400);
        assert_eq!(status(b"GET /metrics"), 400);
        assert_eq!(status(b"GET  /metrics HTTP/1.1"), 400);
        assert_eq!(status(b"GET metrics HTTP/1.1"), 400);
        assert_eq!(status(b"GET /metrics SPDY/3"), 505);
        assert_eq!(status(b"POST /metrics HTTP/1.1"), 405);
        assert!(String::from_utf8(Response::text(405, "").to_bytes())
            .unwrap()
            .contains("Allow: GET, HEAD"));
    }

    #[tokio::test]
    async fn heads_are_bounded_and_must_end() {
        let mut ok = &b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"[..];
        assert_eq!(
            read_head(&mut ok).await.unwrap(),
            b"GET / HTTP/1.1\r\nHost: x".to_vec()
        );
        let huge = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_HEAD));
        assert_eq!(
            read_head(&mut huge.as_bytes()).await,
            Err(ReadError::TooLarge)
        );
        let endless = vec![b'x'; MAX_REQUEST_HEAD * 4];
        assert_eq!(
            read_head(&mut endless.as_slice()).await,
            Err(ReadError::TooLarge)
        );
        assert_eq!(
            read_head(&mut &b"GET / HTTP/1.1\r\n"[..]).await,
            Err(ReadError::Incomplete)
        );
        assert_eq!(read_head(&mut &b""[..]).await, Err(ReadError::Closed));
    }

    /// The listener over a real socket: routes, a 404, garbage, and a HEAD without a body.
    #[tokio::test]
    async fn serves_metrics_health_and_errors_over_tcp() {
        let dir = tempfile::tempdir().unwrap();
        let store = SharedStore::new(crate::store::Store::open(dir.path()).unwrap());
        let m = Arc::new(metrics());
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            Endpoint {
                metrics: m.clone(),
                store,
            },
            stop.clone(),
        ));
        let ask = |raw: Vec<u8>| async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(&raw).await.unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            answer
        };
        let starting = ask(b"GET /healthz HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(
            starting.starts_with("HTTP/1.1 503 Service Unavailable\r\n")
                && starting.contains("no poll pass has completed yet"),
            "{starting}"
        );
        m.poller
            .last_pass_unix_ms
            .store(Utc::now().timestamp_millis(), Ordering::Relaxed);
        let metrics = ask(b"GET /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
        assert!(metrics.contains("iamwatchd_store_up 1"));
        let health = ask(b"GET /healthz HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(
            health.starts_with("HTTP/1.1 200 ") && health.ends_with("\r\n\r\nok\n"),
            "{health}"
        );
        assert!(ask(b"GET /admin HTTP/1.1\r\n\r\n".to_vec())
            .await
            .starts_with("HTTP/1.1 404 "));
        assert!(ask(b"\x16\x03\x01garbage\r\n\r\n".to_vec())
            .await
            .starts_with("HTTP/1.1 400 "));
        // Just over the limit, so the server has read all of it and closes without a reset.
        assert!(ask(vec![b'A'; MAX_REQUEST_HEAD + 100])
            .await
            .starts_with("HTTP/1.1 431 "));
        let head = ask(b"HEAD /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(
            head.starts_with("HTTP/1.1 200 ") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        stop.cancel();
        server.await.unwrap();
    }
}
