//! One daemon for a whole organization: member accounts discovered through Organizations, each
//! read through its own member role and event history, each change reported once with the
//! account's name; an account without the member role is one loud message while every other
//! account goes on; an account created while the daemon runs is picked up at the next refresh.

use aws_config::SdkConfig;
use aws_sdk_iam::Client as Iam;

use crate::daemon::{mails_about, wait_until, Daemon};
use crate::emulator::Emulator;

/// The daemon's configuration: discovery every 10 s, each change its own message.
const ORGANIZATION: &str =
    "[digest]\nenabled = false\n[accounts.organizations]\nenabled = true\nrefresh = \"10s\"\n";

/// The member role the daemon assumes (`accounts.member_role`'s default).
const MEMBER_ROLE: &str = "iamwatchd-member";

/// A new member account named `name` (CreateAccount), and an SDK configuration acting in it
/// through the role Organizations created there.
pub(crate) async fn member(emulator: &Emulator, name: &str) -> (String, SdkConfig) {
    let org = aws_sdk_organizations::Client::new(&emulator.sdk_config().await);
    let status = org
        .create_account()
        .account_name(name)
        .email(format!("{name}@example.com"))
        .send()
        .await
        .unwrap();
    let id = status
        .create_account_status()
        .and_then(|s| s.account_id())
        .expect("the new account's ID")
        .to_owned();
    let admin = as_role(emulator, &id, "OrganizationAccountAccessRole").await;
    (id, admin)
}

/// An SDK configuration acting in `account` through `role`.
pub(crate) async fn as_role(emulator: &Emulator, account: &str, role: &str) -> SdkConfig {
    let sts = aws_sdk_sts::Client::new(&emulator.sdk_config().await);
    let credentials = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/{role}"))
        .role_session_name("admin")
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    iamwatchd::aws::loader(iamwatchd::aws::IAM_EVENTS_REGION, 1)
        .endpoint_url(&emulator.endpoint)
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_owned()),
            None,
            "e2e",
        ))
        .load()
        .await
}

/// The member role in the account `admin` acts in, trusting the management account, as the
/// member-role template makes it.
async fn add_member_role(admin: &SdkConfig) {
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]
    });
    Iam::new(admin)
        .create_role()
        .role_name(MEMBER_ROLE)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_is_watched_account_by_account_with_names() {
    let emulator = Emulator::start();
    let org = aws_sdk_organizations::Client::new(&emulator.sdk_config().await);
    org.create_organization().send().await.unwrap();
    let mut members = Vec::new();
    for name in ["prod-payments", "prod-web", "dev", "sandbox"] {
        let (id, admin) = member(&emulator, name).await;
        add_member_role(&admin).await;
        members.push((name, id, admin));
    }
    // The fifth account has no member role.
    let (orphan, _) = member(&emulator, "legacy").await;

    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(&emulator, dir.path(), ORGANIZATION);
    daemon.ready().await;

    for (name, _, admin) in &members {
        Iam::new(admin)
            .create_user()
            .user_name(format!("intruder-in-{name}"))
            .send()
            .await
            .unwrap();
    }
    for (name, id, _) in &members {
        let needle = format!("intruder-in-{name}");
        let mail = wait_until(&format!("the mail about {needle}"), || {
            mails_about(&emulator, &needle).into_iter().next()
        })
        .await;
        let subject = crate::daemon::header(&mail, "Subject").unwrap();
        assert!(
            subject.contains(&format!("({id} ({name}))")),
            "the subject names the account by ID and name: {subject}"
        );
    }
    let refused = wait_until("the message about the account without its role", || {
        mails_about(&emulator, "AccountNotWatched")
            .into_iter()
            .chain(mails_about(&emulator, "is not watched"))
            .next()
    })
    .await;
    assert!(refused.contains(&orphan), "{refused}");
    assert!(refused.contains("legacy"), "named: {refused}");
    assert!(
        refused.contains(&format!("{MEMBER_ROLE} missing")) && refused.contains("--member-roles"),
        "the fix: {refused}"
    );

    // An account created while the daemon runs is watched after the next refresh.
    let (late, admin) = member(&emulator, "new-team").await;
    add_member_role(&admin).await;
    wait_until("the new account's first pass", || {
        daemon
            .log()
            .contains(&format!("watching account account={late} (new-team)"))
            .then_some(())
    })
    .await;
    Iam::new(&admin)
        .create_user()
        .user_name("intruder-in-new-team")
        .send()
        .await
        .unwrap();
    let mail = wait_until("the mail about the new account's change", || {
        mails_about(&emulator, "intruder-in-new-team")
            .into_iter()
            .next()
    })
    .await;
    assert!(mail.contains(&format!("{late} (new-team)")), "{mail}");

    assert!(daemon.stop().success());
    // Into each account once: the credentials of the probe are the poller's (they last an
    // hour). The other AssumeRole is this test's own, as the account's administrator.
    let (_, counted) = emulator.control("GET", "counters/accounts", "");
    for (name, id, _) in &members {
        assert_eq!(counted[id]["assume_role_calls"], 2, "{name}: {counted}");
    }
    assert_eq!(
        counted[&late]["assume_role_calls"], 2,
        "new-team: {counted}"
    );
    // Each change once, the account without its role once: nothing repeated.
    for (name, _, _) in &members {
        assert_eq!(
            mails_about(&emulator, &format!("intruder-in-{name}")).len(),
            1,
            "{name}"
        );
    }
    let refusals = mails_about(&emulator, &orphan)
        .into_iter()
        .filter(|m| m.contains("is not watched"))
        .count();
    assert_eq!(refusals, 1, "one message for the account and its incident");

    // A restart during the incident says nothing new about it.
    let mut daemon = Daemon::start(&emulator, dir.path(), ORGANIZATION);
    wait_until("the incident seen again after the restart", || {
        daemon
            .log()
            .contains("account still not watched")
            .then_some(())
    })
    .await;
    assert!(daemon.stop().success());
    let refusals = mails_about(&emulator, &orphan)
        .into_iter()
        .filter(|m| m.contains("is not watched"))
        .count();
    assert_eq!(
        refusals, 1,
        "the incident's message is not repeated after a restart"
    );

    // `check` covers the organization: the listing, and every member's role.
    let output = crate::cli::command(Some(&emulator.endpoint), dir.path())
        .args(["check", "--all-accounts", "--config"])
        .arg(dir.path().join("iamwatchd.toml"))
        .output()
        .unwrap();
    let checklist = String::from_utf8_lossy(&output.stdout);
    assert!(
        checklist.contains("organization: 7 accounts (7 active) listed"),
        "{checklist}"
    );
    for (name, id, _) in &members {
        assert!(
            checklist.contains(&format!(
                "✓ account {id} ({name}): role assumed, event history readable"
            )),
            "{checklist}"
        );
    }
    assert!(
        checklist.contains(&format!("✗ account {orphan} (legacy): cannot assume")),
        "{checklist}"
    );
    assert!(
        checklist.contains("deploy the member-role template"),
        "{checklist}"
    );
    assert_eq!(output.status.code(), Some(69), "{checklist}");
}
