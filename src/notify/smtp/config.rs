//! The one SMTP configuration: `[smtp]` as written ([`RawSmtp`]), and validated
//! ([`SmtpConfig`]) with every problem at once, each with its key path. The password comes from
//! the environment or a private file, never from the configuration file itself.
//!
//! Security defaults: the connection must be encrypted (STARTTLS or implicit TLS); plaintext
//! needs an explicit `allow_plaintext`, and credentials are never sent over plaintext.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::problem::Problems;
use crate::config::secret::{Secret, SecretKey};
use crate::config::shapes::check_mailbox;
use crate::config::{defaults, values};

/// The key `[smtp]` keeps its password under: refused in the file, read from
/// `IAMWATCHD__SMTP__PASSWORD` or from the file `smtp.password_file` names.
pub(crate) const PASSWORD: SecretKey<'static> = SecretKey {
    section: "smtp",
    key: "password",
};

/// How the connection to the mail server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "String")]
pub enum SmtpTls {
    /// Plain connect, then STARTTLS; a server that does not offer it is an error (no silent
    /// downgrade). Usually port 587.
    #[default]
    Starttls,
    /// TLS from the first byte ("SMTPS"). Usually port 465.
    Implicit,
    /// No encryption: only with `allow_plaintext`, and never with credentials. Port 25.
    None,
}

impl SmtpTls {
    /// The port conventionally used with this mode.
    pub(crate) fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        }
    }
}

impl TryFrom<String> for SmtpTls {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        values::choose(
            &text,
            &[
                ("starttls", SmtpTls::Starttls),
                ("implicit", SmtpTls::Implicit),
                ("none", SmtpTls::None),
            ],
        )
    }
}

/// SMTP credentials; the password came from the environment or a private file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpAuth {
    /// SMTP AUTH user name.
    pub username: String,
    /// SMTP AUTH password.
    pub password: Secret,
}

/// Where and how to send mail, validated: the host is a host name, the port is not 0, the
/// connection is encrypted (or plaintext was allowed and carries no credentials), the
/// addresses are mailboxes, the timeout is not 0.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpConfig {
    /// Server host name; also the name its TLS certificate must carry.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// Credentials, when the server needs AUTH.
    pub auth: Option<SmtpAuth>,
    /// The sender (`From:` and envelope): `alerts@example.com` or
    /// `iamwatchd <alerts@example.com>`.
    pub from: String,
    /// Recipient mailboxes, at least one.
    pub to: Vec<String>,
    /// Limit for each network operation (connect, each command).
    pub timeout: Duration,
    /// Extra trusted certificate(s) (PEM), added to the built-in Mozilla roots: a company CA,
    /// or the emulator's self-signed certificate.
    pub ca_file: Option<PathBuf>,
}

/// `[smtp]` as written.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct RawSmtp {
    /// Server host name (required).
    host: Option<String>,
    /// Server port; default from `tls`.
    port: Option<i64>,
    /// `"starttls"`, `"implicit"` or `"none"`.
    tls: SmtpTls,
    /// Must be true for `tls = "none"`.
    allow_plaintext: bool,
    /// SMTP AUTH user name.
    username: Option<String>,
    /// Only from `IAMWATCHD__SMTP__PASSWORD`; refused in the file.
    password: Option<String>,
    /// File holding the password (mode 600).
    password_file: Option<PathBuf>,
    /// Sender mailbox (required).
    from: Option<String>,
    /// Recipient mailboxes (at least one).
    to: Vec<String>,
    /// Connection and command timeout.
    #[serde(deserialize_with = "values::duration")]
    timeout: Duration,
    /// Extra CA certificate to trust.
    ca_file: Option<PathBuf>,
}

impl Default for RawSmtp {
    fn default() -> Self {
        RawSmtp {
            host: None,
            port: None,
            tls: SmtpTls::default(),
            allow_plaintext: false,
            username: None,
            password: None,
            password_file: None,
            from: None,
            to: Vec::new(),
            timeout: defaults::SMTP_TIMEOUT,
            ca_file: None,
        }
    }
}

