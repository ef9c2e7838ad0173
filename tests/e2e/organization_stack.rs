//! The stack for an organization, with the real binary: `deploy --organization` refused with a
//! clear error (and its fix) until the caller is the management account of an all-features
//! organization with CloudTrail's trusted access, then an organization trail;
//! `deploy --member-roles` puts the member role in every account of the chosen OU and nowhere
//! else, the daemon then watches those accounts through it, and `--delete` takes it away; the
//! organization trail's one alarm confirms changes made in several member accounts.

use aws_sdk_cloudtrail::Client as CloudTrail;
use aws_sdk_iam::Client as Iam;
use aws_sdk_organizations::types::OrganizationFeatureSet;
use aws_sdk_organizations::Client as Organizations;
use aws_sdk_sts::types::Credentials;

use std::time::{Duration, Instant};

use iamwatchd::event::SeenBy;

use crate::accounts::{as_role, member};
use crate::alarm::{alarm_config, alarm_ok, seen, start_of_period, PERIOD};
use crate::cli::{command, iamwatchd, Run};
use crate::daemon::{mails_about, wait_until, Daemon, DEADLINE};
use crate::deploy::{outputs, EMAIL};
use crate::emulator::{Emulator, Options, ACCOUNT};

const MEMBER_ROLE: &str = "iamwatchd-member";
const STACK_SET: &str = "iamwatchd-member-roles";

/// The emulator's credentials for `role` in `account`, as `aws sts assume-role` gives them.
async fn session(emulator: &Emulator, account: &str, role: &str) -> Credentials {
    aws_sdk_sts::Client::new(&emulator.sdk_config().await)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/{role}"))
        .role_session_name("operator")
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap()
}

