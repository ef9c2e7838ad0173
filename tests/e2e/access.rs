//! Access changes beyond IAM and the security services' tampering, end to end: the real SDK
//! makes the calls the emulator records (GuardDuty, Config, Organizations, IAM Identity
//! Center), a root console sign-in is injected as CloudTrail records it, and each reaches the
//! notifiers once with the catalogue's severity and reason. With a deployed stack, the same
//! call on our monitoring and on someone else's resource rank differently.

use std::time::Duration;

use serde_json::json;

use crate::daemon::{header, mails_about, wait_until_within, Daemon};
use crate::emulator::{Emulator, ACCOUNT};

/// The listed streams are read once a minute (their first sweep at start), behind IAM.
const LISTED: Duration = Duration::from_secs(150);

/// The one mail about `event_name`, once it is there; its subject.
async fn the_mail_about(emulator: &Emulator, event_name: &str) -> (String, String) {
    let mail = wait_until_within(LISTED, event_name, || {
        mails_about(emulator, &format!("Event: {event_name} "))
            .into_iter()
            .next()
    })
    .await;
    (header(&mail, "Subject").unwrap_or_default(), mail)
}

/// A root console sign-in without MFA, field for field as AWS documents it.
fn root_console_login() -> serde_json::Value {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "Root", "principalId": ACCOUNT,
            "arn": format!("arn:aws:iam::{ACCOUNT}:root"), "accountId": ACCOUNT, "accessKeyId": ""},
        "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1", "sourceIPAddress": "192.0.2.10",
        "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:109.0) Gecko/20100101 Firefox/115.0",
        "requestParameters": null,
        "responseElements": {"ConsoleLogin": "Success"},
        "additionalEventData": {"LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true",
            "MobileVersion": "No", "MFAUsed": "No"},
        "eventID": "3b2e5c1a-0c7d-4c6e-9f1a-6f0d1c2b3a4d", "readOnly": false,
        "eventType": "AwsConsoleSignIn", "managementEvent": true,
        "recipientAccountId": ACCOUNT, "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": "signin.aws.amazon.com"}
    })
}

#[tokio::test]
async fn security_services_organizations_identity_center_and_root_each_reach_the_notifiers_once() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    // One mail per finding: alice's Organizations and Identity Center changes are findings
    // like IAM changes, so after the burst's first three a digest would carry the rest (the
    // digest tests cover that).
    let mut daemon = Daemon::start(&emulator, dir.path(), "[digest]\nenabled = false\n");
    daemon.ready().await;
    let alice = emulator.sdk_config_of_new_user("alice").await;

    let guardduty = aws_sdk_guardduty::Client::new(&alice);
    let detector = guardduty
        .create_detector()
        .enable(true)
        .send()
        .await
        .unwrap();
    let detector = detector.detector_id().unwrap();
    guardduty
        .update_detector()
        .detector_id(detector)
        .enable(false)
        .send()
        .await
        .unwrap();

    let config = aws_sdk_config::Client::new(&alice);
    config
        .put_configuration_recorder()
        .configuration_recorder(
            aws_sdk_config::types::ConfigurationRecorder::builder()
                .name("default")
                .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/config"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    config
        .stop_configuration_recorder()
        .configuration_recorder_name("default")
        .send()
        .await
        .unwrap();

    let organizations = aws_sdk_organizations::Client::new(&alice);
    organizations
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let roots = organizations.list_roots().send().await.unwrap();
    let root = roots.roots()[0].id().unwrap();
    let scp = organizations
        .create_policy()
        .name("deny-leaving")
        .description("accounts stay in the organization")
        .r#type(aws_sdk_organizations::types::PolicyType::ServiceControlPolicy)
        .content(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"organizations:LeaveOrganization","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let scp = scp
        .policy()
        .unwrap()
        .policy_summary()
        .unwrap()
        .id()
        .unwrap();
    organizations
        .attach_policy()
        .policy_id(scp)
        .target_id(root)
        .send()
        .await
        .unwrap();

    let sso = aws_sdk_ssoadmin::Client::new(&alice);
    let instance = "arn:aws:sso:::instance/ssoins-1111111111111111";
    // moto answers CreatePermissionSet with a SessionDuration the SDK refuses (a number, not
    // an ISO 8601 duration), so the assignment names a permission set of its own.
    let permission_set = format!("{instance}/ps-0123456789abcdef");
    sso.create_account_assignment()
        .instance_arn(instance)
        .target_id(ACCOUNT)
        .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
        .permission_set_arn(&permission_set)
        .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
        .principal_id("user-1")
        .send()
        .await
        .unwrap();

    let (status, answer) = emulator.control("POST", "events", &root_console_login().to_string());
    assert_eq!(status, 200, "{answer}");

    let expected = [
        (
            "UpdateDetector",
            "CRITICAL TAMPERING",
            "GuardDuty was switched off",
        ),
        (
            "StopConfigurationRecorder",
            "CRITICAL TAMPERING",
            "AWS Config stopped recording",
        ),
        ("AttachPolicy", "HIGH", "organization policy was attached"),
        (
            "CreateAccountAssignment",
            "HIGH",
            "given a permission set in an account",
        ),
        (
            "ConsoleLogin",
            "CRITICAL ROOT",
            "root user signed in to the console without MFA",
        ),
    ];
    for (event, severity, reason) in expected {
        let (subject, mail) = the_mail_about(&emulator, event).await;
        assert!(subject.contains(severity), "{event}: {subject}");
        assert!(mail.contains(reason), "{event}: {mail}");
    }
    // The streams were swept every 2 s meanwhile: a record reported twice would be here.
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.log());
    for (event, _, _) in expected {
        assert_eq!(
            mails_about(&emulator, &format!("Event: {event} ")).len(),
            1,
            "{event}: once"
        );
    }
    assert!(
        mails_about(&emulator, "Event: CreateDetector ").is_empty(),
        "switching GuardDuty on is not reported"
    );
}
