//! The e-mail notifier: lettre's async SMTP transport, pooled, STARTTLS required by default.
//!
//! Each alert becomes one multipart/alternative mail (text and HTML from [`render`]) whose
//! `Message-ID` is derived from the eventID and the notifier's name, so when the outbox repeats
//! a send after a crash the mail systems (and humans' clients) can recognise the repeat.
//!
//! The notifier is generic over [`SmtpTransport`] (lettre's `AsyncTransport` plus a health
//! check and the error classification) so unit tests use lettre's `AsyncStubTransport` and
//! see the exact bytes that would go on the wire.
//!
//! Security defaults: the connection must be encrypted (STARTTLS or implicit TLS); plaintext
//! needs an explicit `allow_plaintext`, and credentials are never sent over plaintext. The
//! server certificate is checked against the Mozilla roots (webpki-roots) plus, optionally, a
//! CA file (a company CA, or the emulator's self-signed certificate).
//!
//! [`render`]: super::render

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::render::one_line;
use super::{Message, Notifier, NotifyError};

const SEVERITY_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Iamwatchd-Severity");
const EVENT_ID_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Iamwatchd-Event-Id");

/// Longest eventID (in bytes) used in a Message-ID; real ones are 36 characters.
const MESSAGE_ID_PART_MAX_BYTES: usize = 200;

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmtpTls {
    /// Plain connect, then STARTTLS; a server that does not offer it is an error (no silent
    /// downgrade). Usually port 587.
    #[default]
    StartTlsRequired,
    /// TLS from the first byte ("SMTPS"). Usually port 465.
    Implicit,
    /// No encryption: only with `allow_plaintext`, and never with credentials. Port 25.
    None,
}

impl SmtpTls {
    /// The port conventionally used with this mode.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::StartTlsRequired => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        }
    }
}

/// Where and how to send mail. Secrets are resolved by the caller (env or file): this struct
/// holds the password itself and never prints it.
#[derive(Clone)]
pub struct SmtpConfig {
    /// Server host name; also the name its TLS certificate must carry.
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Required to use [`SmtpTls::None`]: alerts describe the account's security, so sending
    /// them in clear must be a deliberate choice (a relay on localhost, say).
    pub allow_plaintext: bool,
    /// Extra trusted certificate(s) (PEM), added to the built-in Mozilla roots.
    pub ca_file: Option<PathBuf>,
    /// SMTP AUTH user; with `password`, or neither.
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender (`From:` and envelope), e.g. `iamwatchd <iamwatchd@example.com>`.
    pub from: String,
    /// Recipients; at least one.
    pub to: Vec<String>,
    /// Limit for each network operation (connect, each command).
    pub timeout: Duration,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("allow_plaintext", &self.allow_plaintext)
            .field("ca_file", &self.ca_file)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("to", &self.to)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// One problem with an [`SmtpConfig`]; the message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpConfigError {
    #[error("host is empty: set it to the mail server's name")]
    EmptyHost,
    #[error("port is 0: use 587 for STARTTLS, 465 for implicit TLS")]
    ZeroPort,
    #[error("timeout is 0: set a few seconds (e.g. 30)")]
    ZeroTimeout,
    #[error(
        "tls = none sends alerts in clear text: set allow_plaintext = true if the server is \
         on a trusted link (e.g. localhost), otherwise use STARTTLS or implicit TLS"
    )]
    PlaintextNotAllowed,
    #[error(
        "credentials over an unencrypted connection are refused: use STARTTLS or implicit TLS, \
         or remove username and password"
    )]
    AuthOverPlaintext,
    #[error("username is set but no password: provide the password (from env or a file)")]
    UsernameWithoutPassword,
    #[error("a password is set but no username: set username")]
    PasswordWithoutUsername,
    #[error("{field} {value:?} is not a mail address ({reason}): write it as `name@example.com` or `Name <name@example.com>`")]
    BadAddress {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("no recipients: list at least one address in `to`")]
    NoRecipients,
    #[error("ca_file {path}: {reason}: give a readable PEM certificate file")]
    CaFile { path: String, reason: String },
}

