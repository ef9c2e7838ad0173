//! Problems in a configuration: each with the key it is about and what to do, collected so
//! that an operator sees every mistake in one run.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::values;

/// One problem (or warning) in the configuration, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path (`smtp.port`, `rules.allow[2].account`), or the flag (`--email`) for a
    /// setting given on the command line; for a problem that concerns several keys, the keys
    /// joined with `, `.
    pub path: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Whether the problem is about a command-line flag rather than a key of a file.
    pub(crate) fn is_flag(&self) -> bool {
        self.path.starts_with("--")
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Errors and warnings collected by validation.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    pub(crate) errors: Vec<Problem>,
    pub(crate) warnings: Vec<Problem>,
}

impl Problems {
    /// Something that cannot work.
    pub(crate) fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Problem::new(path, message));
    }

    /// The duration at `key` must be at least the one at `floor_key`: "must be at least
    /// `floor_key` (floor)`why`; got value". `why`, what goes wrong otherwise, brings its own
    /// separator (`", or …"`, `": …"`); without one the message ends "(floor), got value".
    pub(crate) fn at_least(
        &mut self,
        (key, value): (&str, Duration),
        (floor_key, floor): (&str, Duration),
        why: &str,
    ) {
        if value < floor {
            let got = if why.is_empty() {
                ", got".to_owned()
            } else {
                format!("{why}; got")
            };
            self.error(
                key,
                format!(
                    "must be at least {floor_key} ({}){got} {}",
                    values::show(floor),
                    values::show(value)
                ),
            );
        }
    }

    /// Something that works but deserves a second look.
    pub(crate) fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem::new(path, message));
    }
}

/// How problems name the keys of a section: `section.key` for a key of the file, or the flag
/// that gave the value on the command line (`deploy`'s flags fill the same raw sections).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Names<'a> {
    /// The section's key path (`deploy`).
    pub(crate) section: &'a str,
    /// `(key, flag)` for each key a flag gave.
    pub(crate) flags: &'a [(&'static str, &'static str)],
}

impl<'a> Names<'a> {
    /// Every key named as the file's.
    pub(crate) const fn file(section: &'a str) -> Names<'a> {
        Names {
            section,
            flags: &[],
        }
    }

    fn flag(&self, key: &str) -> Option<&'static str> {
        self.flags
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, flag)| *flag)
    }

    /// `deploy.alarm_period`, or `--alarm-period` when a flag gave it.
    pub(crate) fn key(&self, key: &str) -> String {
        self.flag(key)
            .map_or_else(|| join(self.section, key), str::to_owned)
    }

    /// `deploy.emails[1]`, or `--email` when the flag gave the list.
    pub(crate) fn item(&self, key: &str, index: usize) -> String {
        self.flag(key).map_or_else(
            || format!("{}[{index}]", join(self.section, key)),
            str::to_owned,
        )
    }
}

/// `key` as a path shows it: as it is when it is a bare TOML key (`[A-Za-z0-9_-]+`, every key
/// the configuration knows), else quoted as TOML writes it, with `"`, `\`, controls and
/// invisible or bidirectional characters escaped (`""`, `"a.b"`, `"x\u202E"`), so an unknown
/// key is always visible, unambiguous and can be searched for in the file.
pub(crate) fn quote_key(key: &str) -> std::borrow::Cow<'_, str> {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        return key.into();
    }
    let mut quoted = String::from("\"");
    for c in key.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if crate::text::is_unsafe(c) => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted.into()
}

/// `section.key`, or `key` at the top.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigErrors {
    /// The file could not be read.
    #[error(
        "cannot read configuration file {}: {source}; pass --config PATH or start from the \
         example config/iamwatchd.toml",
        path.display()
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{}:{line}:{column}: TOML syntax error: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What the TOML parser expected.
        message: String,
    },
    /// The file parsed but its content is wrong; every problem found is listed.
    #[error("{}", describe_invalid(path, problems, warnings))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every error found, in key order.
        problems: Vec<Problem>,
        /// Warnings found on the way (reported too, so that fixing errors shows no surprise).
        warnings: Vec<Problem>,
    },
    /// Settings given on the command line (and maybe in a file) are wrong; every problem
    /// found is listed, each named by its flag or key.
    #[error("{}", describe_settings(problems, warnings))]
    Settings {
        /// Every error found, flags first.
        problems: Vec<Problem>,
        /// Warnings found on the way.
        warnings: Vec<Problem>,
    },
}