impl RawSmtp {
    /// Validates the section at key path `section` (`smtp`). No network; the only I/O is
    /// reading the password file (and refusing it when others can read it) and looking at the
    /// CA file.
    pub(crate) fn validate(
        &self,
        section: &str,
        credentials: Option<&Path>,
        problems: &mut Problems,
    ) -> SmtpConfig {
        let key = |name: &str| format!("{section}.{name}");
        let host = match self.host.as_deref().map(str::trim) {
            Some(h) if !h.is_empty() && !h.contains(char::is_whitespace) => h.to_owned(),
            Some(h) => {
                problems.error(
                    key("host"),
                    format!("must be a host name or address, got {h:?}"),
                );
                String::new()
            }
            None => {
                problems.error(
                    key("host"),
                    format!("is required when [{section}] is configured"),
                );
                String::new()
            }
        };
        let port = match self.port {
            None => self.tls.default_port(),
            Some(p) => match u16::try_from(p) {
                Ok(p) if p != 0 => p,
                _ => {
                    problems.error(key("port"), format!("must be 1-65535, got {p}"));
                    self.tls.default_port()
                }
            },
        };
        if self.tls == SmtpTls::None && !self.allow_plaintext {
            problems.error(
                key("tls"),
                format!(
                    "\"none\" sends mail (and any password) unencrypted; set \
                     {section}.allow_plaintext = true to accept that, e.g. for a relay on \
                     localhost"
                ),
            );
        }
        let has_credentials =
            self.username.is_some() || self.password.is_some() || self.password_file.is_some();
        if self.tls == SmtpTls::None && has_credentials {
            problems.error(
                key("username"),
                "credentials over an unencrypted connection are refused: use tls = \
                 \"starttls\" or \"implicit\", or remove the user name and password",
            );
        }

        let auth = self.auth(section, credentials, problems);
        let from = match &self.from {
            Some(from) => {
                if let Err(e) = check_mailbox(from) {
                    problems.error(key("from"), e);
                }
                from.clone()
            }
            None => {
                problems.error(
                    key("from"),
                    format!("is required when [{section}] is configured (the sender address)"),
                );
                String::new()
            }
        };
        if self.to.is_empty() {
            problems.error(
                key("to"),
                "must list at least one recipient, e.g. to = [\"security@example.com\"]",
            );
        }
        for (i, to) in self.to.iter().enumerate() {
            if let Err(e) = check_mailbox(to) {
                problems.error(format!("{section}.to[{i}]"), e);
            }
        }
        if self.timeout.is_zero() {
            problems.error(key("timeout"), "must be greater than 0");
        }
        if let Some(ca_file) = &self.ca_file {
            if let Err(e) = std::fs::metadata(ca_file) {
                problems.error(
                    key("ca_file"),
                    format!("cannot read {}: {e}", ca_file.display()),
                );
            }
        }
        SmtpConfig {
            host,
            port,
            tls: self.tls,
            auth,
            from,
            to: self.to.clone(),
            timeout: self.timeout,
            ca_file: self.ca_file.clone(),
        }
    }