impl SmtpConfig {
    /// Checks everything that can be checked without the network or files; reports every
    /// problem, not just the first.
    pub fn validate(&self) -> Result<(), Vec<SmtpConfigError>> {
        let mut problems = Vec::new();
        if self.host.trim().is_empty() {
            problems.push(SmtpConfigError::EmptyHost);
        }
        if self.port == 0 {
            problems.push(SmtpConfigError::ZeroPort);
        }
        if self.timeout.is_zero() {
            problems.push(SmtpConfigError::ZeroTimeout);
        }
        let has_credentials = self.username.is_some() || self.password.is_some();
        if self.tls == SmtpTls::None {
            if !self.allow_plaintext {
                problems.push(SmtpConfigError::PlaintextNotAllowed);
            }
            if has_credentials {
                problems.push(SmtpConfigError::AuthOverPlaintext);
            }
        }
        match (&self.username, &self.password) {
            (Some(_), None) => problems.push(SmtpConfigError::UsernameWithoutPassword),
            (None, Some(_)) => problems.push(SmtpConfigError::PasswordWithoutUsername),
            _ => {}
        }
        if let Err(problem) = parse_mailbox("from", &self.from) {
            problems.push(problem);
        }
        if self.to.is_empty() {
            problems.push(SmtpConfigError::NoRecipients);
        }
        for to in &self.to {
            if let Err(problem) = parse_mailbox("to", to) {
                problems.push(problem);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

fn parse_mailbox(field: &'static str, value: &str) -> Result<Mailbox, SmtpConfigError> {
    value
        .parse::<Mailbox>()
        .map_err(|error| SmtpConfigError::BadAddress {
            field,
            value: value.to_owned(),
            reason: error.to_string(),
        })
}

/// `<{eventID}.{notifier}@iamwatchd>`: the same alert sent again by the same notifier gets the
/// same Message-ID. Both parts are reduced to `[A-Za-z0-9_-]`, every other byte written as
/// `%XX` (injective, and `.` stays the unambiguous separator), so a crafted eventID cannot
/// break the header.
pub fn message_id(event_id: &str, notifier: &str) -> String {
    format!("<{}.{}@iamwatchd>", id_part(event_id), id_part(notifier))
}

fn id_part(value: &str) -> String {
    let mut end = value.len().min(MESSAGE_ID_PART_MAX_BYTES);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let mut part = String::with_capacity(end);
    for byte in value[..end].bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            part.push(char::from(byte));
        } else {
            part.push_str(&format!("%{byte:02X}"));
        }
    }
    if part.is_empty() {
        part.push('-');
    }
    part
}

/// What the notifier needs from a transport besides sending: a health check and the
/// transient/permanent verdict on its errors.
#[async_trait]
pub trait SmtpTransport: AsyncTransport + Send + Sync {
    /// Checks the server can be reached and speaks SMTP (with TLS and AUTH as configured).
    async fn check(&self, notifier: &str) -> Result<(), NotifyError>;

    /// Turns a transport error into a [`NotifyError`] that says whether to retry.
    fn classify(&self, notifier: &str, error: Self::Error) -> NotifyError;
}

/// lettre's SMTP transport and the server it talks to (for error messages).
#[derive(Clone)]
pub struct LettreSmtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
}

#[async_trait]
impl AsyncTransport for LettreSmtp {
    type Ok = lettre::transport::smtp::response::Response;
    type Error = lettre::transport::smtp::Error;

    async fn send_raw(
        &self,
        envelope: &lettre::address::Envelope,
        email: &[u8],
    ) -> Result<Self::Ok, Self::Error> {
        self.transport.send_raw(envelope, email).await
    }

