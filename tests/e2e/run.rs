//! `iamwatchd run`, the real binary, against the emulator and its SMTP sink.

use std::time::Instant;

use aws_sdk_iam::Client as Iam;

use serde_json::json;

use crate::daemon::{
    event_id_of, header, mails_about, seen_in_store, wait_until, Daemon, DEADLINE,
};
use crate::emulator::{header_fields, values, Emulator, Options};

/// alice, an IAM user with her own key: the actor of the test's changes.
async fn alice(emulator: &Emulator) -> Iam {
    Iam::new(&emulator.sdk_config_of_new_user("alice").await)
}

#[tokio::test]
async fn each_change_is_one_email_and_one_sns_message_with_who_what_where() {
    let emulator = Emulator::start();
    let config = emulator.sdk_config().await;
    // The SNS notifier's topic, read back through a subscribed queue.
    let sqs = aws_sdk_sqs::Client::new(&config);
    let (topic_arn, queue_url) = emulator.topic_with_queue("alerts", true).await;

    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(
        &emulator,
        dir.path(),
        // One message per change, whatever the burst: this test counts them.
        &format!(
            "[sns]\ntopic_arn = \"{topic_arn}\"\nregion = \"us-east-1\"\n\
             [digest]\nenabled = false\n"
        ),
    );
    let alice = alice(&emulator).await;
    alice.create_user().user_name("bob").send().await.unwrap();
    alice
        .attach_user_policy()
        .user_name("bob")
        .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
        .send()
        .await
        .unwrap();
    alice
        .create_access_key()
        .user_name("bob")
        .send()
        .await
        .unwrap();
    alice.list_users().send().await.unwrap(); // a read: nothing
    let denied = alice.delete_role().role_name("does-not-exist").send().await;
    assert!(denied.is_err());

    // root: CreateUser alice, CreateAccessKey alice; alice: 3 changes and 1 attempt.
    let mail = wait_until("six e-mails", || {
        let mail = emulator.mail();
        (mail.len() >= 6).then_some(mail)
    })
    .await;
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.log());
    let mail_after_stop = emulator.mail();
    assert_eq!(
        mail_after_stop.len(),
        6,
        "exactly one mail per change: {mail_after_stop:#?}"
    );

    let attach = mails_about(&emulator, "AttachUserPolicy");
    assert_eq!(attach.len(), 1);
    let subject = header(&attach[0], "Subject").expect("subject");
    assert!(subject.contains("CRITICAL"), "{subject}");
    assert!(subject.contains("AdministratorAccess"), "{subject}");
    assert!(subject.contains("alice"), "{subject}");
    assert!(attach[0].contains("127.0.0.1"), "source IP in the body");
    assert!(attach[0].contains("us-east-1"), "region in the body");
    let message_id = header(&attach[0], "Message-ID").expect("Message-ID");
    assert!(message_id.ends_with(".smtp@iamwatchd>"), "{message_id}");

    let attempt = mails_about(&emulator, "DeleteRole");
    assert_eq!(attempt.len(), 1);
    assert!(header(&attempt[0], "Subject")
        .unwrap()
        .contains("attempt (NoSuchEntity)"));
    assert!(
        mails_about(&emulator, "ListUsers").is_empty(),
        "reads are never reported"
    );
    drop(mail);

    // The same six through SNS, with attributes subscribers can filter on.
    let mut bodies = Vec::new();
    let started = Instant::now();
    while bodies.len() < 6 && started.elapsed() < DEADLINE {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        bodies.extend(received.messages().iter().cloned());
    }
    assert_eq!(bodies.len(), 6);
    let critical: Vec<_> = bodies
        .iter()
        .filter(|m| {
            m.message_attributes()
                .and_then(|a| a.get("severity"))
                .and_then(|v| v.string_value())
                == Some("CRITICAL")
        })
        .collect();
    assert!(!critical.is_empty());
}