    /// The user name with the password from the environment (`smtp.password` in the layered
    /// config; the file itself was refused while layering), from `smtp.password_file`, which
    /// others must not be able to read, or from systemd's `credentials` directory.
    fn auth(
        &self,
        section: &str,
        credentials: Option<&Path>,
        problems: &mut Problems,
    ) -> Option<SmtpAuth> {
        let secret = SecretKey {
            section,
            key: PASSWORD.key,
        };
        let password = secret.resolve(
            self.password.as_deref(),
            self.password_file.as_deref(),
            credentials,
            problems,
        );
        let failed = self.password.is_some() || self.password_file.is_some();
        match (&self.username, password) {
            (Some(username), Some(password)) => Some(SmtpAuth {
                username: username.clone(),
                password,
            }),
            (Some(_), None) => {
                if !failed {
                    problems.error(
                        format!("{section}.password"),
                        format!(
                            "{section}.username is set but no password: {}",
                            secret.sources()
                        ),
                    );
                }
                None
            }
            (None, Some(_)) => {
                problems.error(
                    format!("{section}.username"),
                    format!("a password is configured but no user name: set {section}.username"),
                );
                None
            }
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    const SMTP: &str = "[smtp]\nhost = \"mail\"\nfrom = \"a@b.example\"\nto = [\"x@y.example\"]\n";

    #[test]
    fn plaintext_smtp_needs_consent_and_gets_port_25() {
        let base = format!("{MINIMAL}[smtp]\nhost = \"localhost\"\ntls = \"none\"\nfrom = \"a@b.example\"\nto = [\"x@y.example\"]\n");
        problem_at(&problems(&base), "smtp.tls");
        let config = load_str(&format!("{base}allow_plaintext = true\n"), &[]).unwrap();
        assert_eq!(config.smtp("smtp").unwrap().clone().port, 25);
    }

    #[test]
    fn every_problem_of_the_section_is_reported_at_once() {
        let found = problems(&format!(
            "{MINIMAL}[smtp]\nhost = \" \"\nport = 0\ntls = \"none\"\nusername = \"u\"\nfrom = \"not an address\"\nto = []\ntimeout = \"0s\"\n"
        ));
        for path in [
            "smtp.host",
            "smtp.port",
            "smtp.timeout",
            "smtp.from",
            "smtp.to",
            "smtp.password",
        ] {
            problem_at(&found, path);
        }
        assert!(problem_at(&found, "smtp.tls")
            .message
            .contains("allow_plaintext = true"));
        assert!(problem_at(&found, "smtp.username")
            .message
            .contains("unencrypted connection"));
        assert_eq!(found.len(), 8, "{found:#?}");
    }

    #[test]
    fn plaintext_is_allowed_only_explicitly_and_without_credentials() {
        let plain = format!("{MINIMAL}[smtp]\nhost = \"relay\"\ntls = \"none\"\nallow_plaintext = true\nfrom = \"a@b.example\"\nto = [\"x@y.example\"]\n");
        load_str(&plain, &[]).unwrap_or_else(|e| panic!("{e}"));
        let found = match load_str(
            &format!("{plain}username = \"u\"\n"),
            &[("IAMWATCHD__SMTP__PASSWORD", "p")],
        ) {
            Err(e) => e.problems().to_vec(),
            Ok(_) => panic!("credentials over plaintext accepted"),
        };
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(problem_at(&found, "smtp.username")
            .message
            .contains("unencrypted"));
    }

    #[cfg(unix)]
    #[test]
    fn password_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let secret = write(&dir, "smtp-password", "from-file\n");
        let text = format!(
            "{MINIMAL}{SMTP}username = \"u\"\npassword_file = \"{}\"\n",
            secret.display()
        );

        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
        let found = problems(&text);
        let message = &problem_at(&found, "smtp.password_file").message;
        assert!(message.contains(&secret.display().to_string()), "{message}");
        assert!(
            message.contains(&format!("chmod 600 {}", secret.display())),
            "{message}"
        );

        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = load_str(&text, &[]).unwrap_or_else(|e| panic!("{e}"));
        let auth = config.smtp("smtp").unwrap().clone().auth.unwrap();
        assert_eq!(auth.password.expose(), "from-file");
    }

    /// The case of systemd's `DynamicUser=`: `password_file` names a root-owned file in /etc
    /// the transient user cannot read (here: one it cannot find), and the unit loads that
    /// file as the credential `smtp.password`, which is used instead.
    #[cfg(unix)]
    #[test]
    fn a_credential_stands_in_for_a_password_file_the_service_cannot_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let credential = write(&dir, "smtp.password", "from-credential\n");
        std::fs::set_permissions(&credential, std::fs::Permissions::from_mode(0o400)).unwrap();
        let unreadable = dir.path().join("etc-iamwatchd").join("smtp-password");
        let text = format!(
            "{MINIMAL}{SMTP}username = \"u\"\npassword_file = \"{}\"\n",
            unreadable.display()
        );
        let directory = dir.path().to_str().unwrap();
        let config = load_str(&text, &[("CREDENTIALS_DIRECTORY", directory)])
            .unwrap_or_else(|e| panic!("{e}"));
        let auth = config.smtp("smtp").unwrap().clone().auth.unwrap();
        assert_eq!(auth.password.expose(), "from-credential");

        // Without the credential the path is read, and its failure names the path.
        let found = problems(&text);
        let message = &problem_at(&found, "smtp.password_file").message;
        assert!(
            message.contains(&unreadable.display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn password_from_env_and_file_is_ambiguous() {
        let dir = tempfile::tempdir().unwrap();
        let secret = write(&dir, "pw", "x");
        let text = format!(
            "{MINIMAL}{SMTP}username = \"u\"\npassword_file = \"{}\"\n",
            secret.display()
        );
        let found = match load_str(&text, &[("IAMWATCHD__SMTP__PASSWORD", "y")]) {
            Err(e) => e.problems().to_vec(),
            Ok(_) => panic!("two passwords accepted"),
        };
        assert!(problem_at(&found, "smtp.password_file")
            .message
            .contains("only one"));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let config = load_str(
            &format!("{MINIMAL}{SMTP}username = \"u\"\n"),
            &[("IAMWATCHD__SMTP__PASSWORD", "hunter2")],
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("Secret(<redacted>)"));
    }
}