    async fn shutdown(&self) {
        self.transport.shutdown().await
    }
}

#[async_trait]
impl SmtpTransport for LettreSmtp {
    async fn check(&self, notifier: &str) -> Result<(), NotifyError> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(NotifyError::transient(
                notifier,
                format!("{} did not answer NOOP", self.server),
            )),
            Err(error) => Err(self.classify(notifier, error)),
        }
    }

    fn classify(&self, notifier: &str, error: Self::Error) -> NotifyError {
        classify_smtp_error(notifier, &self.server, &error)
    }
}

/// The transient/permanent verdict on a lettre SMTP error, with the fix for permanent ones.
pub fn classify_smtp_error(
    notifier: &str,
    server: &str,
    error: &lettre::transport::smtp::Error,
) -> NotifyError {
    let problem = format!("{server}: {error}");
    if error.is_timeout() {
        return NotifyError::transient(notifier, format!("{server}: timed out ({error})"));
    }
    if let Some(code) = error.status() {
        if error.is_transient() {
            return NotifyError::transient(notifier, problem);
        }
        let fix = match u16::from(code) {
            530 => {
                "the server demands STARTTLS or authentication first: use tls = STARTTLS or \
                 implicit, and set username and password"
            }
            534 | 535 | 538 => {
                "check username and password (and where the password secret comes from)"
            }
            550 | 551 | 553 => {
                "check the `from` and `to` addresses: the server must accept `from` for this \
                 account and deliver or relay to every `to`"
            }
            552 | 554 => "the server refused the message (size or policy): see its logs",
            _ => "see the server's answer; check host, port, tls and the addresses",
        };
        return NotifyError::permanent(notifier, problem, fix);
    }
    if error.is_tls() || has_tls_failure(error) {
        return NotifyError::permanent(
            notifier,
            format!("{server}: TLS failed: {error}"),
            "the server certificate must be valid for the configured host; for a private CA \
             or a self-signed certificate set ca_file; check tls (STARTTLS vs implicit) matches \
             the port",
        );
    }
    if error.is_client() {
        let text = error.to_string();
        let fix = if text.contains("STARTTLS") {
            "this server does not offer STARTTLS: use tls = implicit if it speaks TLS (port \
             465), or, only on a trusted link, tls = none with allow_plaintext = true"
        } else if text.contains("authentication") {
            "the server offers no AUTH mechanism this client supports (PLAIN, LOGIN) over this \
             connection: check the server's AUTH settings or remove the credentials"
        } else {
            "check the SMTP settings against what the server offers"
        };
        return NotifyError::permanent(notifier, problem, fix);
    }
    // Connection refused or reset, DNS, an unparsable answer, a closed pool: try again later.
    NotifyError::transient(notifier, problem)
}

/// A TLS handshake failure (bad certificate, wrong protocol) reaches lettre as an I/O error
/// of kind `InvalidData` from the TLS stream; unlike a refused connection, it will not go
/// away by itself.
fn has_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::InvalidData {
                return true;
            }
        }
        source = cause.source();
    }
    false
}

/// Sends each alert as one mail to the configured recipients.
pub struct SmtpNotifier<T = LettreSmtp> {
    name: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    transport: T,
}

