//! Secrets: values that must never sit in the configuration file (files are copied, backed up
//! and read by many), never reach a log line, and come instead from the environment or from a
//! private file.

use std::fmt;
use std::path::Path;

/// The prefix of every environment variable that overrides the file (`IAMWATCHD__POLLER__…`);
/// double underscores separate nesting levels.
pub(crate) const ENV_PREFIX: &str = "IAMWATCHD";

/// A secret value (a password). Its `Debug` never shows the value, so a config logged with
/// `{:?}` cannot leak it; there is deliberately no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must hand it to a server.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A key of a section that holds a secret: refused in the file, accepted from the environment
/// (`IAMWATCHD__SECTION__KEY`) or from a private file named by `<key>_file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SecretKey<'a> {
    /// The section's key path (`smtp`).
    pub(crate) section: &'a str,
    /// The key (`password`).
    pub(crate) key: &'a str,
}

impl SecretKey<'_> {
    /// The environment variable that carries it: `IAMWATCHD__SMTP__PASSWORD`.
    pub(crate) fn env_var(&self) -> String {
        format!(
            "{ENV_PREFIX}__{}__{}",
            self.section.replace('.', "__").to_ascii_uppercase(),
            self.key.to_ascii_uppercase()
        )
    }

    /// The key that names a file holding it: `smtp.password_file`.
    pub(crate) fn file_key(&self) -> String {
        format!("{}.{}_file", self.section, self.key)
    }

    /// Why the file may not hold it, and where it goes instead.
    pub(crate) fn refused_in_file(&self) -> String {
        format!(
            "a {} written in the configuration file is refused (config files are copied, backed \
             up and read by many); move it to the {} environment variable (e.g. a systemd \
             EnvironmentFile) or to a file named by {} with mode 600",
            self.key,
            self.env_var(),
            self.file_key()
        )
    }
}

impl SecretKey<'_> {
    /// The file systemd's `LoadCredential=NAME.KEY:…` puts in `$CREDENTIALS_DIRECTORY`, NAME
    /// being the notifier's name (the last part of the section's path): `ops.webhook_url`.
    pub(crate) fn credential_name(&self) -> String {
        let name = self.section.rsplit('.').next().unwrap_or(self.section);
        format!("{name}.{}", self.key)
    }

    /// Where the secret may come from, for a message about a missing one.
    pub(crate) fn sources(&self) -> String {
        format!(
            "set {}, or {} (a file with mode 600), or a systemd credential {} \
             (LoadCredential=)",
            self.env_var(),
            self.file_key(),
            self.credential_name()
        )
    }

    /// The secret from the first source that has it: the environment (`from_env`, its value
    /// in the layered configuration; the file's own was refused while layering), the file
    /// named by `<key>_file`, or systemd's credential in `credentials` (the service's
    /// `$CREDENTIALS_DIRECTORY`, which `LoadCredential=` fills even under `DynamicUser=`).
    /// Both of the first two at once is an error: it must be clear which one is used. With
    /// `<key>_file` set, a credential `NAME.KEY` that is there wins: under `DynamicUser=` the
    /// service cannot read the root-owned file the path names, so the unit loads that file as
    /// the credential (`LoadCredential=smtp.password:/etc/iamwatchd/smtp-password`).
    pub(crate) fn resolve(
        &self,
        from_env: Option<&str>,
        file: Option<&Path>,
        credentials: Option<&Path>,
        problems: &mut super::problem::Problems,
    ) -> Option<Secret> {
        let (env, file_key) = (self.env_var(), self.file_key());
        match (from_env, file) {
            (Some(_), Some(_)) => {
                problems.error(
                    &file_key,
                    format!(
                        "both {env} and {file_key} are set; keep only one so it is clear which \
                         {} is used",
                        self.key
                    ),
                );
                None
            }
            (Some(""), None) => {
                problems.error(&env, format!("{env} is set but empty"));
                None
            }
            (Some(value), None) => Some(Secret::new(value)),
            // Under DynamicUser= the service cannot read a root-owned file in /etc: the unit
            // then loads that same file as the credential NAME.KEY, which wins over the path.
            (None, Some(path)) => match self.credential(credentials) {
                Some(credential) => read_secret_file(&credential)
                    .map_err(|e| problems.error(&file_key, e))
                    .ok(),
                None => read_secret_file(path)
                    .map_err(|e| problems.error(&file_key, self.unreadable(path, e)))
                    .ok(),
            },
            (None, None) => read_secret_file(&self.credential(credentials)?)
                .map_err(|e| problems.error(super::problem::join(self.section, self.key), e))
                .ok(),
        }
    }
}

impl SecretKey<'_> {
    /// The credential's file in `credentials` (`$CREDENTIALS_DIRECTORY`), when it is there.
    fn credential(&self, credentials: Option<&Path>) -> Option<std::path::PathBuf> {
        let path = credentials?.join(self.credential_name());
        path.exists().then_some(path)
    }

    /// `error` reading `path`, with the fix for the usual cause when it is a permission
    /// problem: the daemon runs as systemd's transient user, which cannot read files in /etc.
    fn unreadable(&self, path: &Path, error: String) -> String {
        let denied = std::fs::File::open(path)
            .err()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
        if !denied {
            return error;
        }
        format!(
            "{error}; under systemd's DynamicUser= the daemon cannot read it: add              LoadCredential={}:{} to the unit (the credential is used instead of the path)",
            self.credential_name(),
            path.display()
        )
    }
}

/// The environment variable systemd sets to the service's credentials directory.
pub(crate) const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// Reads a secret from a file, refusing a file that group or others can read.
pub(crate) fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let metadata =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{} is readable by group or others (mode {:o}); a secret's file must be \
                 private: run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = metadata;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(Secret::new(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_key_names_its_variable_and_its_file_key() {
        let key = SecretKey {
            section: "smtp",
            key: "password",
        };
        assert_eq!(key.env_var(), "IAMWATCHD__SMTP__PASSWORD");
        assert_eq!(key.file_key(), "smtp.password_file");
        let message = key.refused_in_file();
        assert!(message.contains("IAMWATCHD__SMTP__PASSWORD"), "{message}");
        assert!(message.contains("smtp.password_file"), "{message}");
        assert_eq!(
            format!("{:?}", Secret::new("hunter2")),
            "Secret(<redacted>)"
        );
    }

    #[test]
    fn a_secret_file_loses_its_final_newline_and_may_not_be_empty() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\r\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret_file(&path).unwrap().expose(), "s3cret");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_secret_file(&path).unwrap_err().contains("is empty"));
    }
}
