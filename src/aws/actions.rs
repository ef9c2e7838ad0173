//! The registry of every module's AWS calls, and the tests that keep the shipped least-privilege
//! policies (`deploy/iamwatchd-policy.json`, `deploy/iamwatchd-deploy-policy.json`) exactly
//! equal to them.
//!
//! Every file that calls AWS declares `#[cfg(test)] pub(crate) const ACTIONS: &[&str]` beside
//! its calls (it exists for this check only).
//! The registry below names each of those constants by its Rust path (the compiler checks it)
//! with the policy that must allow it; the source scanner finds each file's SDK calls and its
//! `ACTIONS` list in the file's own text. Nothing here names a file, so moving code between
//! files never breaks the check, and a file that starts calling AWS without declaring its
//! `ACTIONS` (or declares a list the registry does not know) fails it.
#![cfg(test)]

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

/// Which shipped policy must allow a module's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShippedPolicy {
    /// `deploy/iamwatchd-policy.json`: `iamwatchd run` and `iamwatchd check`.
    Daemon,
    /// `deploy/iamwatchd-deploy-policy.json`: `iamwatchd deploy`.
    Deploy,
}

/// Every module that calls AWS: its `ACTIONS` and the policy that must allow them.
fn registry() -> Vec<(&'static [&'static str], ShippedPolicy)> {
    use ShippedPolicy::{Daemon, Deploy};
    vec![
        (crate::accounts::credentials::ACTIONS, Daemon),
        (crate::accounts::discovery::ACTIONS, Daemon),
        (crate::accounts::estate::ACTIONS, Daemon),
        (crate::analysis::cross_check::ACTIONS, Daemon),
        (crate::analysis::lookup::ACTIONS, Daemon),
        (crate::analysis::seed::ACTIONS, Daemon),
        (crate::check::ACTIONS, Daemon),
        (crate::check::stack::ACTIONS, Daemon),
        (crate::check::encryption::ACTIONS, Daemon),
        (crate::stack::deploy::ACTIONS, Deploy),
        (crate::stack::deploy::change_set::ACTIONS, Deploy),
        (crate::stack::deploy::follow::ACTIONS, Deploy),
        (crate::stack::deploy::member_roles::ACTIONS, Deploy),
        (crate::stack::deploy::organization::ACTIONS, Deploy),
        (crate::notify::sns::ACTIONS, Daemon),
        (crate::source::alarm::ACTIONS, Daemon),
        (crate::source::cloudtrail::lookup::ACTIONS, Daemon),
        (crate::source::sqs::ACTIONS, Daemon),
        (crate::daemon::ours::ACTIONS, Daemon),
    ]
}

/// The actions a service calls with the caller's permissions while serving one of the calls
/// above (SQS and SNS use the stack's KMS key for the daemon). The policies must allow them too.
fn implied() -> Vec<(&'static [&'static str], ShippedPolicy)> {
    use ShippedPolicy::Daemon;
    vec![
        (crate::source::sqs::KMS_ACTIONS, Daemon),
        (crate::notify::sns::KMS_ACTIONS, Daemon),
    ]
}

fn policy_actions(file: &str) -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file);
    let policy: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut actions = BTreeSet::new();
    for statement in policy["Statement"].as_array().expect("Statement list") {
        assert_eq!(statement["Effect"], "Allow", "{statement}");
        assert!(statement["Resource"].is_string(), "{statement}");
        for action in statement["Action"].as_array().expect("Action list") {
            let action = action.as_str().unwrap();
            assert!(!action.contains('*'), "no wildcard actions: {action}");
            assert!(
                actions.insert(action.to_owned()),
                "{action} twice in {file}"
            );
        }
    }
    actions
}

/// `lookup_events` → `LookupEvents`.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn is_ident(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The SDK operations called in `code`: the fluent builder's entry point (the chain's
/// zero-argument method call nearest before each `.send()`; setters take arguments),
/// following a builder held in a `let` binding back to where it was made.
fn sdk_operations(code: &str) -> BTreeSet<String> {
    let mut operations = BTreeSet::new();
    for (at, _) in code.match_indices(".send()") {
        if let Some(op) = operation_before(code, at) {
            operations.insert(op);
        } else {
            panic!(
                "cannot tell which operation the .send() at byte {at} calls: {:?}",
                &code[at.saturating_sub(80)..at]
            );
        }
    }
    operations
}