impl SmtpNotifier<LettreSmtp> {
    /// Validates the configuration (every problem reported at once), reads the CA file and
    /// builds the pooled transport. Connects to nothing: see [`Notifier::healthcheck`].
    /// Call it inside the Tokio runtime: the connection pool spawns its housekeeping task.
    pub fn new(name: &str, config: &SmtpConfig) -> Result<Self, NotifyError> {
        let invalid = |problems: Vec<SmtpConfigError>| NotifyError::Config {
            notifier: name.to_owned(),
            problems: problems.iter().map(ToString::to_string).collect(),
        };
        config.validate().map_err(invalid)?;
        let from = parse_mailbox("from", &config.from).map_err(|e| invalid(vec![e]))?;
        let to = config
            .to
            .iter()
            .map(|to| parse_mailbox("to", to))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(vec![e]))?;

        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
                .port(config.port)
                .timeout(Some(config.timeout))
                // One connection per send the delivery worker keeps in flight.
                .pool_config(PoolConfig::new().max_size(4));
        if config.tls != SmtpTls::None {
            let mut parameters = TlsParameters::builder(config.host.clone());
            if let Some(path) = &config.ca_file {
                let ca_error = |reason: String| {
                    invalid(vec![SmtpConfigError::CaFile {
                        path: path.display().to_string(),
                        reason,
                    }])
                };
                let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
                // lettre accepts a file without any certificate in it, which would only fail
                // later, at the first handshake, with a less helpful message.
                if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(ca_error("no PEM certificate in it".to_owned()));
                }
                let certificate = Certificate::from_pem(&pem)
                    .map_err(|e| ca_error(format!("not a PEM certificate ({e})")))?;
                parameters = parameters.add_root_certificate(certificate);
            }
            let parameters = parameters.build_rustls().map_err(|e| {
                invalid(vec![SmtpConfigError::CaFile {
                    path: config
                        .ca_file
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "(none)".to_owned()),
                    reason: format!("TLS set-up failed: {e}"),
                }])
            })?;
            builder = builder.tls(match config.tls {
                SmtpTls::Implicit => Tls::Wrapper(parameters),
                _ => Tls::Required(parameters),
            });
        }
        if let (Some(username), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(username.clone(), password.clone()));
        }
        let transport = LettreSmtp {
            transport: builder.build(),
            server: format!("{}:{}", config.host, config.port),
        };
        Ok(SmtpNotifier::with_transport(name, from, to, transport))
    }
}

impl<T> SmtpNotifier<T> {
    /// A notifier over any transport (tests use lettre's `AsyncStubTransport`).
    pub fn with_transport(name: &str, from: Mailbox, to: Vec<Mailbox>, transport: T) -> Self {
        SmtpNotifier {
            name: name.to_owned(),
            from,
            to,
            transport,
        }
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The mail for `message`. The message's strings were made safe by the renderer; the
    /// one-line fields are cleaned again here because the message may come from storage.
    pub fn email(&self, message: &Message) -> Result<lettre::Message, NotifyError> {
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(one_line(&message.subject))
            .message_id(Some(message_id(&message.event_id, &self.name)))
            .raw_header(HeaderValue::new(
                SEVERITY_HEADER,
                one_line(&message.severity),
            ))
            .raw_header(HeaderValue::new(
                EVENT_ID_HEADER,
                one_line(&message.event_id),
            ));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                message.html.clone(),
            ))
            .map_err(|error| {
                NotifyError::permanent(
                    &self.name,
                    format!("could not build the mail: {error}"),
                    "check the from/to addresses",
                )
            })
    }
}

