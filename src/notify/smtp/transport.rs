//! lettre's SMTP transport, behind the little the notifier needs from a transport: a health
//! check and the transient/permanent verdict on its errors, with the fix for permanent ones.
//! The notifier is generic over [`SmtpTransport`] so unit tests use lettre's
//! `AsyncStubTransport` and see the exact bytes that would go on the wire.

use async_trait::async_trait;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::notify::NotifyError;

/// What the notifier needs from a transport besides sending: a health check and the
/// transient/permanent verdict on its errors.
#[async_trait]
pub(crate) trait SmtpTransport: AsyncTransport + Send + Sync {
    /// Checks the server can be reached and speaks SMTP (with TLS and AUTH as configured).
    async fn check(&self, notifier: &str) -> Result<(), NotifyError>;

    /// Turns a transport error into a [`NotifyError`] that says whether to retry.
    fn classify(&self, notifier: &str, error: Self::Error) -> NotifyError;
}

/// lettre's SMTP transport and the server it talks to (for error messages).
#[derive(Clone)]
pub struct LettreSmtp {
    pub(super) transport: AsyncSmtpTransport<Tokio1Executor>,
    pub(super) server: String,
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
pub(crate) fn classify_smtp_error(
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
