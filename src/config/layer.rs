//! Stage 1 of loading: the TOML file is parsed (a syntax error names file, line and column),
//! the environment is layered on top through the `config` crate (double underscore = nesting:
//! `IAMWATCHD__SMTP__PASSWORD` sets `smtp.password`), and every key is checked against the raw
//! structs, which `#[serde(deny_unknown_fields)]`. Each field is deserialised on its own first,
//! so one wrong type does not hide the next, and an unknown key is reported with its path and,
//! when it is close to a real one, the key that was probably meant. A secret written in the
//! file itself is refused here, before anything reads it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use config::{Environment, File, FileFormat, Map, Value, ValueKind};
use serde::de::DeserializeOwned;

use super::deploy::RawDeploy;
use super::keys::{fields_of, unknown_key};
use super::problem::{join, quote_key, ConfigErrors, Problem};
use super::raw::{RawAws, RawConfig, RawIdentityCenter, RawLog, RawMetrics};
use super::secret::{SecretKey, CREDENTIALS_DIRECTORY, ENV_PREFIX};
use crate::accounts::config::{RawAccounts, RawOrganizations};
use crate::notify::chat::RawChat;
use crate::notify::config as notifier_config;
use crate::notify::digest::RawDigest;
use crate::notify::pagerduty::RawPagerDuty;
use crate::notify::route::RawRoute;
use crate::notify::smtp::{RawSmtp, PASSWORD};
use crate::notify::sns::RawSns;
use crate::notify::webhook::RawWebhook;
use crate::pipeline::delivery::RawDelivery;
use crate::rules::{AllowRule, Ruleset};
use crate::source::alarm::RawAlarm;
use crate::source::cloudtrail::RawPoller;
use crate::store::RawStore;

