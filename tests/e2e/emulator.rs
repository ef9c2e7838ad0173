//! Starts the local AWS emulator (`tests/emulator/run`) for one test and stops it on drop.
//!
//! Each test gets its own emulator on kernel-chosen ports (read back from the emulator's
//! `READY` line), its own mail and HTTP-sink directories, and nothing left behind: the emulator
//! is killed on drop and, as a backstop, exits by itself when the test process dies (its stdin
//! closes).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_cloudtrail::config::Credentials;

/// How long a first start may take: it can include creating the Python venv.
const STARTUP_DEADLINE: Duration = Duration::from_secs(300);

/// The access key tests use unless they act as a specific IAM user; the emulator attributes its
/// calls to the account root, like real AWS does for unknown keys in moto's default account.
pub const ROOT_ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
/// The account every emulator call acts in (moto's default).
pub const ACCOUNT: &str = "123456789012";

/// Options for [`Emulator::start_with`]; the defaults suit fast tests (no rate limit, no
/// delays) — tests about those behaviours switch them on.
#[derive(Debug, Clone)]
pub struct Options {
    pub lookup_rate: f64,
    pub lookup_delay: f64,
    pub log_delay: f64,
    pub tick: f64,
    pub extra_args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lookup_rate: 0.0,
            lookup_delay: 0.0,
            log_delay: 0.0,
            tick: 0.1,
            extra_args: Vec::new(),
        }
    }
}