/// Takes the emulator's SMTP sink down (connections refused) or brings it back.
fn smtp_paused(emulator: &Emulator, paused: bool) {
    let (status, answer) = emulator.control("POST", "smtp", &format!(r#"{{"paused": {paused}}}"#));
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn a_crash_between_poll_and_send_loses_nothing_and_repeats_nothing() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let iam = Iam::new(&emulator.sdk_config().await);

    // First change, delivered normally.
    let mut daemon = Daemon::start(&emulator, dir.path(), "");
    iam.create_group().group_name("first").send().await.unwrap();
    wait_until("mail about the first change", || {
        (mails_about(&emulator, "CreateGroup").len() == 1).then_some(())
    })
    .await;

    // Mail is down: the next change is polled and queued, but cannot be sent. Then a crash.
    smtp_paused(&emulator, true);
    iam.create_role()
        .role_name("second")
        .assume_role_policy_document("{}")
        .send()
        .await
        .unwrap();
    let second = event_id_of(&emulator, "CreateRole").await;
    wait_until("the second change in the store", || {
        seen_in_store(dir.path(), &second).then_some(())
    })
    .await;
    daemon.kill();

    // While the daemon is down, another change happens; then everything comes back.
    iam.create_user().user_name("third").send().await.unwrap();
    smtp_paused(&emulator, false);
    let mut daemon = Daemon::spawn(&emulator, dir.path(), &dir.path().join("iamwatchd.toml"));
    wait_until("mail about the queued and the missed change", || {
        (mails_about(&emulator, "CreateRole").len() == 1
            && mails_about(&emulator, "CreateUser").len() == 1)
            .then_some(())
    })
    .await;
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.log());
    assert_eq!(
        mails_about(&emulator, "CreateGroup").len(),
        1,
        "not repeated"
    );
    assert_eq!(mails_about(&emulator, "CreateRole").len(), 1);
    assert_eq!(mails_about(&emulator, "CreateUser").len(), 1);
}

#[tokio::test]
async fn smtp_down_for_a_while_delays_mail_but_not_sns() {
    let emulator = Emulator::start();
    let config = emulator.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let (topic_arn, queue_url) = emulator.topic_with_queue("alerts", false).await;
    smtp_paused(&emulator, true);
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(
        &emulator,
        dir.path(),
        &format!("[sns]\ntopic_arn = \"{topic_arn}\"\nregion = \"us-east-1\"\n"),
    );
    Iam::new(&config)
        .create_group()
        .group_name("while-mail-is-down")
        .send()
        .await
        .unwrap();
    // SNS delivers while SMTP is refused.
    let started = Instant::now();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if !received.messages().is_empty() {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "no SNS message while SMTP is down"
        );
    }
    assert!(emulator.mail().is_empty());
    smtp_paused(&emulator, false);
    wait_until("the mail once SMTP is back", || {
        (mails_about(&emulator, "CreateGroup").len() == 1).then_some(())
    })
    .await;
    assert_eq!(daemon.stop().code(), Some(0));
    assert!(
        daemon.log().contains("will retry"),
        "the failures were logged as temporary"
    );
}

#[tokio::test]
async fn late_records_and_throttling_lose_nothing() {
    let emulator = Emulator::start_with(Options {
        lookup_rate: 2.0,
        ..Options::default()
    });
    let dir = tempfile::tempdir().unwrap();
    // Throttle every CloudTrail call from the start.
    emulator.control(
        "POST",
        "faults",
        r#"{"services": ["cloudtrail"], "throttle": true}"#,
    );
    let mut daemon = Daemon::start(&emulator, dir.path(), "");
    // A record that happened 40 s ago and only becomes visible now: outside every fast window.
    let late = json!([{
        "eventID": "late-event-0001", "eventName": "DeactivateMFADevice",
        "eventSource": "iam.amazonaws.com",
        "eventTime": (chrono::Utc::now() - chrono::TimeDelta::seconds(40)).to_rfc3339(),
        "readOnly": false, "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
        "userIdentity": {"type": "IAMUser", "userName": "mallory",
            "arn": "arn:aws:iam::123456789012:user/mallory"},
        "requestParameters": {"userName": "alice", "serialNumber": "arn:aws:iam::123456789012:mfa/alice"}
    }]);
    let (status, _) = emulator.control("POST", "events", &late.to_string());
    assert_eq!(status, 200);
    wait_until("the daemon being throttled", || {
        (emulator.counter("faults_throttled") >= 3).then_some(())
    })
    .await;
    assert!(emulator.mail().is_empty());
    emulator.control("DELETE", "faults", "");
    wait_until("the late record's mail", || {
        (mails_about(&emulator, "DeactivateMFADevice").len() == 1).then_some(())
    })
    .await;
    assert_eq!(daemon.stop().code(), Some(0));
    assert_eq!(mails_about(&emulator, "DeactivateMFADevice").len(), 1);
    assert!(daemon.log().contains("throttled"), "{}", daemon.log());
}

#[tokio::test]
async fn hostile_strings_produce_safe_messages() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(&emulator, dir.path(), "");
    let huge = "A".repeat(100_000);
    let hostile = json!([{
        "eventID": "hostile-0001", "eventName": "CreateRole",
        "eventSource": "iam.amazonaws.com", "eventTime": chrono::Utc::now().to_rfc3339(),
        "readOnly": false, "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
        "sourceIPAddress": "<img src=x onerror=alert(1)>",
        "userAgent": "<script>alert('ua')</script>",
        "userIdentity": {"type": "IAMUser", "userName": "eve\r\nBcc: victim@example.com",
            "arn": "arn:aws:iam::123456789012:user/eve"},
        "requestParameters": {"roleName": "ops\r\nX-Injected: yes", "description": huge}
    }]);
    let (status, _) = emulator.control("POST", "events", &hostile.to_string());
    assert_eq!(status, 200);
    let mail = wait_until("the hostile record's mail", || {
        mails_about(&emulator, "hostile-0001").into_iter().next()
    })
    .await;
    assert_eq!(daemon.stop().code(), Some(0));
    let fields = header_fields(&mail);
    assert!(values(&fields, "bcc").is_empty(), "{fields:#?}");
    assert!(values(&fields, "x-injected").is_empty(), "{fields:#?}");
    assert_eq!(
        values(&fields, "x-sink-rcpt-to"),
        ["security@example.com"],
        "no injected recipient"
    );
    let body = mail.replace("=\r\n", "");
    let (_, html) = body
        .split_once("Content-Type: text/html")
        .expect("an HTML part");
    assert!(!html.contains("<script>"), "HTML must be escaped");
    assert!(!html.contains("<img src=x"), "HTML must be escaped");
    assert!(
        mail.len() < 60_000,
        "a 100 KB field is cut: {} bytes",
        mail.len()
    );
    assert!(mail.contains("truncated"));
}
