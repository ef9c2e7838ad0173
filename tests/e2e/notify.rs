//! The notifiers against the emulator: SMTP into its sink (STARTTLS, AUTH, failures) and SNS
//! read back through an SQS queue subscribed to the topic.

use std::time::Duration;

use iamwatchd::config::Secret;
use iamwatchd::event::Record;
use iamwatchd::event::SeenBy;
use iamwatchd::notify::smtp::{SmtpAuth, SmtpConfig, SmtpNotifier, SmtpTls};
use iamwatchd::notify::sns::SnsNotifier;
use iamwatchd::notify::{Alert, Message, Notifier};
use iamwatchd::rules::{Category, Classification, Severity};
use serde_json::Value;

use crate::emulator::{header_fields, values, Emulator, Options};

/// A real AttachUserPolicy(AdministratorAccess) record from the test corpus, aimed at a
/// user whose name tries to inject a `Bcc:` header.
fn hostile_admin_grant() -> Message {
    let line = crate::testdata::records_text()
        .lines()
        .find(|line| line.contains("\"f4923a37-92d5-4dfd-9786-6caef2b5f33c\""))
        .expect("the AttachUserPolicy record")
        .to_owned();
    let mut value: Value = serde_json::from_str(&line).unwrap();
    value["requestParameters"]["userName"] = "bob\r\nBcc: victim@example.com".into();
    value["userAgent"] = "<script>alert(1)</script>".into();
    let record = Record::from_json(value).unwrap();
    Alert {
        detected_at: record.event_time.unwrap() + chrono::TimeDelta::seconds(30),
        record,
        classification: Classification {
            category: Category::IamChange,
            severity: Severity::Critical,
            attempt: false,
            reason: "AdministratorAccess attached to a user".to_owned(),
        },
        seen_by: SeenBy::Poller,
        analysis: None,
        account_name: None,
    }
    .render()
}

/// The sink's user `alerts` with `password`.
fn auth(password: &str) -> SmtpAuth {
    SmtpAuth {
        username: "alerts".to_owned(),
        password: Secret::new(password),
    }
}