/// `iamwatchd ARGS` with `credentials` instead of the management account's root key.
fn iamwatchd_as(emulator: &Emulator, credentials: &Credentials, args: &[&str]) -> Run {
    let home = tempfile::tempdir().unwrap();
    let output = command(Some(&emulator.endpoint), home.path())
        .env("AWS_ACCESS_KEY_ID", credentials.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key())
        .env("AWS_SESSION_TOKEN", credentials.session_token())
        .args(args)
        .output()
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The trust policy of the member role in `account`, `None` when the role does not exist.
async fn member_role_trust(emulator: &Emulator, account: &str) -> Option<String> {
    let admin = as_role(emulator, account, "OrganizationAccountAccessRole").await;
    let role = Iam::new(&admin)
        .get_role()
        .role_name(MEMBER_ROLE)
        .send()
        .await
        .ok()?;
    let document = role.role?.assume_role_policy_document?;
    // IAM returns policy documents URL-encoded.
    let document = percent_encoding::percent_decode_str(&document)
        .decode_utf8_lossy()
        .into_owned();
    Some(document.replace(char::is_whitespace, ""))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_trail_needs_all_features() {
    let emulator = Emulator::start();
    let home = tempfile::tempdir().unwrap();
    Organizations::new(&emulator.sdk_config().await)
        .create_organization()
        .feature_set(OrganizationFeatureSet::ConsolidatedBilling)
        .send()
        .await
        .unwrap();
    let refused = iamwatchd(
        Some(&emulator.endpoint),
        home.path(),
        &["deploy", "--email", EMAIL, "--organization"],
    );
    refused.assert_failure();
    assert!(
        refused.stderr.contains("CONSOLIDATED_BILLING")
            && refused
                .stderr
                .contains("aws organizations enable-all-features"),
        "{}",
        refused.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_organization_gets_its_trail_and_a_member_role_in_every_account_of_the_ou() {
    let emulator = Emulator::start();
    let home = tempfile::tempdir().unwrap();
    let endpoint = Some(emulator.endpoint.as_str());
    let config = emulator.sdk_config().await;
    let org = Organizations::new(&config);

    // Outside any organization: refused, and told why.
    let alone = iamwatchd(
        endpoint,
        home.path(),
        &["deploy", "--email", EMAIL, "--organization"],
    );
    alone.assert_failure();
    assert!(
        alone.stderr.contains("is not in an organization"),
        "{}",
        alone.stderr
    );

    org.create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let root = org.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_owned();
    let workloads = org
        .create_organizational_unit()
        .parent_id(&root)
        .name("workloads")
        .send()
        .await
        .unwrap()
        .organizational_unit
        .unwrap()
        .id
        .unwrap();
    let mut members = Vec::new();
    for name in ["prod-payments", "prod-web"] {
        let (id, admin) = member(&emulator, name).await;
        org.move_account()
            .account_id(&id)
            .source_parent_id(&root)
            .destination_parent_id(&workloads)
            .send()
            .await
            .unwrap();
        members.push((name, id, admin));
    }
    let (sandbox, _) = member(&emulator, "sandbox").await;

    // A member account's credentials: refused, naming the management account.
    let as_member = session(&emulator, &members[0].1, "OrganizationAccountAccessRole").await;
    let refused = iamwatchd_as(
        &emulator,
        &as_member,
        &["deploy", "--email", EMAIL, "--organization"],
    );
    refused.assert_failure();
    assert!(
        refused.stderr.contains("is not the management account")
            && refused
                .stderr
                .contains(&format!("with credentials of account {ACCOUNT}")),
        "{}",
        refused.stderr
    );

    // The management account before trusted access: refused, with the command that fixes it.
    let refused = iamwatchd(
        endpoint,
        home.path(),
        &["deploy", "--email", EMAIL, "--organization"],
    );
    refused.assert_failure();
    assert!(
        refused.stderr.contains(
            "aws organizations enable-aws-service-access --service-principal \
             cloudtrail.amazonaws.com"
        ),
        "{}",
        refused.stderr
    );

    org.enable_aws_service_access()
        .service_principal("cloudtrail.amazonaws.com")
        .send()
        .await
        .unwrap();
    let created = iamwatchd(
        endpoint,
        home.path(),
        &["deploy", "--email", EMAIL, "--organization"],
    );
    created.assert_success();
    assert!(
        created.stdout.contains("CREATE_COMPLETE"),
        "{}",
        created.stdout
    );
    let trail = CloudTrail::new(&config)
        .get_trail()
        .name("iamwatchd")
        .send()
        .await
        .unwrap()
        .trail
        .unwrap();
    assert_eq!(trail.is_organization_trail(), Some(true));

    // The member role in the OU's accounts, trusting the role the operator deployed with.
    let deployer_trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}}]});
    Iam::new(&config)
        .create_role()
        .role_name("iamwatchd-operator")
        .assume_role_policy_document(deployer_trust.to_string())
        .send()
        .await
        .unwrap();
    let operator = session(&emulator, ACCOUNT, "iamwatchd-operator").await;
    let deployed = iamwatchd_as(
        &emulator,
        &operator,
        &["deploy", "--member-roles", "--member-role-ous", &workloads],
    );
    deployed.assert_success();
    assert!(
        deployed.stdout.contains("The member role is in 2 accounts"),
        "{}",
        deployed.stdout
    );
    for (name, id, _) in &members {
        let trust = member_role_trust(&emulator, id)
            .await
            .unwrap_or_else(|| panic!("the member role in {name}"));
        assert!(
            trust.contains(&format!("arn:aws:iam::{ACCOUNT}:role/iamwatchd-operator")),
            "the caller's role, not its session: {trust}"
        );
        assert!(!trust.contains("ExternalId"), "{trust}");
    }
    assert_eq!(
        member_role_trust(&emulator, &sandbox).await,
        None,
        "not outside the OU"
    );
    // The role reads the event history (and may do nothing else the template does not say).
    let reader = as_role(&emulator, &members[0].1, MEMBER_ROLE).await;
    CloudTrail::new(&reader)
        .lookup_events()
        .max_results(1)
        .send()
        .await
        .expect("the member role may call LookupEvents");

    // Deployed again with the daemon's configuration, which asks for an external ID: the
    // StackSet is updated, and so is every role.
    let daemon_config = home.path().join("iamwatchd.toml");
    std::fs::write(
        &daemon_config,
        "[accounts]\nexternal_id = \"org-secret-1\"\n",
    )
    .unwrap();
    let updated = iamwatchd(
        endpoint,
        home.path(),
        &[
            "deploy",
            "--member-roles",
            "--member-role-ous",
            &workloads,
            "--config",
            daemon_config.to_str().unwrap(),
        ],
    );
    updated.assert_success();
    for (_, id, _) in &members {
        let trust = member_role_trust(&emulator, id).await.unwrap();
        assert!(
            trust.contains("\"sts:ExternalId\":\"org-secret-1\""),
            "{trust}"
        );
        assert!(
            trust.contains("role/iamwatchd-operator"),
            "the principal is kept: {trust}"
        );
    }

    // The daemon watches the OU's accounts through the member role.
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(
        &emulator,
        dir.path(),
        &format!(
            "[digest]\nenabled = false\n[accounts]\nexternal_id = \"org-secret-1\"\ninclude = \
             [\"{workloads}\"]\n[accounts.organizations]\nenabled = true\nrefresh = \"10s\"\n"
        ),
    );
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
        let mail = wait_until(&format!("the mail about the change in {name}"), || {
            mails_about(&emulator, &format!("intruder-in-{name}"))
                .into_iter()
                .next()
        })
        .await;
        assert!(mail.contains(&format!("{id} ({name})")), "{mail}");
    }
    assert!(daemon.stop().success());
    assert!(
        mails_about(&emulator, "is not watched").is_empty(),
        "every included account has its role"
    );

    // --delete: the role leaves every account, then the StackSet goes.
    let deleted = iamwatchd(
        endpoint,
        home.path(),
        &["deploy", "--member-roles", "--delete"],
    );
    deleted.assert_success();
    assert!(
        deleted
            .stdout
            .contains("Deleting the member role from 2 accounts"),
        "{}",
        deleted.stdout
    );
    for (_, id, _) in &members {
        assert_eq!(member_role_trust(&emulator, id).await, None);
    }
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    assert!(
        cfn.describe_stack_set()
            .stack_set_name(STACK_SET)
            .send()
            .await
            .is_err(),
        "the StackSet is gone"
    );
    let again = iamwatchd(
        endpoint,
        home.path(),
        &["deploy", "--member-roles", "--delete"],
    );
    again.assert_success();
    assert!(
        again.stdout.contains("nothing to delete"),
        "{}",
        again.stdout
    );
}