pub struct Emulator {
    child: Child,
    _stdin: ChildStdin,
    /// `http://127.0.0.1:PORT`, the value for `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    /// The SMTP sink's port (on 127.0.0.1), `None` with `--no-smtp`.
    pub smtp_port: Option<u16>,
    /// Where the SMTP sink stores what it receives (see [`Emulator::mail`]).
    pub maildir: PathBuf,
    /// The sink's self-signed certificate (PEM), present with `--smtp-starttls`: what a
    /// client's `ca_file` names to trust exactly this server.
    pub cert: Option<PathBuf>,
    /// The HTTP sink's base URL (`http://127.0.0.1:PORT`; Slack, Teams, PagerDuty and
    /// webhook URLs are paths under it), `None` with `--no-http`.
    pub http_url: Option<String>,
    /// Where the HTTP sink stores the requests it receives (see [`Emulator::http_requests`]).
    pub http_dir: Option<PathBuf>,
    dir: tempfile::TempDir,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Emulator {
    pub fn start() -> Emulator {
        Emulator::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Emulator {
        let dir = tempfile::tempdir().expect("temporary directory");
        let maildir = dir.path().join("mail");
        let http_dir = dir.path().join("http");
        let log_path = dir.path().join("emulator.log");
        let log = std::fs::File::create(&log_path).expect("emulator log file");
        let mut command = Command::new(repo_root().join("tests/emulator/run"));
        command
            .args(["--port", "0", "--smtp-port", "0", "--exit-with-stdin"])
            .arg("--maildir")
            .arg(&maildir)
            .arg("--http-dir")
            .arg(&http_dir)
            .args(["--lookup-rate", &options.lookup_rate.to_string()])
            .args(["--lookup-delay", &options.lookup_delay.to_string()])
            .args(["--log-delay", &options.log_delay.to_string()])
            .args(["--tick", &options.tick.to_string()])
            .args(&options.extra_args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = command.spawn().expect("spawn tests/emulator/run");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");

        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("READY ") {
                    let _ = tx.send(line);
                    break;
                }
            }
        });
        let ready = match rx.recv_timeout(STARTUP_DEADLINE) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("the emulator did not become ready; its log:\n{log}");
            }
        };
        let optional = |name: &str| -> Option<String> {
            ready
                .split_whitespace()
                .find_map(|part| part.strip_prefix(&format!("{name}=")))
                .map(str::to_owned)
        };
        let field = |name: &str| -> String {
            optional(name).unwrap_or_else(|| panic!("READY line without {name}: {ready}"))
        };
        let smtp_port = optional("smtp").map(|address| {
            address
                .rsplit_once(':')
                .and_then(|(_, port)| port.parse().ok())
                .unwrap_or_else(|| panic!("READY line with a bad smtp= field: {ready}"))
        });
        Emulator {
            child,
            _stdin: stdin,
            endpoint: field("aws"),
            smtp_port,
            maildir: optional("maildir").map_or(maildir, PathBuf::from),
            cert: optional("cert").map(PathBuf::from),
            http_url: optional("http"),
            http_dir: optional("httpdir").map(PathBuf::from),
            dir,
        }
    }

    /// SDK configuration for the emulator, acting with `access_key` (secret irrelevant: the
    /// emulator does not verify signatures).
    pub async fn sdk_config_as(&self, access_key: &str, region: &str) -> SdkConfig {
        iamwatchd::aws::loader(region, 1)
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(access_key, "secret", None, None, "e2e"))
            .load()
            .await
    }

    /// SDK configuration for a new IAM user `name` with its own access key, which root
    /// creates (CreateUser, CreateAccessKey: two IAM changes the daemon reports).
    pub async fn sdk_config_of_new_user(&self, name: &str) -> SdkConfig {
        let root = aws_sdk_iam::Client::new(&self.sdk_config().await);
        root.create_user().user_name(name).send().await.unwrap();
        let key = root
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .unwrap()
            .access_key
            .unwrap();
        self.sdk_config_as(key.access_key_id(), iamwatchd::aws::IAM_EVENTS_REGION)
            .await
    }

    /// SDK configuration as the account root in us-east-1.
    pub async fn sdk_config(&self) -> SdkConfig {
        self.sdk_config_as(ROOT_ACCESS_KEY, iamwatchd::aws::IAM_EVENTS_REGION)
            .await
    }

    /// A control-endpoint call (`/_iamwatchd/<path>`); returns the status and the JSON answer.
    pub fn control(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let answer = http_request(
            &self.endpoint,
            method,
            &format!("/_iamwatchd/{path}"),
            &[],
            body,
        );
        (answer.status, answer.json())
    }

    /// A counter of the emulator (LookupEvents calls, throttled calls, …), 0 when never counted.
    pub fn counter(&self, name: &str) -> u64 {
        let (_, counters) = self.control("GET", "counters", "");
        counters[name].as_u64().unwrap_or(0)
    }

    /// The messages the SMTP sink has received, in arrival order: each `.eml` file as
    /// stored (the `X-Sink-*` envelope fields, then the message exactly as sent).
    pub fn mail(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.maildir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| {
                std::fs::read_to_string(path)
                    .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            })
            .collect()
    }

    /// An SNS topic with a new SQS queue subscribed to it (raw delivery or the SNS envelope),
    /// for reading back what is published: (topic ARN, queue URL).
    pub async fn topic_with_queue(&self, name: &str, raw_delivery: bool) -> (String, String) {
        let config = self.sdk_config().await;
        let sns = aws_sdk_sns::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let topic_arn = sns
            .create_topic()
            .name(name)
            .send()
            .await
            .expect("CreateTopic")
            .topic_arn
            .expect("topic ARN");
        let queue = format!("{name}-reader");
        let queue_url = sqs
            .create_queue()
            .queue_name(&queue)
            .send()
            .await
            .expect("CreateQueue")
            .queue_url
            .expect("queue URL");
        sns.subscribe()
            .topic_arn(&topic_arn)
            .protocol("sqs")
            .endpoint(format!("arn:aws:sqs:us-east-1:123456789012:{queue}"))
            .attributes("RawMessageDelivery", raw_delivery.to_string())
            .send()
            .await
            .expect("Subscribe");
        (topic_arn, queue_url)
    }

    /// Waits for the next message on an SQS queue (long polling, up to a minute) and returns its
    /// body; fails the test, naming the emulator's log, when none comes.
    pub async fn next_message(&self, queue_url: &str) -> String {
        let started = std::time::Instant::now();
        loop {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "no message on {queue_url}; emulator log: {}",
                self.log_path().display()
            );
            if let Some(body) = self.receive_one(queue_url, false).await {
                return body;
            }
        }
    }

    /// The HTTP sink's base URL; panics when the emulator runs without it (`--no-http`).
    fn http_sink(&self) -> &str {
        self.http_url
            .as_deref()
            .expect("the emulator runs without its HTTP sink (--no-http)")
    }

    /// One call to the HTTP sink's control API (`/_sink/<operation>`), which must succeed.
    fn http_control(&self, operation: &str, body: serde_json::Value) {
        let answer = http_request(
            self.http_sink(),
            "POST",
            &format!("/_sink/{operation}"),
            &[],
            &body.to_string(),
        );
        assert_eq!(answer.status, 200, "/_sink/{operation}: {}", answer.body);
    }

    /// The requests the HTTP sink has stored, in arrival order: each `NNNNNN.json` record
    /// (`seq`, `method`, `path`, `headers`, `body`, `status`, `kind`, `problems`,
    /// `signature_verified`, … — see `http_sink/store.py`). Temporary files are skipped.
    pub fn http_requests(&self) -> Vec<serde_json::Value> {
        let Some(Ok(entries)) = self.http_dir.as_ref().map(std::fs::read_dir) else {
            return Vec::new();
        };
        let mut records: Vec<serde_json::Value> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| {
                path.extension().is_some_and(|ext| ext == "json")
                    && !path.file_name().unwrap().to_string_lossy().starts_with('.')
            })
            .map(|path| {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
            })
            .collect();
        records.sort_by_key(|record| record["seq"].as_u64());
        records
    }

    /// Queues answers for the requests whose path starts with `path`, used once each in
    /// order, e.g. `json!([{"status": 429, "headers": {"Retry-After": "2"}}])`; an answer has
    /// `status` and optional `headers`, `body` (string or JSON) and `delay` (seconds).
    pub fn http_script(&self, path: &str, responses: serde_json::Value) {
        self.http_control(
            "script",
            serde_json::json!({"path": path, "responses": responses}),
        );
    }

    /// Sets the standing answer for `path` (e.g. `json!({"status": 500})`) until
    /// [`Emulator::http_reset`]; queued answers still go first.
    pub fn http_default(&self, path: &str, answer: serde_json::Value) {
        self.http_control(
            "script",
            serde_json::json!({"path": path, "default": answer}),
        );
    }

    /// Registers the Standard Webhooks secret (`whsec_…`) the sink verifies signatures of
    /// requests under `path` with (record field `signature_verified`).
    pub fn http_secret(&self, path: &str, secret: &str) {
        self.http_control(
            "secret",
            serde_json::json!({"path": path, "secret": secret}),
        );
    }

    /// Forgets every scripted answer, standing answer and secret (the records stay).
    pub fn http_reset(&self) {
        self.http_control("reset", serde_json::json!({}));
    }

    /// The body of one message of the queue, long-polling for a second (`None` when none
    /// came); deleted from the queue when `delete`.
    pub async fn receive_one(&self, queue_url: &str, delete: bool) -> Option<String> {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk_config().await);
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        let message = received.messages().first()?;
        if delete {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle().expect("receipt handle"))
                .send()
                .await
                .expect("DeleteMessage");
        }
        Some(message.body().expect("message body").to_owned())
    }

    /// The path of the emulator's log, for assertion messages.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("emulator.log")
    }
}