fn smtp_config(emulator: &Emulator) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".to_owned(),
        port: emulator.smtp_port.expect("the emulator runs its SMTP sink"),
        tls: SmtpTls::Starttls,
        ca_file: emulator.cert.clone(),
        auth: None,
        from: "iamwatchd <iamwatchd@example.com>".to_owned(),
        to: vec!["admin@example.com".to_owned(), "sec@example.com".to_owned()],
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn smtp_delivers_one_safe_multipart_mail_over_starttls_with_auth() {
    let emulator = Emulator::start_with(Options {
        extra_args: vec![
            "--smtp-starttls".into(),
            "--smtp-require-tls".into(),
            "--smtp-auth".into(),
            "alerts:s3cret".into(),
        ],
        ..Options::default()
    });
    assert!(
        emulator.cert.is_some(),
        "STARTTLS sink without a cert= path"
    );
    let config = SmtpConfig {
        auth: Some(auth("s3cret")),
        ..smtp_config(&emulator)
    };
    let notifier = SmtpNotifier::new("ops-mail", &config).expect("valid configuration");
    notifier.healthcheck().await.expect("healthcheck");
    let message = hostile_admin_grant();
    notifier
        .send(&message)
        .await
        .expect("the sink accepts the mail");

    let mail = emulator.mail();
    assert_eq!(mail.len(), 1, "exactly one mail");
    let fields = header_fields(&mail[0]);
    assert_eq!(
        values(&fields, "x-sink-rcpt-to"),
        ["admin@example.com", "sec@example.com"],
        "the injected Bcc must not become a recipient"
    );
    assert_eq!(
        values(&fields, "x-sink-mail-from"),
        ["iamwatchd@example.com"]
    );
    assert!(values(&fields, "bcc").is_empty(), "{fields:#?}");
    assert_eq!(
        values(&fields, "message-id"),
        ["<f4923a37-92d5-4dfd-9786-6caef2b5f33c.ops-mail@iamwatchd>"]
    );
    assert_eq!(values(&fields, "x-iamwatchd-severity"), ["CRITICAL"]);
    assert_eq!(
        values(&fields, "x-iamwatchd-event-id"),
        ["f4923a37-92d5-4dfd-9786-6caef2b5f33c"]
    );
    let subject = values(&fields, "subject");
    assert_eq!(subject.len(), 1);
    // The injected CR/LF became spaces: "Bcc:" is text inside the one Subject field (the
    // arrow travels as an RFC 2047 encoded word).
    assert!(
        subject[0].starts_with("[iamwatchd] CRITICAL AttachUserPolicy AdministratorAccess "),
        "{}",
        subject[0]
    );
    assert!(
        subject[0].ends_with(" bob  Bcc: victim@example.com by bert-jan (123837392027)"),
        "{}",
        subject[0]
    );
    assert!(values(&fields, "content-type")[0].starts_with("multipart/alternative"));
    let body = mail[0].replace("=\r\n", "");
    let (text, html) = body
        .split_once("Content-Type: text/html; charset=utf-8")
        .expect("an HTML part");
    assert!(text.contains("Content-Type: text/plain; charset=utf-8"));
    assert!(text.contains("policyArn: arn:aws:iam::aws:policy/AdministratorAccess"));
    assert!(text.contains("Principal: arn:aws:iam::123837392027:user/bert-jan"));
    assert!(!html.contains("<script>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    // Sending the same alert again yields the same Message-ID: mail systems can drop it.
    notifier.send(&message).await.expect("second send");
    let again = emulator.mail();
    assert_eq!(again.len(), 2);
    assert_eq!(
        values(&header_fields(&again[1]), "message-id"),
        values(&fields, "message-id")
    );

    // A wrong password is permanent and says what to check.
    let wrong = SmtpNotifier::new(
        "ops-mail",
        &SmtpConfig {
            auth: Some(auth("wrong")),
            ..config
        },
    )
    .expect("valid configuration");
    let error = wrong.send(&message).await.expect_err("535");
    assert!(!error.is_transient(), "{error}");
    assert!(
        error.to_string().contains("username and password"),
        "{error}"
    );
    assert_eq!(emulator.mail().len(), 2);
}

#[tokio::test]
async fn starttls_required_against_a_server_without_it_is_a_clear_permanent_error() {
    let emulator = Emulator::start();
    assert!(emulator.cert.is_none());
    let notifier = SmtpNotifier::new("ops-mail", &smtp_config(&emulator)).expect("valid");
    let error = notifier
        .send(&hostile_admin_grant())
        .await
        .expect_err("no STARTTLS offered");
    assert!(!error.is_transient(), "{error}");
    let text = error.to_string();
    assert!(text.contains("STARTTLS"), "{text}");
    assert!(text.contains("tls = implicit"), "{text}");
    assert!(emulator.mail().is_empty(), "nothing may be sent in clear");
    let check = notifier.healthcheck().await.expect_err("healthcheck too");
    assert!(!check.is_transient(), "{check}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_permanent_and_names_ca_file() {
    let emulator = Emulator::start_with(Options {
        extra_args: vec!["--smtp-starttls".into()],
        ..Options::default()
    });
    let config = SmtpConfig {
        ca_file: None,
        ..smtp_config(&emulator)
    };
    let notifier = SmtpNotifier::new("ops-mail", &config).expect("valid");
    let error = notifier
        .send(&hostile_admin_grant())
        .await
        .expect_err("self-signed certificate not trusted");
    assert!(!error.is_transient(), "{error}");
    assert!(error.to_string().contains("ca_file"), "{error}");
    assert!(emulator.mail().is_empty());
}

#[tokio::test]
async fn a_dead_smtp_port_is_a_transient_error() {
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let config = SmtpConfig {
        host: "127.0.0.1".to_owned(),
        port,
        tls: SmtpTls::Starttls,
        ca_file: None,
        auth: None,
        from: "iamwatchd@example.com".to_owned(),
        to: vec!["admin@example.com".to_owned()],
        timeout: Duration::from_secs(5),
    };
    let notifier = SmtpNotifier::new("ops-mail", &config).expect("valid");
    let error = notifier
        .send(&hostile_admin_grant())
        .await
        .expect_err("connection refused");
    assert!(error.is_transient(), "{error}");
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}

#[tokio::test]
async fn sns_publishes_subject_text_and_filterable_attributes() {
    let emulator = Emulator::start();
    let config = emulator.sdk_config().await;
    let (topic_arn, queue_url) = emulator.topic_with_queue("iamwatchd-alerts", false).await;

    let notifier = SnsNotifier::new("pager", &topic_arn, &config).expect("topic ARN");
    notifier.healthcheck().await.expect("GetTopicAttributes");
    let message = hostile_admin_grant();
    notifier.send(&message).await.expect("Publish");

    let body = emulator.next_message(&queue_url).await;
    let envelope: Value = serde_json::from_str(&body).expect("SNS envelope");
    assert_eq!(envelope["Type"], "Notification");
    assert_eq!(envelope["TopicArn"], topic_arn.as_str());
    let subject = envelope["Subject"].as_str().expect("Subject");
    assert_eq!(subject, message.sns_subject());
    assert!(subject.len() < 100 && subject.is_ascii(), "{subject}");
    assert!(subject.starts_with("[iamwatchd] CRITICAL AttachUserPolicy AdministratorAccess -> bob"));
    assert_eq!(envelope["Message"], message.text.as_str());
    let attributes = &envelope["MessageAttributes"];
    for (name, expected) in [
        ("severity", "CRITICAL"),
        ("event_name", "AttachUserPolicy"),
        ("account", "123837392027"),
        ("category", "iam-change"),
    ] {
        assert_eq!(attributes[name]["Type"], "String", "{attributes:#}");
        assert_eq!(attributes[name]["Value"], expected, "{attributes:#}");
    }

    // A topic that does not exist is a permanent error that says so.
    let missing = SnsNotifier::new(
        "pager",
        &topic_arn.replace("iamwatchd-alerts", "no-such-topic"),
        &config,
    )
    .expect("topic ARN");
    let error = missing.healthcheck().await.expect_err("no such topic");
    assert!(!error.is_transient(), "{error}");
    assert!(error.to_string().contains("create it"), "{error}");
}
