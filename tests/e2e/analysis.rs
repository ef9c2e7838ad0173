//! The analysis of policy changes end to end: the daemon against the emulator, the managed
//! policies read through GetPolicy/GetPolicyVersion, the inline and trust policies compared
//! with the snapshots seeded from GetAccountAuthorizationDetails, the result in the SNS
//! message's text.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_iam::Client as Iam;

use crate::daemon::{wait_until, Daemon, DEADLINE};
use crate::emulator::Emulator;

const TRUST_OWN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
const TRUST_ANYONE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}"#;
const READ_LOGS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::logs/*"}]}"#;
const PASS_AND_RUN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:PassRole","ec2:RunInstances"],"Resource":"*"}]}"#;
const EVERYTHING: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// Each change its own message: the tests' changes are root's, in one burst window, and since
/// root use is a finding like any other a digest would carry most of them (tests/e2e/digest.rs
/// covers digests).
const NO_DIGESTS: &str = "[digest]\nenabled = false\n";

/// The SNS messages' texts by event name, until `names` all arrived.
async fn messages(
    emulator: &Emulator,
    queue_url: &str,
    names: &[&str],
) -> HashMap<String, Vec<String>> {
    let mut by_name: HashMap<String, Vec<String>> = HashMap::new();
    let started = Instant::now();
    while !names.iter().all(|n| by_name.contains_key(*n)) {
        assert!(
            started.elapsed() < DEADLINE * 2,
            "only {:?} arrived",
            by_name.keys()
        );
        if let Some(body) = emulator.receive_one(queue_url, true).await {
            let name = names
                .iter()
                .find(|n| {
                    body.lines()
                        .nth(2)
                        .is_some_and(|headline| headline.contains(&format!(" {n} ")))
                })
                .map(|n| (*n).to_owned())
                .unwrap_or_else(|| "other".to_owned());
            by_name.entry(name).or_default().push(body);
        }
    }
    by_name
}

fn one<'a>(by_name: &'a HashMap<String, Vec<String>>, name: &str) -> &'a str {
    let found = &by_name[name];
    assert_eq!(found.len(), 1, "{name}: {found:#?}");
    &found[0]
}

fn assert_has(text: &str, expected: &[&str]) {
    for e in expected {
        assert!(text.contains(e), "{e:?} not in:\n{text}");
    }
}

#[tokio::test]
async fn each_policy_change_says_what_it_grants_against_the_seeded_or_looked_up_previous_version() {
    let emulator = Emulator::start();
    let (topic_arn, queue_url) = emulator.topic_with_queue("alerts", true).await;
    let iam = Iam::new(&emulator.sdk_config().await);
    // Before the daemon's first start: only the seed knows these documents.
    iam.create_role()
        .role_name("app")
        .assume_role_policy_document(TRUST_OWN)
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("app")
        .policy_name("base")
        .policy_document(READ_LOGS)
        .send()
        .await
        .unwrap();
    let policy = iam
        .create_policy()
        .policy_name("deploy")
        .policy_document(READ_LOGS)
        .send()
        .await
        .unwrap();
    let policy_arn = policy.policy().unwrap().arn().unwrap().to_owned();
    iam.create_user().user_name("bob").send().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &emulator,
        dir.path(),
        &format!("[sns]\ntopic_arn = \"{topic_arn}\"\nregion = \"us-east-1\"\n{NO_DIGESTS}"),
    );
    wait_until("the seed", || {
        daemon
            .log()
            .contains("seeded the policy snapshots")
            .then_some(())
    })
    .await;

    // An inline policy whose previous version came from the seed.
    iam.put_role_policy()
        .role_name("app")
        .policy_name("base")
        .policy_document(PASS_AND_RUN)
        .send()
        .await
        .unwrap();
    // A managed policy's new default version, then the switch back to v1.
    iam.create_policy_version()
        .policy_arn(&policy_arn)
        .policy_document(EVERYTHING)
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    iam.set_default_policy_version()
        .policy_arn(&policy_arn)
        .version_id("v1")
        .send()
        .await
        .unwrap();
    // A document by reference, read with GetPolicy + GetPolicyVersion.
    iam.attach_user_policy()
        .user_name("bob")
        .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
        .send()
        .await
        .unwrap();
    // A trust policy, previous version from the seed.
    iam.update_assume_role_policy()
        .role_name("app")
        .policy_document(TRUST_ANYONE)
        .send()
        .await
        .unwrap();
    // A removal, previous version from the event above.
    iam.delete_role_policy()
        .role_name("app")
        .policy_name("base")
        .send()
        .await
        .unwrap();
    iam.tag_role()
        .role_name("app")
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("k")
                .value("v")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let names = [
        "PutRolePolicy",
        "CreatePolicyVersion",
        "SetDefaultPolicyVersion",
        "AttachUserPolicy",
        "UpdateAssumeRolePolicy",
        "DeleteRolePolicy",
        "TagRole",
    ];
    let by_name = messages(&emulator, &queue_url, &names).await;

    // Both PutRolePolicy calls (before and after the start) are reported; the later one is
    // compared with the seeded document.
    let put = by_name["PutRolePolicy"]
        .iter()
        .find(|t| t.contains("ec2:RunInstances"))
        .expect("the second PutRolePolicy");
    assert_has(
        put,
        &[
            "CRITICAL privilege-escalation: PutRolePolicy",
            "+ Allow ec2:RunInstances on *",
            "+ Allow iam:PassRole on *",
            "- Allow s3:GetObject on arn:aws:s3:::logs/*",
            "Rhino #3",
        ],
    );
    assert!(
        put.starts_with(
            "root set the inline policy base on role app: app can now give itself more permissions"
        ),
        "{put}"
    );

    let version = one(&by_name, "CreatePolicyVersion");
    assert_has(
        version,
        &[
            "CRITICAL admin-equivalent:",
            "+ Allow * on *",
            "- Allow s3:GetObject on arn:aws:s3:::logs/*",
        ],
    );
    assert!(!version.contains("previous version unknown"), "{version}");

    let switch = one(&by_name, "SetDefaultPolicyVersion");
    assert_has(
        switch,
        &[
            "- Allow * on *",
            "+ Allow s3:GetObject on arn:aws:s3:::logs/*",
            "root made version v1 the default of deploy",
        ],
    );

    let attach = one(&by_name, "AttachUserPolicy");
    assert_has(
        attach,
        &[
            "CRITICAL admin-equivalent:",
            "root attached AdministratorAccess to user bob: bob can now do anything",
            "+ Allow * on *",
        ],
    );

    let trust = one(&by_name, "UpdateAssumeRolePolicy");
    assert_has(
        trust,
        &[
            "trust-widened",
            "+ Allow anyone (*) to sts:AssumeRole",
            "- Allow AWS arn:aws:iam::123456789012:root to sts:AssumeRole",
        ],
    );

    let delete = one(&by_name, "DeleteRolePolicy");
    assert_has(
        delete,
        &[
            "- Allow ec2:RunInstances on *",
            "- Allow iam:PassRole on *",
            "only removes permissions",
        ],
    );

    let tag = one(&by_name, "TagRole");
    assert!(tag.starts_with("root added a tag to role app"), "{tag}");
    drop(daemon);
}

#[tokio::test]
async fn boundaries_detachments_group_policies_and_new_policies_are_analysed() {
    let emulator = Emulator::start();
    let (topic_arn, queue_url) = emulator.topic_with_queue("alerts", true).await;
    let iam = Iam::new(&emulator.sdk_config().await);
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(
        &emulator,
        dir.path(),
        &format!("[sns]\ntopic_arn = \"{topic_arn}\"\nregion = \"us-east-1\"\n{NO_DIGESTS}"),
    );
    wait_until("the seed", || {
        daemon
            .log()
            .contains("seeded the policy snapshots")
            .then_some(())
    })
    .await;
    iam.create_role()
        .role_name("app")
        .assume_role_policy_document(TRUST_OWN)
        .send()
        .await
        .unwrap();
    let created = iam
        .create_policy()
        .policy_name("cap")
        .policy_document(READ_LOGS)
        .send()
        .await
        .unwrap();
    let cap = created.policy().unwrap().arn().unwrap().to_owned();
    iam.put_role_permissions_boundary()
        .role_name("app")
        .permissions_boundary(&cap)
        .send()
        .await
        .unwrap();
    iam.delete_role_permissions_boundary()
        .role_name("app")
        .send()
        .await
        .unwrap();
    iam.attach_role_policy()
        .role_name("app")
        .policy_arn(&cap)
        .send()
        .await
        .unwrap();
    iam.detach_role_policy()
        .role_name("app")
        .policy_arn(&cap)
        .send()
        .await
        .unwrap();
    iam.create_group().group_name("ops").send().await.unwrap();
    iam.put_group_policy()
        .group_name("ops")
        .policy_name("admin")
        .policy_document(EVERYTHING)
        .send()
        .await
        .unwrap();

    let names = [
        "CreatePolicy",
        "PutRolePermissionsBoundary",
        "DeleteRolePermissionsBoundary",
        "DetachRolePolicy",
        "PutGroupPolicy",
    ];
    let by_name = messages(&emulator, &queue_url, &names).await;
    assert_has(
        one(&by_name, "CreatePolicy"),
        &[
            "+ Allow s3:GetObject on arn:aws:s3:::logs/*",
            "grants nothing until it is attached",
        ],
    );
    assert_has(
        one(&by_name, "PutRolePermissionsBoundary"),
        &[
            "root set the permissions boundary cap on role app",
            "+ Allow s3:GetObject",
            "caps what the entity's policies can grant",
        ],
    );
    assert_has(
        one(&by_name, "DeleteRolePermissionsBoundary"),
        &[
            "boundary-removed",
            "- Allow s3:GetObject on arn:aws:s3:::logs/*",
            "app's policies now apply without a cap",
        ],
    );
    assert_has(
        one(&by_name, "DetachRolePolicy"),
        &[
            "- Allow s3:GetObject on arn:aws:s3:::logs/*",
            "only removes permissions",
        ],
    );
    assert_has(
        one(&by_name, "PutGroupPolicy"),
        &[
            "CRITICAL admin-equivalent: PutGroupPolicy",
            "ops can now do anything",
            "previous version unknown",
        ],
    );
    // Off by default: AWS bills each Access Analyzer call.
    assert_eq!(emulator.counter("access_analyzer_calls"), 0);
    drop(daemon);
}

/// The accepted posts to `path` whose body carries Access Analyzer's answer.
fn cross_checked(emulator: &Emulator, path: &str) -> Vec<serde_json::Value> {
    emulator
        .http_requests()
        .into_iter()
        .filter(|r| {
            r["path"].as_str().is_some_and(|p| p.starts_with(path))
                && r["status"].as_u64().is_some_and(|s| s < 300)
                && r["body"].as_str().is_some_and(|b| {
                    b.contains("IAM Access Analyzer") || b.contains("access_analyzer")
                })
        })
        .collect()
}

#[tokio::test]
async fn access_analyzer_answers_beside_our_verdicts_in_every_notifier_and_only_when_asked() {
    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let emulator = Emulator::start();
    let sink = emulator.http_url.clone().expect("HTTP sink");
    emulator.http_secret("/webhook/soar", SECRET);
    let (topic_arn, queue_url) = emulator.topic_with_queue("alerts", true).await;
    let iam = Iam::new(&emulator.sdk_config().await);
    let dir = tempfile::tempdir().unwrap();
    let config = crate::daemon::write_config(
        dir.path(),
        &emulator,
        &format!(
            r#"
[sns]
topic_arn = "{topic_arn}"
region = "us-east-1"

[analysis]
access_analyzer = true

[digest]
enabled = false

[notifiers.chat]
type = "slack"

[notifiers.pager]
type = "pagerduty"
events_url = "{sink}/pagerduty/enqueue"

[notifiers.soar]
type = "webhook"
url = "{sink}/webhook/soar"
"#
        ),
    );
    let slack = format!("{sink}/slack/chat");
    let env = [
        ("IAMWATCHD__NOTIFIERS__CHAT__WEBHOOK_URL", slack.as_str()),
        (
            "IAMWATCHD__NOTIFIERS__PAGER__ROUTING_KEY",
            "abcdefghijklmnopqrstuvwxyz012345",
        ),
        ("IAMWATCHD__NOTIFIERS__SOAR__SECRET", SECRET),
    ];
    let daemon = Daemon::spawn_with_env(&emulator, dir.path(), &config, &env);
    wait_until("the seed", || {
        daemon
            .log()
            .contains("seeded the policy snapshots")
            .then_some(())
    })
    .await;
    // A new trust policy (compared with none), an inline policy first seen by the daemon
    // (previous version unknown: the escalation actions are asked about), the same inline
    // policy widened (compared with the first), the trust policy set to itself (nothing new).
    iam.create_role()
        .role_name("app")
        .assume_role_policy_document(TRUST_OWN)
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("app")
        .policy_name("base")
        .policy_document(READ_LOGS)
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name("app")
        .policy_name("base")
        .policy_document(PASS_AND_RUN)
        .send()
        .await
        .unwrap();
    iam.update_assume_role_policy()
        .role_name("app")
        .policy_document(TRUST_OWN)
        .send()
        .await
        .unwrap();

    let names = ["CreateRole", "PutRolePolicy", "UpdateAssumeRolePolicy"];
    let mut by_name = messages(&emulator, &queue_url, &names).await;
    while by_name["PutRolePolicy"].len() < 2 {
        let more = messages(&emulator, &queue_url, &["PutRolePolicy"]).await;
        for (name, texts) in more {
            by_name.entry(name).or_default().extend(texts);
        }
    }
    assert_has(
        one(&by_name, "CreateRole"),
        &["IAM Access Analyzer CheckNoNewAccess: FAIL"],
    );
    let puts = &by_name["PutRolePolicy"];
    let put_first = puts
        .iter()
        .find(|t| !t.contains("ec2:RunInstances"))
        .expect("the first PutRolePolicy");
    assert_has(
        put_first,
        &[
            "previous version unknown",
            "IAM Access Analyzer CheckAccessNotGranted: PASS",
        ],
    );
    let widened = puts
        .iter()
        .find(|t| t.contains("ec2:RunInstances"))
        .expect("the second PutRolePolicy");
    // Our verdict stands on its own; Access Analyzer's answer is beside it.
    assert_has(
        widened,
        &[
            "CRITICAL privilege-escalation: PutRolePolicy",
            "IAM Access Analyzer CheckNoNewAccess: FAIL",
        ],
    );
    assert_has(
        one(&by_name, "UpdateAssumeRolePolicy"),
        &["IAM Access Analyzer CheckNoNewAccess: PASS"],
    );

    // Every notifier carries it, and every payload passes the platform's documented rules.
    let webhook = wait_until("four cross-checked posts on each HTTP notifier", || {
        let posts = |path| cross_checked(&emulator, path);
        (posts("/slack/chat").len() == 4 && posts("/pagerduty").len() == 4)
            .then_some(())
            .and_then(|_| Some(posts("/webhook/soar")).filter(|w| w.len() == 4))
    })
    .await;
    for request in emulator.http_requests() {
        assert_eq!(request["problems"], serde_json::json!([]), "{request:#}");
    }
    let mut results: Vec<String> = webhook
        .iter()
        .map(|r| {
            let body: serde_json::Value =
                serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
            let check = &body["data"]["analysis"]["access_analyzer"];
            format!(
                "{} {}",
                check["check"].as_str().unwrap(),
                check["result"].as_str().unwrap()
            )
        })
        .collect();
    results.sort();
    assert_eq!(
        results,
        [
            "CheckAccessNotGranted PASS",
            "CheckNoNewAccess FAIL",
            "CheckNoNewAccess FAIL",
            "CheckNoNewAccess PASS"
        ]
    );
    // One billed call per analysed change, no more.
    assert_eq!(emulator.counter("access_analyzer_calls"), 4);
    drop(daemon);
}
