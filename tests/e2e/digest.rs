//! Burst digests, the real binary against the emulator: a role's 200-change apply is three
//! messages, the two CRITICAL ones and one digest per notifier (mail with the whole list as
//! CSV, Slack), exactly so across a kill -9 in the middle, while another principal's change
//! is its own message.

use aws_sdk_iam::types::Tag;
use aws_sdk_iam::Client as Iam;

use crate::daemon::{header, mails_about, sent_in_store, wait_until, write_config, Daemon};
use crate::emulator::Emulator;

/// The role `ci`, assumed: an IAM client acting as its session `apply-1`.
async fn ci_session(emulator: &Emulator, root: &Iam) -> Iam {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
    let role = root
        .create_role()
        .role_name("ci")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    let sts = aws_sdk_sts::Client::new(&emulator.sdk_config().await);
    let assumed = sts
        .assume_role()
        .role_arn(role.role().unwrap().arn())
        .role_session_name("apply-1")
        .send()
        .await
        .unwrap();
    let key = assumed.credentials().unwrap().access_key_id().to_owned();
    Iam::new(&emulator.sdk_config_as(&key, "us-east-1").await)
}

async fn tag(ci: &Iam, from: usize, to: usize) {
    for i in from..to {
        ci.tag_role()
            .role_name("app")
            .tags(
                Tag::builder()
                    .key(format!("k{i}"))
                    .value("v")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
}

/// The subjects of the mails about `needle`.
fn subjects(emulator: &Emulator, needle: &str) -> Vec<String> {
    mails_about(emulator, needle)
        .iter()
        .filter_map(|mail| header(mail, "Subject"))
        .collect()
}

/// The Slack headers of the accepted posts.
fn slack_titles(emulator: &Emulator) -> Vec<String> {
    emulator
        .http_requests()
        .iter()
        .filter(|r| r["path"] == "/slack/ops" && r["status"] == 200)
        .map(|r| {
            let body: serde_json::Value =
                serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
            body["blocks"][0]["text"]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_200_change_apply_is_three_messages_two_critical_and_one_digest_across_a_kill() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let sink = emulator.http_url.clone().expect("HTTP sink");
    // A window long enough that the kill -9 and restart, on a loaded machine, stay inside the
    // burst (the burst is what the test is about).
    let extra = "[digest]\nwindow = \"30s\"\nmax_delay = \"3m\"\n\
                 [notifiers.ops]\ntype = \"slack\"\n";
    let config = write_config(dir.path(), &emulator, extra);
    let url = format!("{sink}/slack/ops");
    let env = [("IAMWATCHD__NOTIFIERS__OPS__WEBHOOK_URL", url.as_str())];
    let root = Iam::new(&emulator.sdk_config().await);
    root.create_role()
        .role_name("app")
        .assume_role_policy_document("{}")
        .send()
        .await
        .unwrap();
    let ci = ci_session(&emulator, &root).await;

    let mut daemon = Daemon::spawn_with_env(&emulator, dir.path(), &config, &env);
    daemon.ready().await;
    // Another principal's change, in the middle of nothing: its own message.
    root.create_group()
        .group_name("auditors")
        .send()
        .await
        .unwrap();
    // The first half of the apply, with one CRITICAL change in it.
    tag(&ci, 0, 99).await;
    ci.attach_role_policy()
        .role_name("app")
        .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
        .send()
        .await
        .unwrap();
    wait_until("the first three changes and the CRITICAL one", || {
        let tags = subjects(&emulator, "TagRole")
            .iter()
            .filter(|s| s.contains("TagRole"))
            .count();
        (tags == 3 && subjects(&emulator, "AttachRolePolicy").len() == 1).then_some(())
    })
    .await;
    // The kill comes once the store has recorded every message the sinks took: this test is
    // about the burst across a crash, not about the crash window of one send.
    wait_until("the store to record every message the sinks took", || {
        (sent_in_store(dir.path(), "smtp") == subjects(&emulator, "iamwatchd").len()
            && sent_in_store(dir.path(), "ops") == slack_titles(&emulator).len())
        .then_some(())
    })
    .await;
    daemon.kill();

    let mut daemon = Daemon::spawn_with_env(&emulator, dir.path(), &config, &env);
    tag(&ci, 99, 198).await;
    ci.update_assume_role_policy()
        .role_name("app")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let digest = wait_until("one digest mail", || {
        let mails = mails_about(&emulator, "DIGEST");
        (mails.len() == 1).then(|| mails[0].clone())
    })
    .await;
    wait_until("the digest on Slack", || {
        slack_titles(&emulator)
            .iter()
            .any(|t| t.contains("DIGEST"))
            .then_some(())
    })
    .await;
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.log());

    let subject = header(&digest, "Subject").unwrap();
    assert!(
        subject.contains("DIGEST 195 changes by role/ci"),
        "{subject}"
    );
    assert!(
        digest.contains("2 changes in this burst were sent separately"),
        "{digest}"
    );
    assert!(digest.contains("--principal arn:aws:iam::123456789012:role/ci"));
    let csv_rows = digest.matches("\"TagRole\"").count();
    assert!(
        csv_rows >= 195,
        "the CSV lists every held change: {csv_rows}"
    );
    assert!(digest.contains("Content-Type: text/csv"), "{digest}");

    for titles in [subjects(&emulator, "iamwatchd"), slack_titles(&emulator)] {
        let count = |needle: &str| titles.iter().filter(|t| t.contains(needle)).count();
        let by_ci = titles
            .iter()
            .filter(|t| t.contains("by ci/apply-1") || t.contains("role/ci"))
            .count();
        assert_eq!(count("DIGEST"), 1, "{titles:#?}");
        assert_eq!(count("TagRole"), 3, "{titles:#?}");
        assert_eq!(count("AttachRolePolicy"), 1, "{titles:#?}");
        assert_eq!(count("UpdateAssumeRolePolicy"), 1, "{titles:#?}");
        assert_eq!(count("CreateGroup"), 1, "{titles:#?}");
        assert_eq!(by_ci, 6, "3 + 2 + 1 for the role: {titles:#?}");
    }
}