#[async_trait]
impl<T: SmtpTransport> Notifier for SmtpNotifier<T> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, message: &Message) -> Result<(), NotifyError> {
        let email = self.email(message)?;
        let raw = email.formatted();
        match self.transport.send_raw(email.envelope(), &raw).await {
            Ok(_) => Ok(()),
            Err(error) => Err(self.transport.classify(&self.name, error)),
        }
    }

    async fn healthcheck(&self) -> Result<(), NotifyError> {
        self.transport.check(&self.name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Record;
    use crate::event::SeenBy;
    use crate::notify::Alert;
    use crate::rules::{Category, Classification, Severity};
    use lettre::transport::stub::AsyncStubTransport;

    #[async_trait]
    impl SmtpTransport for AsyncStubTransport {
        async fn check(&self, _notifier: &str) -> Result<(), NotifyError> {
            Ok(())
        }

        fn classify(&self, notifier: &str, _error: Self::Error) -> NotifyError {
            NotifyError::transient(notifier, "the stub transport failed")
        }
    }

    fn config() -> SmtpConfig {
        SmtpConfig {
            host: "smtp.example.com".to_owned(),
            port: 587,
            tls: SmtpTls::StartTlsRequired,
            allow_plaintext: false,
            ca_file: None,
            username: Some("alerts".to_owned()),
            password: Some("s3cret".to_owned()),
            from: "iamwatchd <iamwatchd@example.com>".to_owned(),
            to: vec!["admin@example.com".to_owned(), "sec@example.com".to_owned()],
            timeout: Duration::from_secs(30),
        }
    }

    fn hostile_message() -> Message {
        let record = Record::parse(
            r#"{"eventID": "ev-1\r\nBcc: victim@example.com", "eventName": "PutRolePolicy",
                "eventSource": "iam.amazonaws.com", "eventTime": "2024-01-01T00:00:00Z",
                "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
                "userAgent": "<script>alert(1)</script>",
                "userIdentity": {"type": "IAMUser", "userName": "alice"},
                "requestParameters": {"roleName": "ci\r\nBcc: victim@example.com"}}"#,
        )
        .unwrap();
        Alert {
            record,
            classification: Classification {
                category: Category::IamChange,
                severity: Severity::High,
                attempt: false,
                reason: "inline policy on a role".to_owned(),
            },
            detected_at: "2024-01-01T00:01:00Z".parse().unwrap(),
            seen_by: SeenBy::Poller,
        }
        .render()
    }

    fn stub_notifier(transport: AsyncStubTransport) -> SmtpNotifier<AsyncStubTransport> {
        SmtpNotifier::with_transport(
            "mail",
            "iamwatchd@example.com".parse().unwrap(),
            vec![
                "admin@example.com".parse().unwrap(),
                "sec@example.com".parse().unwrap(),
            ],
            transport,
        )
    }

    /// The header section of a formatted mail, unfolded (continuation lines joined).
    fn headers(raw: &str) -> Vec<String> {
        let head = raw.split("\r\n\r\n").next().unwrap();
        let mut lines: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                lines.last_mut().unwrap().push_str(line);
            } else {
                lines.push(line.to_owned());
            }
        }
        lines
    }

    #[tokio::test]
    async fn a_mail_has_envelope_headers_and_both_parts() {
        let notifier = stub_notifier(AsyncStubTransport::new_ok());
        let message = hostile_message();
        notifier.send(&message).await.expect("stub accepts");
        let sent = notifier.transport().messages().await;
        assert_eq!(sent.len(), 1);
        let (envelope, raw) = &sent[0];
        assert_eq!(
            envelope.from().map(ToString::to_string).as_deref(),
            Some("iamwatchd@example.com")
        );
        let recipients: Vec<String> = envelope.to().iter().map(ToString::to_string).collect();
        assert_eq!(recipients, ["admin@example.com", "sec@example.com"]);

        let headers = headers(raw);
        let named = |name: &str| -> Vec<&String> {
            headers
                .iter()
                .filter(|h| h.to_ascii_lowercase().starts_with(&format!("{name}:")))
                .collect()
        };
        assert!(named("bcc").is_empty(), "{headers:#?}");
        assert_eq!(
            named("message-id"),
            ["Message-ID: <ev-1%20%20Bcc%3A%20victim%40example%2Ecom.mail@iamwatchd>"]
        );
        assert_eq!(
            named("x-iamwatchd-severity"),
            ["X-Iamwatchd-Severity: HIGH"]
        );
        assert_eq!(
            named("x-iamwatchd-event-id"),
            ["X-Iamwatchd-Event-Id: ev-1  Bcc: victim@example.com"]
        );
        assert_eq!(named("subject").len(), 1);
        assert!(named("subject")[0].contains("ci  Bcc: victim@example.com"));
        assert!(named("content-type")[0].contains("multipart/alternative"));
        let (text, html) = raw
            .split_once("Content-Type: text/html; charset=utf-8")
            .expect("an HTML part");
        assert!(text.contains("Content-Type: text/plain; charset=utf-8"));
        // Plain text shows the user agent as it is; HTML only escaped (quoted-printable
        // soft line breaks undone).
        assert!(text.contains("User agent: <script>alert(1)</script>"));
        let html = html.replace("=\r\n", "");
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[tokio::test]
    async fn a_refusing_transport_is_an_error_not_a_silent_success() {
        let notifier = stub_notifier(AsyncStubTransport::new_error());
        let error = notifier
            .send(&hostile_message())
            .await
            .expect_err("stub refuses");
        assert!(error.is_transient());
        assert_eq!(notifier.name(), "mail");
    }

    #[test]
    fn message_ids_are_stable_per_event_and_notifier_and_safe() {
        let id = "f4923a37-92d5-4dfd-9786-6caef2b5f33c";
        assert_eq!(
            message_id(id, "ops-mail"),
            "<f4923a37-92d5-4dfd-9786-6caef2b5f33c.ops-mail@iamwatchd>"
        );
        assert_ne!(message_id(id, "ops-mail"), message_id(id, "sec-mail"));
        // `.` in either part is encoded, so the separator stays unambiguous.
        assert_ne!(message_id("a.b", "c"), message_id("a", "b.c"));
        let long = message_id(&"é".repeat(500), "m");
        assert!(long.len() < 3 * MESSAGE_ID_PART_MAX_BYTES + 20);
        assert!(long.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(message_id("", ""), "<-.-@iamwatchd>");
    }

    #[tokio::test]
    async fn a_valid_configuration_builds_a_notifier() {
        let notifier = SmtpNotifier::new("mail", &config()).expect("valid");
        assert_eq!(notifier.name(), "mail");
        assert!(!format!("{:?}", config()).contains("s3cret"));
    }

    #[tokio::test]
    async fn every_configuration_problem_is_reported_at_once() {
        let bad = SmtpConfig {
            host: " ".to_owned(),
            port: 0,
            tls: SmtpTls::None,
            allow_plaintext: false,
            from: "not an address".to_owned(),
            to: vec![],
            password: None,
            timeout: Duration::ZERO,
            ..config()
        };
        let problems = bad.validate().unwrap_err();
        assert!(problems.contains(&SmtpConfigError::EmptyHost));
        assert!(problems.contains(&SmtpConfigError::ZeroPort));
        assert!(problems.contains(&SmtpConfigError::ZeroTimeout));
        assert!(problems.contains(&SmtpConfigError::PlaintextNotAllowed));
        assert!(problems.contains(&SmtpConfigError::AuthOverPlaintext));
        assert!(problems.contains(&SmtpConfigError::UsernameWithoutPassword));
        assert!(problems.contains(&SmtpConfigError::NoRecipients));
        assert!(problems
            .iter()
            .any(|p| matches!(p, SmtpConfigError::BadAddress { field: "from", .. })));
        let error = SmtpNotifier::new("mail", &bad).err().expect("invalid");
        assert!(matches!(&error, NotifyError::Config { problems, .. } if problems.len() == 8));
        assert!(error.to_string().contains("allow_plaintext = true"));
    }

    #[test]
    fn plaintext_is_allowed_only_explicitly_and_without_credentials() {
        let plain = SmtpConfig {
            tls: SmtpTls::None,
            allow_plaintext: true,
            username: None,
            password: None,
            port: 25,
            ..config()
        };
        assert_eq!(plain.validate(), Ok(()));
        let with_auth = SmtpConfig {
            username: Some("u".to_owned()),
            password: Some("p".to_owned()),
            ..plain
        };
        assert_eq!(
            with_auth.validate(),
            Err(vec![SmtpConfigError::AuthOverPlaintext])
        );
    }

    #[tokio::test]
    async fn an_unreadable_ca_file_is_a_configuration_error() {
        let missing = SmtpConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..config()
        };
        let error = SmtpNotifier::new("mail", &missing).err().expect("invalid");
        assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
        let garbage = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(garbage.path(), "not a certificate").unwrap();
        let error = SmtpNotifier::new(
            "mail",
            &SmtpConfig {
                ca_file: Some(garbage.path().to_owned()),
                ..config()
            },
        )
        .err()
        .expect("invalid");
        assert!(error.to_string().contains("PEM"), "{error}");
    }
}