fn operation_before(code: &str, mut pos: usize) -> Option<String> {
    let bytes = code.as_bytes();
    loop {
        while pos > 0 && bytes[pos - 1].is_ascii_whitespace() {
            pos -= 1;
        }
        if pos == 0 {
            return None;
        }
        if bytes[pos - 1] == b')' {
            let close = pos - 1;
            let mut depth = 0usize;
            let mut open = close;
            loop {
                match bytes[open] {
                    b')' => depth += 1,
                    b'(' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                open = open.checked_sub(1)?;
            }
            let mut start = open;
            while start > 0 && is_ident(bytes[start - 1]) {
                start -= 1;
            }
            if start == 0 || bytes[start - 1] != b'.' {
                return None;
            }
            // `.into_paginator()` and `.customize()` wrap the operation's builder: the
            // operation comes before.
            let wrapper = matches!(&code[start..open], "into_paginator" | "customize");
            if code[open + 1..close].trim().is_empty() && !wrapper {
                return Some(code[start..open].to_owned());
            }
            pos = start - 1;
        } else if is_ident(bytes[pos - 1]) {
            let end = pos;
            let mut start = end;
            while start > 0 && is_ident(bytes[start - 1]) {
                start -= 1;
            }
            if start > 0 && bytes[start - 1] == b'.' {
                // A field (`self.client`): the chain goes on before it.
                pos = start - 1;
                continue;
            }
            // A builder in a variable: continue from the end of its `let`.
            let name = &code[start..end];
            let before = &code[..start];
            let binding = before
                .rfind(&format!("let mut {name} ="))
                .or_else(|| before.rfind(&format!("let {name} =")))?;
            pos = binding + code[binding..start].find(';')?;
        } else {
            return None;
        }
    }
}

/// The `ACTIONS` list a file declares in its own text (the string literals of the
/// `const ACTIONS: &[&str] = &[…];` item), sorted; `None` when it declares none.
fn declared_actions(code: &str) -> Option<Vec<String>> {
    let start = code.find("const ACTIONS: &[&str] = &[")?;
    let list = &code[start..];
    let list = &list[list.find("&[")? + 2..list.find("];")?];
    let mut actions: Vec<String> = list
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    actions.sort();
    Some(actions)
}

/// The non-test code of every `.rs` file under `dir`, with the file's path for messages.
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            if text.contains("\n#![cfg(test)]\n") {
                continue; // a test-only file, like this one
            }
            let code = match text.find("#[cfg(test)]\nmod ") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            out.push((path.display().to_string(), code));
        }
    }
}

#[test]
fn the_scanner_finds_chained_and_bound_builders() {
    let code = r#"
        let x = self.client
            .publish()
            .subject(message.sns_subject())
            .send()
            .await;
        let mut request = client.lookup_events().max_results(PAGE_SIZE);
        match request.send().await {}
        sts.get_caller_identity().send().await;
        let listing = org.list_accounts().max_results(20);
        listing.customize().config_override(member.clone()).send().await;
    "#;
    assert_eq!(
        sdk_operations(code),
        BTreeSet::from([
            "publish".into(),
            "lookup_events".into(),
            "get_caller_identity".into(),
            "list_accounts".into()
        ])
    );
    assert_eq!(
        pascal("list_subscriptions_by_topic"),
        "ListSubscriptionsByTopic"
    );
    assert_eq!(
        declared_actions(
            "pub(crate) const ACTIONS: &[&str] = &[\n    \"sns:Publish\",\n    \"sns:A\",\n];"
        ),
        Some(vec!["sns:A".to_owned(), "sns:Publish".to_owned()])
    );
}

