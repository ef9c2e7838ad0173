//! The e-mail notifier: lettre's async SMTP transport, pooled, STARTTLS required by default.
//!
//! Each alert becomes one multipart/alternative mail (text and HTML from [`render`]) whose
//! `Message-ID` is derived from the eventID and the notifier's name, so when the outbox repeats
//! a send after a crash the mail systems (and humans' clients) can recognise the repeat.
//!
//! The notifier is generic over [`SmtpTransport`] (lettre's `AsyncTransport` plus a health
//! check and the error classification, in `transport`) so unit tests use lettre's
//! `AsyncStubTransport` and see the exact bytes that would go on the wire. Its configuration,
//! with the security defaults (encryption required, no credentials over plaintext), is
//! [`SmtpConfig`]. The server certificate is checked against the Mozilla roots (webpki-roots)
//! plus, optionally, a CA file.
//!
//! [`render`]: super::render

mod config;
mod transport;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use super::chat::cut;
use super::render::one_line;
use super::{Message, Notifier, NotifyError};
pub(crate) use config::{RawSmtp, PASSWORD};
pub use config::{SmtpAuth, SmtpConfig, SmtpTls};
pub use transport::LettreSmtp;
pub(crate) use transport::SmtpTransport;

const SEVERITY_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Iamwatchd-Severity");
const EVENT_ID_HEADER: HeaderName = HeaderName::new_from_ascii_str("X-Iamwatchd-Event-Id");

/// Longest Subject, in characters. RFC 5322 limits a line to 998 bytes and a header can only
/// be folded at a space, so a value without one must fit on its line; a rendered subject is
/// shorter, a stored row may not be.
const SUBJECT_MAX_CHARS: usize = 900;
/// Longest `X-Iamwatchd-*` value, in characters (real ones are under 40).
const X_HEADER_MAX_CHARS: usize = 200;

/// Longest eventID (in bytes) used in a Message-ID; real ones are 36 characters.
const MESSAGE_ID_PART_MAX_BYTES: usize = 200;

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

/// Sends each alert as one mail to the configured recipients.
pub struct SmtpNotifier<T = LettreSmtp> {
    name: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    transport: T,
}

impl SmtpNotifier<LettreSmtp> {
    /// Reads the CA file and builds the pooled transport for a validated configuration.
    /// Connects to nothing: see [`Notifier::healthcheck`]. Call it inside the Tokio runtime:
    /// the connection pool spawns its housekeeping task.
    pub fn new(name: &str, config: &SmtpConfig) -> Result<Self, NotifyError> {
        let invalid = |problem: String| NotifyError::Config {
            notifier: name.to_owned(),
            problem,
        };
        let from = parse_mailbox("from", &config.from).map_err(invalid)?;
        let to = config
            .to
            .iter()
            .map(|to| parse_mailbox("to", to))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;

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
                    invalid(format!(
                        "ca_file {}: {reason}: give a readable PEM certificate file",
                        path.display()
                    ))
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
            let parameters = parameters
                .build_rustls()
                .map_err(|e| invalid(format!("TLS set-up failed: {e}")))?;
            builder = builder.tls(match config.tls {
                SmtpTls::Implicit => Tls::Wrapper(parameters),
                _ => Tls::Required(parameters),
            });
        }
        if let Some(auth) = &config.auth {
            builder = builder.credentials(Credentials::new(
                auth.username.clone(),
                auth.password.expose().to_owned(),
            ));
        }
        let transport = LettreSmtp {
            transport: builder.build(),
            server: format!("{}:{}", config.host, config.port),
        };
        Ok(SmtpNotifier::with_transport(name, from, to, transport))
    }
}

/// A validated mailbox as lettre takes it.
fn parse_mailbox(field: &str, value: &str) -> Result<Mailbox, String> {
    value.parse::<Mailbox>().map_err(|error| {
        format!(
            "{field} {value:?} is not a mail address ({error}): write it as `name@example.com` \
             or `Name <name@example.com>`"
        )
    })
}

impl<T> SmtpNotifier<T> {
    /// A notifier over any transport (tests use lettre's `AsyncStubTransport`).
    pub(crate) fn with_transport(
        name: &str,
        from: Mailbox,
        to: Vec<Mailbox>,
        transport: T,
    ) -> Self {
        SmtpNotifier {
            name: name.to_owned(),
            from,
            to,
            transport,
        }
    }

    /// The transport mail is sent through (tests read a stub's sent mail from it).
    #[cfg(test)]
    pub(crate) fn transport(&self) -> &T {
        &self.transport
    }

    /// The mail for `message`. The message's strings were made safe by the renderer; the
    /// one-line fields are cleaned again here because the message may come from storage.
    pub fn email(&self, message: &Message) -> Result<lettre::Message, NotifyError> {
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(cut(&one_line(&message.subject), SUBJECT_MAX_CHARS))
            .message_id(Some(message_id(&message.event_id, &self.name)))
            .raw_header(HeaderValue::new(
                SEVERITY_HEADER,
                cut(&one_line(&message.severity), X_HEADER_MAX_CHARS),
            ))
            .raw_header(HeaderValue::new(
                EVENT_ID_HEADER,
                cut(&one_line(&message.event_id), X_HEADER_MAX_CHARS),
            ));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let body = MultiPart::alternative_plain_html(message.text.clone(), message.html.clone());
        let body = match &message.attachment {
            // A digest's whole list, as a file beside the text.
            Some(file) => {
                let name: String = file
                    .name
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                    .collect();
                let kind =
                    ContentType::parse(&file.content_type).unwrap_or(ContentType::TEXT_PLAIN);
                MultiPart::mixed().multipart(body).singlepart(
                    lettre::message::Attachment::new(name).body(file.text.clone(), kind),
                )
            }
            None => body,
        };
        builder.multipart(body).map_err(|error| {
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
    use crate::config::secret::Secret;
    use crate::event::Record;
    use crate::event::SeenBy;
    use crate::notify::Alert;
    use crate::rules::{Category, Classification, Severity};
    use lettre::transport::stub::AsyncStubTransport;
    use std::time::Duration;

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
            tls: SmtpTls::Starttls,
            ca_file: None,
            auth: Some(SmtpAuth {
                username: "alerts".to_owned(),
                password: Secret::new("s3cret"),
            }),
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
            analysis: None,
            account_name: None,
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
    fn a_subject_or_event_id_of_thousands_of_characters_keeps_every_header_line_within_998_bytes() {
        let notifier = stub_notifier(AsyncStubTransport::new_ok());
        let message = Message {
            subject: "x".repeat(5_000),
            event_id: "y".repeat(5_000),
            severity: "z".repeat(5_000),
            ..Message::for_test("HIGH", "iam-change", "CreateUser")
        };
        let raw = notifier.email(&message).unwrap().formatted();
        let raw = String::from_utf8(raw).unwrap();
        let (head, _) = raw.split_once("\r\n\r\n").unwrap();
        for line in head.split("\r\n") {
            assert!(line.len() <= 998, "{} bytes: {line}", line.len());
        }
        assert!(head.contains("Subject: xxxx"), "{head}");
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