impl ConfigErrors {
    /// The individual problems (empty for read and syntax errors, which stand alone).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigErrors::Invalid { problems, .. } | ConfigErrors::Settings { problems, .. } => {
                problems
            }
            _ => &[],
        }
    }

    /// Whether a configuration file is at fault (the command's exit status says so: 78), as
    /// opposed to a flag alone (a failed command: 1).
    pub fn names_a_file(&self) -> bool {
        match self {
            ConfigErrors::Settings { problems, .. } => problems.iter().any(|p| !p.is_flag()),
            _ => true,
        }
    }
}

fn list(text: &mut String, problems: &[Problem], warnings: &[Problem]) {
    for problem in problems {
        text.push_str(&format!("\n  - {problem}"));
    }
    for warning in warnings {
        text.push_str(&format!("\n  - warning: {warning}"));
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn describe_invalid(path: &Path, problems: &[Problem], warnings: &[Problem]) -> String {
    let mut text = format!(
        "configuration {} has {} problem{}; fix them and run `iamwatchd check --offline` again:",
        path.display(),
        problems.len(),
        plural(problems.len())
    );
    list(&mut text, problems, warnings);
    text
}

fn describe_settings(problems: &[Problem], warnings: &[Problem]) -> String {
    // A single mistake on the command line reads best as one line, like any usage error.
    if let ([problem], []) = (problems, warnings) {
        return problem.to_string();
    }
    let mut text = format!(
        "the settings have {} problem{}; fix them and run the command again:",
        problems.len(),
        plural(problems.len())
    );
    list(&mut text, problems, warnings);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_files_keys_unless_a_flag_gave_them() {
        let flags = [("alarm_period", "--alarm-period"), ("emails", "--email")];
        let names = Names {
            section: "deploy",
            flags: &flags,
        };
        assert_eq!(names.key("alarm_period"), "--alarm-period");
        assert_eq!(names.key("bucket"), "deploy.bucket");
        assert_eq!(names.item("emails", 1), "--email");
        assert_eq!(Names::file("deploy").item("emails", 1), "deploy.emails[1]");
    }

    #[test]
    fn a_flag_alone_is_not_the_files_fault() {
        let flag = Problem::new("--alarm-period", "must be one of 10, 30; got 90");
        let key = Problem::new("deploy.bucket", "must be an S3 bucket name");
        let only_flags = ConfigErrors::Settings {
            problems: vec![flag.clone()],
            warnings: Vec::new(),
        };
        assert!(!only_flags.names_a_file());
        assert_eq!(
            only_flags.to_string(),
            "--alarm-period: must be one of 10, 30; got 90",
            "one mistake, one line"
        );
        let both = ConfigErrors::Settings {
            problems: vec![flag, key],
            warnings: Vec::new(),
        };
        assert!(both.names_a_file());
        assert_eq!(both.problems().len(), 2);
        assert!(both
            .to_string()
            .starts_with("the settings have 2 problems; fix them and run the command again:"));
    }

    #[test]
    fn a_duration_below_its_floor_names_both_keys_and_why() {
        let secs = Duration::from_secs;
        let mut problems = Problems::default();
        problems.at_least(("a.max", secs(60)), ("a.min", secs(30)), ", or never");
        assert!(problems.errors.is_empty(), "in order: nothing to say");
        problems.at_least(("a.max", secs(10)), ("a.min", secs(30)), "");
        problems.at_least(("a.max", secs(10)), ("a.min", secs(30)), ", or it breaks");
        problems.at_least(("a.max", secs(10)), ("a.min", secs(30)), ": it breaks");
        let messages: Vec<String> = problems.errors.iter().map(Problem::to_string).collect();
        assert_eq!(
            messages,
            [
                "a.max: must be at least a.min (30s), got 10s",
                "a.max: must be at least a.min (30s), or it breaks; got 10s",
                "a.max: must be at least a.min (30s): it breaks; got 10s",
            ]
        );
    }
}