/// The eventID of the only `CreateUser` of `user` in the event history `admin` reads.
async fn create_user_event(admin: &aws_config::SdkConfig, user: &str) -> String {
    let started = Instant::now();
    loop {
        let page = CloudTrail::new(admin)
            .lookup_events()
            .lookup_attributes(
                aws_sdk_cloudtrail::types::LookupAttribute::builder()
                    .attribute_key(aws_sdk_cloudtrail::types::LookupAttributeKey::ResourceName)
                    .attribute_value(user)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        if let Some(id) = page.events().iter().find_map(|e| e.event_id()) {
            return id.to_owned();
        }
        assert!(started.elapsed() < DEADLINE, "no CreateUser of {user}");
        tokio::time::sleep(Duration::from_millis(200)).await; // condition polling interval
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_organization_trails_alarm_confirms_changes_in_several_member_accounts() {
    // The log group's copy a few seconds after the event history's, so the member pollers
    // report first and the alarm path confirms.
    let emulator = Emulator::start_with(Options {
        log_delay: 4.0,
        ..Options::default()
    });
    let home = tempfile::tempdir().unwrap();
    let endpoint = Some(emulator.endpoint.as_str());
    let config = emulator.sdk_config().await;
    let org = Organizations::new(&config);
    org.create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    org.enable_aws_service_access()
        .service_principal("cloudtrail.amazonaws.com")
        .send()
        .await
        .unwrap();
    let mut members = Vec::new();
    for name in ["prod-payments", "prod-web"] {
        let (id, admin) = member(&emulator, name).await;
        members.push((name, id, admin));
    }
    let period = PERIOD.to_string();
    iamwatchd(
        endpoint,
        home.path(),
        &[
            "deploy",
            "--email",
            EMAIL,
            "--organization",
            "--daemon-queue",
            "true",
            "--alarm-period",
            &period,
        ],
    )
    .assert_success();
    let out = outputs(&aws_sdk_cloudformation::Client::new(&config)).await;
    let principal = format!("arn:aws:iam::{ACCOUNT}:role/iamwatchd");
    iamwatchd(
        endpoint,
        home.path(),
        &[
            "deploy",
            "--member-roles",
            "--member-role-principal",
            &principal,
        ],
    )
    .assert_success();

    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(
        &emulator,
        dir.path(),
        &format!(
            "{}[digest]\nenabled = false\n[accounts.organizations]\nenabled = true\nrefresh = \"10s\"\n",
            alarm_config(&out, "30m")
        ),
    );
    daemon.ready().await;
    for (name, id, _) in &members {
        wait_until(&format!("the first pass in {name}"), || {
            daemon
                .log()
                .contains(&format!("watching account account={id}"))
                .then_some(())
        })
        .await;
    }
    // One member after the other, each change in an alarm episode of its own: the daemon
    // reads the alarm's window when the alarm goes to ALARM, and a record the organization
    // trail delivers after that read, while the alarm stays in ALARM, sets nothing off (seen
    // once in five runs with both changes in one period).
    for (name, id, admin) in &members {
        alarm_ok(&emulator, &out["AlarmName"]).await;
        start_of_period().await;
        Iam::new(admin)
            .create_user()
            .user_name(format!("org-alarm-{name}"))
            .send()
            .await
            .unwrap();
        let event_id = create_user_event(admin, &format!("org-alarm-{name}")).await;
        let started = Instant::now();
        let confirmed = loop {
            if let Some(s) =
                seen(dir.path(), &event_id).filter(|s| s.confirmed_by_alarm_at.is_some())
            {
                break s;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "timed out waiting for the alarm's confirmation of {name}'s change {event_id}; \
                 the daemon's log:\n{}",
                daemon.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await; // condition polling interval
        };
        assert_eq!(confirmed.first_path, SeenBy::Poller, "{name} ({id})");
    }
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.log());
    for (name, id, _) in &members {
        let mail = mails_about(&emulator, &format!("org-alarm-{name}"));
        assert_eq!(mail.len(), 1, "one mail per change, the alarm added none");
        assert!(mail[0].contains(&format!("{id} ({name})")), "{}", mail[0]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_role_that_cannot_be_created_names_the_account_and_why() {
    let emulator = Emulator::start();
    let home = tempfile::tempdir().unwrap();
    Organizations::new(&emulator.sdk_config().await)
        .create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let (fine, _) = member(&emulator, "fine").await;
    // Someone made a role of that name by hand in this one.
    let (taken, admin) = member(&emulator, "taken").await;
    Iam::new(&admin)
        .create_role()
        .role_name(MEMBER_ROLE)
        .assume_role_policy_document(r#"{"Version": "2012-10-17", "Statement": []}"#)
        .send()
        .await
        .unwrap();
    let principal = format!("arn:aws:iam::{ACCOUNT}:role/iamwatchd");
    let failed = iamwatchd(
        Some(&emulator.endpoint),
        home.path(),
        &[
            "deploy",
            "--member-roles",
            "--member-role-principal",
            &principal,
        ],
    );
    failed.assert_failure();
    assert!(
        failed
            .stderr
            .contains(&format!("account {taken} (us-east-1)"))
            && failed.stderr.contains("already exists")
            && failed.stderr.contains("FAILED")
            && !failed.stderr.contains(&fine),
        "the failing account and CloudFormation's reason, only: {}",
        failed.stderr
    );
    assert!(
        member_role_trust(&emulator, &fine).await.is_some(),
        "the other account has its role"
    );
}