/// Keys that hold a secret: refused in the file, accepted from the environment or a file.
/// (Each `[notifiers.NAME]` table is checked for every key of
/// [`crate::notify::config::SECRET_KEYS`] too.)
const SECRET_KEYS: &[SecretKey<'static>] = &[PASSWORD];

/// The keys of a `[notifiers.NAME]` table that may be written as a comma-separated list in
/// an environment variable.
const NOTIFIER_ENV_LIST_KEYS: &[&str] = &["categories", "accounts", "events"];

/// The keys that may be written as a comma-separated list in an environment variable
/// (`IAMWATCHD__SMTP__TO=a@example.com,b@example.com`).
const ENV_LIST_KEYS: &[(&str, &str)] = &[
    ("smtp", "to"),
    ("aws", "tampering_regions"),
    ("deploy", "emails"),
    ("accounts", "ids"),
    ("accounts", "include"),
    ("accounts", "exclude"),
];

impl RawConfig {
    /// Stage 1: TOML syntax, layering, unknown keys and field types. Returns the raw config
    /// (fields that failed left at their defaults) with the problems found so far.
    pub(crate) fn parse<I>(
        text: &str,
        path: &Path,
        env: I,
    ) -> Result<(RawConfig, Vec<Problem>), ConfigErrors>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        // The `config` crate would report a syntax error too, but only as text; parsing once
        // here gives the exact position.
        let file_table: toml::Table = toml::from_str(text).map_err(|e| {
            let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
            ConfigErrors::Syntax {
                path: path.to_owned(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;

        let mut problems = Vec::new();
        let inline = inline_secrets(&file_table);
        for (section, key) in &inline {
            let secret = SecretKey { section, key };
            problems.push(Problem::new(join(section, key), secret.refused_in_file()));
        }

        let prefix = format!("{ENV_PREFIX}__");
        let mut credentials_directory = None;
        let env: HashMap<String, String> = env
            .into_iter()
            .filter(|(k, v)| {
                if k == CREDENTIALS_DIRECTORY && !v.is_empty() {
                    credentials_directory = Some(PathBuf::from(v));
                }
                k.to_ascii_uppercase().starts_with(&prefix)
            })
            .collect();
        let from_env: Vec<String> = env
            .keys()
            .map(|k| k[prefix.len()..].to_lowercase().replace("__", "."))
            .collect();
        let layered = config::Config::builder()
            .add_source(File::from_str(text, FileFormat::Toml))
            .add_source(
                Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .source(Some(env)),
            )
            .build()
            .and_then(|c| c.try_deserialize::<Map<String, Value>>());
        let mut root = match layered {
            Ok(root) => root,
            Err(e) => {
                // Only a clash between the file and an IAMWATCHD__ variable gets here (the
                // TOML already parsed), e.g. IAMWATCHD__SMTP=x against an [smtp] table.
                problems.push(Problem::new(
                    "(environment)",
                    format!("cannot layer the {prefix}* variables over the file: {e}"),
                ));
                return Ok((RawConfig::default(), problems));
            }
        };
        for (section, key) in &inline {
            remove_at(&mut root, section, key);
        }

        clean_root(&mut root, &from_env, &mut problems);
        let mut raw = Value::new(None, ValueKind::Table(root))
            .try_deserialize::<RawConfig>()
            .unwrap_or_else(|e| {
                // Every field was checked on its own above, so this is a combination serde
                // refuses that no single key shows; say so rather than guess a path.
                problems.push(Problem::new("(root)", describe_config_error(&e)));
                RawConfig::default()
            });
        raw.credentials_directory = credentials_directory;
        Ok((raw, problems))
    }
}

/// The secrets written in the file itself, as (section path, key): `[smtp]`'s password and
/// any secret key of a `[notifiers.NAME]` table.
fn inline_secrets(file: &toml::Table) -> Vec<(String, &'static str)> {
    let mut found = Vec::new();
    for secret in SECRET_KEYS {
        let section = file.get(secret.section).and_then(|s| s.as_table());
        if section.is_some_and(|s| s.contains_key(secret.key)) {
            found.push((secret.section.to_owned(), secret.key));
        }
    }
    let notifiers = file.get("notifiers").and_then(|n| n.as_table());
    for (name, table) in notifiers.into_iter().flatten() {
        let Some(table) = table.as_table() else {
            continue;
        };
        for key in notifier_config::SECRET_KEYS {
            if table.contains_key(*key) {
                found.push((format!("notifiers.{}", quote_key(name)), *key));
            }
        }
    }
    found
}

/// Removes `section.key` (a dotted section path) from the layered tree.
fn remove_at(root: &mut Map<String, Value>, section: &str, key: &str) {
    let mut table = root;
    for part in section.split('.') {
        match table.get_mut(part) {
            Some(Value {
                kind: ValueKind::Table(inner),
                ..
            }) => table = inner,
            _ => return,
        }
    }
    table.remove(key);
}

/// Checks every key of the layered tree against the raw structs, reports unknown keys and
/// values of the wrong type (each on its own, with its path), and removes them so that the
/// rest can still be read and validated.
///
/// `from_env` lists the dotted keys set by environment variables: list keys among them are
/// split on commas.
fn clean_root(root: &mut Map<String, Value>, from_env: &[String], problems: &mut Vec<Problem>) {
    let sections = fields_of::<RawConfig>();
    for name in sorted_keys(root) {
        if !sections.contains(&name.as_str()) {
            let mut problem = unknown_key("", &name, sections);
            if !matches!(root[&name].kind, ValueKind::Table(_)) {
                // `region = …` above every section: a key, not a section.
                problem.message = problem.message.replace("unknown section", "unknown key");
            }
            problems.push(problem);
            root.remove(&name);
            continue;
        }
        let value = root.remove(&name).expect("key listed above");
        let mut table = match value.kind {
            ValueKind::Table(table) => table,
            ValueKind::Nil => continue,
            other => {
                problems.push(Problem::new(
                    name.as_str(),
                    format!("expected a table (a [{name}] section), got {other}"),
                ));
                continue;
            }
        };
        for (section, key) in ENV_LIST_KEYS {
            if *section == name && from_env.contains(&join(section, key)) {
                split_env_list(&mut table, key);
            }
        }
        match name.as_str() {
            "aws" => clean_table::<RawAws>("aws", &mut table, problems),
            "deploy" => clean_table::<RawDeploy>("deploy", &mut table, problems),
            "poller" => clean_table::<RawPoller>("poller", &mut table, problems),
            "rules" => {
                clean_allow_list(&mut table, problems);
                clean_table::<Ruleset>("rules", &mut table, problems)
            }
            "store" => clean_table::<RawStore>("store", &mut table, problems),
            "smtp" => clean_table::<RawSmtp>("smtp", &mut table, problems),
            "sns" => clean_table::<RawSns>("sns", &mut table, problems),
            "alarm" => clean_table::<RawAlarm>("alarm", &mut table, problems),
            "log" => clean_table::<RawLog>("log", &mut table, problems),
            "metrics" => clean_table::<RawMetrics>("metrics", &mut table, problems),
            "delivery" => clean_table::<RawDelivery>("delivery", &mut table, problems),
            "analysis" => clean_table::<crate::analysis::config::RawAnalysis>(
                "analysis", &mut table, problems,
            ),
            "notifiers" => clean_notifiers(&mut table, from_env, problems),
            "identity_center" => {
                clean_table::<RawIdentityCenter>("identity_center", &mut table, problems)
            }
            "digest" => clean_table::<RawDigest>("digest", &mut table, problems),
            "accounts" => clean_accounts(&mut table, problems),
            other => unreachable!("section {other} is a RawConfig field without a cleaner"),
        }
        root.insert(name, Value::new(None, ValueKind::Table(table)));
    }
}

/// `[accounts]` and its `[accounts.organizations]` table, each checked against its struct.
fn clean_accounts(accounts: &mut Map<String, Value>, problems: &mut Vec<Problem>) {
    let organizations = accounts.remove("organizations");
    clean_table::<RawAccounts>("accounts", accounts, problems);
    let Some(value) = organizations else {
        return;
    };
    match value.kind {
        ValueKind::Table(mut table) => {
            clean_table::<RawOrganizations>("accounts.organizations", &mut table, problems);
            accounts.insert(
                "organizations".to_owned(),
                Value::new(None, ValueKind::Table(table)),
            );
        }
        other => problems.push(Problem::new(
            "accounts.organizations",
            format!("expected a table ([accounts.organizations] with enabled = true), got {other}"),
        )),
    }
}

/// `[[rules.allow]]` is an array of tables: each entry is checked with its index in the path.
/// A broken entry is kept (emptied) so that the indexes validation reports stay right.
fn clean_allow_list(rules: &mut Map<String, Value>, problems: &mut Vec<Problem>) {
    let Some(value) = rules.remove("allow") else {
        return;
    };
    let entries = match value.kind {
        ValueKind::Array(entries) => entries,
        other => {
            problems.push(Problem::new(
                "rules.allow",
                format!("expected an array of tables (write each entry as [[rules.allow]]), got {other}"),
            ));
            return;
        }
    };
    let mut cleaned = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let path = format!("rules.allow[{index}]");
        let mut table = match entry.kind {
            ValueKind::Table(table) => table,
            other => {
                problems.push(Problem::new(
                    path.as_str(),
                    format!("expected a table with principal, event and/or account, got {other}"),
                ));
                Map::new()
            }
        };
        clean_table::<AllowRule>(&path, &mut table, problems);
        cleaned.push(Value::new(None, ValueKind::Table(table)));
    }
    rules.insert(
        "allow".to_owned(),
        Value::new(None, ValueKind::Array(cleaned)),
    );
}

/// Each `[notifiers.NAME]`: its name checked, its `type` read, and its keys split into the
/// routing keys and the type's own (the shape of [`RawInstance`]), each checked against its
/// struct; an unknown key is reported against both.
fn clean_notifiers(
    notifiers: &mut Map<String, Value>,
    from_env: &[String],
    problems: &mut Vec<Problem>,
) {
    let route_fields = fields_of::<RawRoute>();
    for name in sorted_keys(notifiers) {
        let path = format!("notifiers.{}", quote_key(&name));
        let value = notifiers.remove(&name).expect("key listed above");
        if !notifier_config::is_notifier_name(&name) {
            problems.push(Problem::new(
                path.as_str(),
                "a notifier's name must be lower-case letters, digits and _ (at most 64): it \
                 becomes part of environment variables, credential and metric names",
            ));
            continue;
        }
        let mut table = match value.kind {
            ValueKind::Table(table) => table,
            other => {
                problems.push(Problem::new(
                    path.as_str(),
                    format!("expected a table ([{path}] with a type), got {other}"),
                ));
                continue;
            }
        };
        for key in NOTIFIER_ENV_LIST_KEYS {
            if from_env.contains(&join(&path, key)) {
                split_env_list(&mut table, key);
            }
        }
        let types = notifier_config::TYPES.join(", ");
        let kind = table.get("type").cloned().map(|v| v.into_string());
        let (kind, own_fields) = match kind {
            Some(Ok(kind)) => match notifier_config::type_fields(&kind) {
                Some(fields) => (kind, fields),
                None => {
                    problems.push(Problem::new(
                        join(&path, "type"),
                        format!("unknown notifier type {kind:?}: use one of {types}"),
                    ));
                    continue;
                }
            },
            _ => {
                problems.push(Problem::new(
                    join(&path, "type"),
                    format!("is required: what kind of notifier this is, one of {types}"),
                ));
                continue;
            }
        };
        let known: Vec<&str> = route_fields.iter().chain(own_fields).copied().collect();
        let (mut route, mut own) = (Map::new(), Map::new());
        for (key, value) in table {
            if route_fields.contains(&key.as_str()) {
                route.insert(key, value);
            } else if own_fields.contains(&key.as_str()) {
                own.insert(key, value);
            } else {
                problems.push(unknown_key(&path, &key, &known));
            }
        }
        clean_table::<RawRoute>(&path, &mut route, problems);
        match kind.as_str() {
            "smtp" => clean_table::<RawSmtp>(&path, &mut own, problems),
            "sns" => clean_table::<RawSns>(&path, &mut own, problems),
            "slack" | "teams" => clean_table::<RawChat>(&path, &mut own, problems),
            "pagerduty" => clean_table::<RawPagerDuty>(&path, &mut own, problems),
            "webhook" => clean_table::<RawWebhook>(&path, &mut own, problems),
            other => unreachable!("type {other} has fields but no cleaner"),
        }
        let mut instance = Map::new();
        instance.insert(
            "route".to_owned(),
            Value::new(None, ValueKind::Table(route)),
        );
        instance.insert(kind, Value::new(None, ValueKind::Table(own)));
        notifiers.insert(name, Value::new(None, ValueKind::Table(instance)));
    }
}

/// A list key set from the environment arrives as one string: split it on commas.
fn split_env_list(table: &mut Map<String, Value>, key: &str) {
    let Some(value) = table.get_mut(key) else {
        return;
    };
    if let ValueKind::String(text) = &value.kind {
        let items = text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::new(None, ValueKind::String(s.to_owned())))
            .collect();
        *value = Value::new(None, ValueKind::Array(items));
    }
}

/// Checks each key of `table` against `T`'s fields: unknown keys are reported with a
/// suggestion, and each known key is deserialised alone (every field of `T` has a default), so
/// that one bad value does not hide the next. Bad keys are removed.
fn clean_table<T: DeserializeOwned>(
    path: &str,
    table: &mut Map<String, Value>,
    problems: &mut Vec<Problem>,
) {
    let known = fields_of::<T>();
    for key in sorted_keys(table) {
        if !known.contains(&key.as_str()) {
            problems.push(unknown_key(path, &key, known));
            table.remove(&key);
            continue;
        }
        let mut single = Map::new();
        single.insert(key.clone(), table[&key].clone());
        if let Err(e) = Value::new(None, ValueKind::Table(single)).try_deserialize::<T>() {
            problems.push(Problem::new(join(path, &key), describe_config_error(&e)));
            table.remove(&key);
        }
    }
}

fn sorted_keys(table: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<String> = table.keys().cloned().collect();
    keys.sort();
    keys
}

/// A serde/`config` error as a message without the crate's own key decoration (our caller
/// puts the path in front).
fn describe_config_error(error: &config::ConfigError) -> String {
    match error {
        config::ConfigError::Type {
            unexpected,
            expected,
            ..
        } => format!("expected {expected}, got {unexpected}"),
        config::ConfigError::At { error, .. } => describe_config_error(error),
        other => other.to_string(),
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut column = 1;
    for (index, c) in text.char_indices() {
        if index >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    (line, column)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::testing::*;
    use crate::config::Config;

    #[test]
    fn env_overrides_nested_keys_and_splits_lists() {
        let text = format!(
            "{MINIMAL}[poller]\npoll_interval = \"10s\"\n[smtp]\nhost = \"mail\"\nfrom = \"a@b.example\"\nto = [\"x@y.example\"]\n"
        );
        let config = load_str(
            &text,
            &[
                ("IAMWATCHD__POLLER__POLL_INTERVAL", "30s"),
                ("IAMWATCHD__POLLER__REQUESTS_PER_SECOND", "0.5"),
                ("IAMWATCHD__SMTP__TO", "a@example.com, b@example.com"),
                ("IAMWATCHD__SMTP__PORT", "2525"),
                ("UNRELATED", "ignored"),
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.poller.poll_interval, Duration::from_secs(30));
        assert_eq!(config.poller.requests_per_second, 0.5);
        let smtp = config.smtp("smtp").unwrap().clone();
        assert_eq!(smtp.to, ["a@example.com", "b@example.com"]);
        assert_eq!(smtp.port, 2525);
    }

    #[test]
    fn env_password_keeps_its_exact_text() {
        // Numeric-looking secrets must not be reinterpreted as numbers ("007" → 7).
        let text = format!(
            "{MINIMAL}[smtp]\nhost = \"mail\"\nusername = \"u\"\nfrom = \"a@b.example\"\nto = [\"x@y.example\"]\n"
        );
        let config = load_str(&text, &[("IAMWATCHD__SMTP__PASSWORD", "007")]).unwrap();
        assert_eq!(
            config
                .smtp("smtp")
                .unwrap()
                .clone()
                .auth
                .unwrap()
                .password
                .expose(),
            "007"
        );
    }

    #[test]
    fn wrong_types_are_each_reported_without_hiding_others() {
        let text = format!(
            "{MINIMAL}[poller]\npoll_interval = 10\nshort_window = \"2 fortnights\"\nrequests_per_second = \"fast\"\n[rules]\nfailed_calls = \"maybe\"\n"
        );
        let found = problems(&text);
        assert!(problem_at(&found, "poller.poll_interval")
            .message
            .contains("\"10s\""));
        assert!(problem_at(&found, "poller.short_window")
            .message
            .contains("invalid duration"));
        problem_at(&found, "poller.requests_per_second");
        let failed_calls = &problem_at(&found, "rules.failed_calls").message;
        assert!(failed_calls.contains("`report`"), "{failed_calls}");
        assert_eq!(found.len(), 4, "{found:#?}");
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        let text = format!("region = \"us-east-1\"\n{MINIMAL}[Log]\nLevel = \"info\"\n[poler]\nx = 1\n[store]\nretension = \"1d\"\ncolour = \"blue\"\n");
        let found = problems(&text);
        assert_eq!(
            problem_at(&found, "store.retension").message,
            "unknown key; did you mean `store.retention`?"
        );
        assert!(problem_at(&found, "poler").message.contains("`poller`"));
        // Keys are case-sensitive (as in TOML); the suggestion shows the right spelling.
        assert!(problem_at(&found, "Log").message.contains("`log`"));
        assert_eq!(
            problem_at(&found, "region").message,
            "unknown key; did you mean `aws.region`?"
        );
        let colour = &problem_at(&found, "store.colour").message;
        assert!(colour.contains("state_directory, retention"), "{colour}");
    }

    #[test]
    fn an_unknown_key_that_is_empty_or_not_bare_is_named_quoted_not_as_an_empty_path() {
        let found = problems(&format!(
            "[\"\"]\n[notifiers.\"a.b\"]\ntype = \"sns\"\n{MINIMAL}\"x\\u202Ey\" = 1\n"
        ));
        let shown: Vec<String> = found.iter().map(|p| p.to_string()).collect();
        assert!(
            shown.iter().any(|p| p.starts_with("\"\": unknown section")),
            "{shown:#?}"
        );
        problem_at(&found, "notifiers.\"a.b\"");
        problem_at(&found, "sns.\"x\\u202Ey\"");
        assert!(found.iter().all(|p| !p.path.is_empty()), "{found:#?}");
    }

    #[test]
    fn unknown_key_from_the_environment_is_reported() {
        let found = match load_str(MINIMAL, &[("IAMWATCHD__POLLER__POLL_INTERVALL", "5s")]) {
            Err(e) => e.problems().to_vec(),
            Ok(_) => panic!("misspelt variable accepted"),
        };
        assert!(problem_at(&found, "poller.poll_intervall")
            .message
            .contains("poll_interval"));
    }

    #[test]
    fn syntax_error_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "broken.toml",
            "[aws]\nregion = \"us-east-1\"\nstack_name = \n",
        );
        match Config::load(&path, env(&[])) {
            Err(ConfigErrors::Syntax {
                line,
                column,
                path: p,
                ..
            }) => {
                assert_eq!((line, column), (3, 14));
                assert_eq!(p, path);
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
        let shown = Config::load(&path, env(&[])).unwrap_err().to_string();
        assert!(
            shown.starts_with(&format!("{}:3:14: TOML syntax error", path.display())),
            "{shown}"
        );
    }

    #[test]
    fn inline_password_is_refused_even_with_env_set() {
        let text = format!("{MINIMAL}[smtp]\nhost = \"mail\"\nusername = \"u\"\npassword = \"hunter2\"\nfrom = \"a@b.example\"\nto = [\"x@y.example\"]\n");
        for env_pairs in [&[][..], &[("IAMWATCHD__SMTP__PASSWORD", "other")][..]] {
            let e = load_str(&text, env_pairs).unwrap_err();
            let found = e.problems();
            let message = &problem_at(found, "smtp.password").message;
            assert!(message.contains(&PASSWORD.env_var()) && message.contains("password_file"));
            assert!(!e.to_string().contains("hunter2"));
        }
    }
}