/// An HTTP answer as [`http_request`] read it.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    /// Header fields as (lower-case name, value).
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    /// The body parsed as JSON, `Null` when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The first value of a header field (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        values(&self.headers, name).first().copied()
    }
}

/// One HTTP/1.1 request with a JSON body to `base_url` (`http://HOST:PORT`) over a fresh
/// connection (`Connection: close`, so the answer ends when the server closes), plus `headers`.
/// Raw over a `TcpStream`: the harness needs no HTTP client for the emulator's own endpoints.
pub fn http_request(
    base_url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpAnswer {
    let address = base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address)
        .unwrap_or_else(|e| panic!("connect to the emulator at {address}: {e}"));
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let (head, payload) = response
        .split_once("\r\n\r\n")
        .expect("an HTTP response head");
    let (status_line, fields) = head.split_once("\r\n").unwrap_or((head, ""));
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("HTTP status");
    HttpAnswer {
        status,
        headers: if fields.is_empty() {
            Vec::new()
        } else {
            header_fields(fields)
        },
        body: payload.to_owned(),
    }
}

/// The header fields of a stored mail, unfolded, as (lower-case name, value).
pub fn header_fields(mail: &str) -> Vec<(String, String)> {
    let head = mail.split("\r\n\r\n").next().unwrap();
    let mut lines: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            lines
                .last_mut()
                .expect("a field before a continuation")
                .push_str(line);
        } else {
            lines.push(line.to_owned());
        }
    }
    lines
        .iter()
        .map(|line| {
            let (name, value) = line.split_once(':').expect("name: value");
            (name.to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect()
}

/// Every value of one header field (name in lower case).
pub fn values<'a>(fields: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
