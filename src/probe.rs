//! `iamwatchd health`: asks a running daemon's `/healthz` whether it is well, for container
//! health checks. The runtime image has no shell and no curl, hence a probe in the binary.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why [`probe`] found the daemon not healthy, or could not ask.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    /// The URL given (the field) is not a plain `http://HOST:PORT/PATH` URL.
    #[error("{0} is not an http://HOST:PORT/PATH URL")]
    Url(String),
    /// No usable HTTP answer: the name did not resolve, the connection or I/O failed or timed
    /// out, or the answer was not HTTP.
    #[error("cannot reach {url}: {reason}; is the daemon running with [metrics] listen set?")]
    Unreachable {
        /// The URL probed.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The daemon answered with a status other than 200.
    #[error("{url} answered {status}: {body}")]
    Unhealthy {
        /// The URL probed.
        url: String,
        /// The HTTP status code, such as 503.
        status: u16,
        /// The answer's body, trimmed, at most 200 characters.
        body: String,
    },
}

/// Reads at most this much of the answer: a health answer is a line, not a download.
const MAX_ANSWER: u64 = 16 * 1024;

/// GETs `url` (plain HTTP); Ok with the body when the answer is 200.
pub fn probe(url: &str, timeout: Duration) -> Result<String, ProbeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ProbeError::Url(url.to_owned()))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(ProbeError::Url(url.to_owned()));
    }
    let unreachable = |reason: String| ProbeError::Unreachable {
        url: url.to_owned(),
        reason,
    };
    let address = authority
        .to_socket_addrs()
        .map_err(|e| unreachable(e.to_string()))?
        .next()
        .ok_or_else(|| unreachable("the name resolves to no address".into()))?;
    let mut stream =
        TcpStream::connect_timeout(&address, timeout).map_err(|e| unreachable(e.to_string()))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| unreachable(e.to_string()))?;
    // One write: `write!` sends each piece of the format on its own, and a server that
    // answers after the first piece and closes would turn the rest into a broken pipe.
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| unreachable(e.to_string()))?;
    let mut answer = String::new();
    stream
        .take(MAX_ANSWER)
        .read_to_string(&mut answer)
        .map_err(|e| unreachable(e.to_string()))?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| unreachable(format!("not an HTTP answer: {:.80}", head)))?;
    if status == 200 {
        Ok(body.trim().to_owned())
    } else {
        Err(ProbeError::Unhealthy {
            url: url.to_owned(),
            status,
            body: body.trim().chars().take(200).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(answer: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            // The whole request first, as a real server reads it.
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            stream.write_all(answer.as_bytes()).unwrap();
        });
        format!("http://127.0.0.1:{port}/healthz")
    }

    #[test]
    fn a_200_is_healthy_and_a_503_is_not() {
        let url = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
        assert_eq!(probe(&url, Duration::from_secs(5)).unwrap(), "ok");
        let url = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\nno pass for 10m\n");
        let answer = probe(&url, Duration::from_secs(5));
        assert!(
            matches!(answer, Err(ProbeError::Unhealthy { status: 503, .. })),
            "{answer:?}"
        );
    }

    #[test]
    fn bad_urls_and_closed_ports_say_so() {
        assert!(matches!(
            probe("https://x/healthz", Duration::from_secs(1)),
            Err(ProbeError::Url(_))
        ));
        // Port 1 (tcpmux) is closed on any machine that runs tests; a freed ephemeral port
        // could be taken by a parallel test's listener.
        let error = probe("http://127.0.0.1:1/healthz", Duration::from_secs(1)).unwrap_err();
        assert!(error.to_string().contains("[metrics] listen"), "{error}");
    }
}