/// A new SDK call without its action in the file's `ACTIONS` (or a file calling AWS without
/// `ACTIONS`) fails here, and so does an action nobody calls any more, and a file's `ACTIONS`
/// that the registry does not name.
#[test]
fn every_sdk_call_is_in_its_modules_actions_and_every_action_is_called() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut declared = Vec::new();
    for (file, code) in &files {
        if code.contains("reqwest::") && !code.contains("aws_sdk_") {
            // The HTTP notifiers' client (notify/http): its `.send()` posts to a webhook.
            continue;
        }
        let called: BTreeSet<String> = sdk_operations(code).iter().map(|op| pascal(op)).collect();
        let Some(actions) = declared_actions(code) else {
            assert!(
                called.is_empty(),
                "{file} calls AWS ({called:?}): give it `#[cfg(test)] pub(crate) const ACTIONS`, name it in \
                 src/aws/actions.rs's registry and allow it in deploy/*.json"
            );
            continue;
        };
        // Case-insensitive: the SDK's snake case loses acronyms
        // (list_aws_service_access_for_organization is ListAWSServiceAccessForOrganization).
        let called: BTreeSet<String> = called.iter().map(|op| op.to_ascii_lowercase()).collect();
        let listed: BTreeSet<String> = actions
            .iter()
            .map(|a| {
                a.split_once(':')
                    .expect("service:Action")
                    .1
                    .to_ascii_lowercase()
            })
            .collect();
        assert_eq!(called, listed, "{file}: SDK calls vs its ACTIONS");
        declared.push(actions);
    }
    let mut registered: Vec<Vec<String>> = registry()
        .into_iter()
        .map(|(actions, _)| {
            let mut actions: Vec<String> = actions.iter().map(|a| (*a).to_owned()).collect();
            actions.sort();
            actions
        })
        .collect();
    declared.sort();
    registered.sort();
    assert_eq!(
        declared, registered,
        "every file's ACTIONS is named exactly once in the registry"
    );
}

#[test]
fn the_daemon_policy_allows_exactly_what_run_and_check_call() {
    let wanted: BTreeSet<String> = registry()
        .into_iter()
        .chain(implied())
        .filter(|(_, policy)| *policy == ShippedPolicy::Daemon)
        .flat_map(|(actions, _)| actions.iter().map(|a| (*a).to_owned()))
        .collect();
    assert_eq!(policy_actions("iamwatchd-policy.json"), wanted);
}

/// What CloudTrail does with the caller's permissions when `deploy --organization` makes the
/// trail an organization trail: it creates its service-linked role (AWSServiceRoleForCloudTrail)
/// ("Prepare for creating a trail for your organization"); trusted access it needs enabled
/// already (deploy checks, and does not enable it itself).
const DEPLOY_IMPLIED: &[&str] = &["iam:CreateServiceLinkedRole"];

/// `deploy` needs its own calls plus, because CloudFormation acts with the caller's
/// permissions, the services of every resource type in the template (and no others).
#[test]
fn the_deploy_policy_covers_deploy_and_every_resource_type() {
    let allowed = policy_actions("iamwatchd-deploy-policy.json");
    let mut called_services = BTreeSet::new();
    for (actions, _) in registry()
        .into_iter()
        .filter(|(_, policy)| *policy == ShippedPolicy::Deploy)
    {
        for action in actions.iter().chain(DEPLOY_IMPLIED) {
            assert!(allowed.contains(*action), "deploy calls {action}");
            called_services.insert(action.split_once(':').unwrap().0.to_owned());
        }
    }
    // Every action of a service deploy calls itself (not through CloudFormation) is one it
    // calls: no more.
    for action in &allowed {
        let service = action.split_once(':').unwrap().0;
        if service == "organizations" || service == "sts" {
            let declared = registry()
                .into_iter()
                .filter(|(_, policy)| *policy == ShippedPolicy::Deploy)
                .any(|(actions, _)| actions.contains(&action.as_str()));
            assert!(
                declared || DEPLOY_IMPLIED.contains(&action.as_str()),
                "{action} is allowed but deploy never calls it"
            );
        }
    }
    let template = crate::stack::template::template();
    let mut services: BTreeSet<String> = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| {
            let kind = r["Type"].as_str().unwrap();
            kind.split("::").nth(1).unwrap().to_ascii_lowercase()
        })
        .collect();
    services.insert("cloudformation".into());
    services.extend(called_services);
    let used: BTreeSet<String> = allowed
        .iter()
        .map(|a| a.split_once(':').unwrap().0.to_owned())
        .collect();
    assert_eq!(used, services);
}
