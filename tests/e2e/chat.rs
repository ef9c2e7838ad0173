//! The chat, paging and webhook notifiers, the real binary against the emulator's HTTP sink:
//! several of each type with their own routes, each finding exactly once per notifier across
//! a 429 storm and a kill -9, every payload checked by the sink against what the platforms
//! document (Block Kit limits, the Adaptive Card shape, Events API v2 fields, the Standard
//! Webhooks signature verified by the `standardwebhooks` package).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use aws_sdk_iam::types::Tag;
use aws_sdk_iam::Client as Iam;
use serde_json::{json, Value};

use crate::daemon::{event_id_of, mails_about, seen_in_store, wait_until, write_config, Daemon};
use crate::emulator::Emulator;

const WEBHOOK_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const ROUTING_KEY: &str = "abcdefghijklmnopqrstuvwxyz012345";
const HOSTILE_TAG: &str = "<!channel> <https://evil.example|click> [x](https://evil.example) @here";

/// A private file holding `secret`, as `KEY_file` wants it.
fn secret_file(dir: &Path, name: &str, secret: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, secret).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// Five notifiers of four types, each with its own route, all posting to the sink.
fn notifiers(emulator: &Emulator, dir: &Path) -> String {
    let sink = emulator.http_url.clone().expect("HTTP sink");
    let credentials = dir.join("credentials");
    std::fs::create_dir_all(&credentials).unwrap();
    secret_file(
        &credentials,
        "teams.webhook_url",
        &format!("{sink}/teams/sec"),
    );
    format!(
        r#"
[notifiers.ops]
type = "slack"
webhook_url_file = "{ops}"

[notifiers.security]
type = "slack"
min_severity = "HIGH"
webhook_url_file = "{security}"

[notifiers.teams]
type = "teams"

[notifiers.pager]
type = "pagerduty"
min_severity = "high"
events_url = "{sink}/pagerduty/enqueue"

[notifiers.soar]
type = "webhook"
url = "{sink}/webhook/soar"
secret_file = "{secret}"
categories = ["iam-change"]
headers = {{ "X-Team" = "security" }}
"#,
        ops = secret_file(dir, "ops.url", &format!("{sink}/slack/ops")),
        security = secret_file(dir, "security.url", &format!("{sink}/slack/security")),
        secret = secret_file(dir, "soar.secret", WEBHOOK_SECRET),
    )
}

/// The environment the daemon gets: one secret by variable, one as a systemd credential.
fn env(dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        (
            "IAMWATCHD__NOTIFIERS__PAGER__ROUTING_KEY",
            ROUTING_KEY.to_owned(),
        ),
        (
            "CREDENTIALS_DIRECTORY",
            dir.join("credentials").display().to_string(),
        ),
    ]
}

/// The accepted (2xx) posts to `path`, as how many carried each event ID of `ids`.
fn delivered(emulator: &Emulator, path: &str, ids: &[&str]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in emulator.http_requests() {
        let status = request["status"].as_u64().unwrap_or(0);
        if !request["path"].as_str().unwrap_or("").starts_with(path) || status >= 300 {
            continue;
        }
        let body = request["body"].as_str().unwrap_or("");
        for id in ids {
            if body.contains(id) {
                *counts.entry((*id).to_owned()).or_insert(0) += 1;
            }
        }
    }
    counts
}

fn once_each(ids: &[&str]) -> BTreeMap<String, usize> {
    ids.iter().map(|id| ((*id).to_owned(), 1)).collect()
}

fn answer_429(retry_after: u64) -> Value {
    json!({"status": 429, "headers": {"Retry-After": retry_after.to_string()},
           "body": {"ok": false, "error": "rate_limited", "retry_after": retry_after}})
}

#[tokio::test]
async fn each_notifier_gets_what_its_route_takes_exactly_once_across_a_429_storm_and_a_crash() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    emulator.http_secret("/webhook/soar", WEBHOOK_SECRET);
    // A 429 storm on one Slack channel from the start.
    emulator.http_script(
        "/slack/ops",
        json!([answer_429(1), answer_429(1), answer_429(1)]),
    );
    let config = write_config(dir.path(), &emulator, &notifiers(&emulator, dir.path()));
    let env = env(dir.path());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The changes are an IAM user's: root's own calls are root use (HIGH), which would lift
    // the LOW tag change above every route's minimum.
    let iam = Iam::new(&emulator.sdk_config_of_new_user("alice").await);

    let mut daemon = Daemon::spawn_with_env(&emulator, dir.path(), &config, &env);
    iam.create_user().user_name("bob").send().await.unwrap(); // HIGH
    iam.tag_user()
        .user_name("bob")
        .tags(
            Tag::builder()
                .key("team")
                .value(HOSTILE_TAG)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap(); // LOW
    let created = event_id_of(&emulator, "CreateUser").await;
    let tagged = event_id_of(&emulator, "TagUser").await;
    let both = [created.as_str(), tagged.as_str()];
    let high = [created.as_str()];
    wait_until(
        "the first two changes on every notifier its route allows",
        || {
            (delivered(&emulator, "/slack/ops", &both) == once_each(&both)
                && delivered(&emulator, "/slack/security", &both) == once_each(&high)
                && delivered(&emulator, "/teams/sec", &both) == once_each(&both)
                && delivered(&emulator, "/pagerduty", &both) == once_each(&high)
                && delivered(&emulator, "/webhook/soar", &both) == once_each(&both))
            .then_some(())
        },
    )
    .await;

    wait_until("two mails", || {
        (mails_about(&emulator, "bob").len() == 2).then_some(())
    })
    .await;

    // Every platform throttles (and mail is down); a CRITICAL change is queued behind it; the
    // daemon is killed.
    for path in ["/slack", "/teams", "/pagerduty", "/webhook"] {
        emulator.http_default(path, answer_429(3));
    }
    let (status, _) = emulator.control("POST", "smtp", r#"{"paused": true}"#);
    assert_eq!(status, 200);
    iam.attach_user_policy()
        .user_name("bob")
        .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
        .send()
        .await
        .unwrap();
    let attached = event_id_of(&emulator, "AttachUserPolicy").await;
    wait_until("the CRITICAL change refused once by PagerDuty", || {
        emulator
            .http_requests()
            .iter()
            .any(|r| r["status"] == 429 && r["body"].as_str().unwrap_or("").contains(&attached))
            .then_some(())
    })
    .await;
    assert!(seen_in_store(dir.path(), &attached));
    daemon.kill();

    emulator.http_reset();
    emulator.http_secret("/webhook/soar", WEBHOOK_SECRET);
    let (status, _) = emulator.control("POST", "smtp", r#"{"paused": false}"#);
    assert_eq!(status, 200);
    let mut daemon = Daemon::spawn_with_env(&emulator, dir.path(), &config, &env);
    let all = [created.as_str(), tagged.as_str(), attached.as_str()];
    let high = [created.as_str(), attached.as_str()];
    wait_until(
        "the queued CRITICAL change on every notifier after the restart",
        || {
            (delivered(&emulator, "/slack/security", &all) == once_each(&high)
                && delivered(&emulator, "/slack/ops", &all) == once_each(&all)
                && delivered(&emulator, "/teams/sec", &all) == once_each(&all)
                && delivered(&emulator, "/pagerduty", &all) == once_each(&high)
                && delivered(&emulator, "/webhook/soar", &all) == once_each(&all))
            .then_some(())
        },
    )
    .await;
    wait_until("three mails", || {
        (mails_about(&emulator, "bob").len() == 3).then_some(())
    })
    .await;
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.log());

    let requests = emulator.http_requests();
    for request in &requests {
        assert_eq!(request["problems"], json!([]), "{request:#}");
    }
    let throttled = requests
        .iter()
        .filter(|r| r["path"] == "/slack/ops" && r["status"] == 429)
        .count();
    assert!(throttled >= 3, "the storm happened: {throttled}");
    let webhooks: Vec<&Value> = requests
        .iter()
        .filter(|r| r["path"] == "/webhook/soar" && r["status"] == 200)
        .filter(|r| {
            all.iter()
                .any(|id| r["body"].as_str().unwrap_or("").contains(id))
        })
        .collect();
    assert!(webhooks.iter().all(|r| r["signature_verified"] == true));
    assert!(webhooks
        .iter()
        .all(|r| r["headers"]["x-team"] == "security"));
    let ids: Vec<&str> = webhooks
        .iter()
        .map(|r| r["headers"]["webhook-id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    let retried_ids: Vec<&str> = requests
        .iter()
        .filter(|r| r["path"] == "/webhook/soar" && r["status"] == 429)
        .map(|r| r["headers"]["webhook-id"].as_str().unwrap())
        .collect();
    assert!(
        retried_ids.iter().all(|id| *id == attached),
        "webhook-id is stable"
    );
    let pager: Vec<Value> = requests
        .iter()
        .filter(|r| r["path"] == "/pagerduty/enqueue" && r["status"] == 202)
        .map(|r| serde_json::from_str(r["body"].as_str().unwrap()).unwrap())
        .collect();
    let critical = pager
        .iter()
        .find(|e| e["dedup_key"] == attached.as_str())
        .unwrap();
    assert_eq!(critical["payload"]["severity"], "critical");
    assert_eq!(critical["routing_key"], ROUTING_KEY);
    // The hostile tag reached Slack as inert plain text.
    let tag_post = requests
        .iter()
        .find(|r| {
            r["path"] == "/slack/ops"
                && r["status"] == 200
                && r["body"].as_str().unwrap().contains(&tagged)
        })
        .unwrap();
    let body: Value = serde_json::from_str(tag_post["body"].as_str().unwrap()).unwrap();
    let text = body.to_string();
    assert!(text.contains("<!channel>"), "the value is shown: {text}");
    for block in body["blocks"].as_array().unwrap() {
        if block["text"]["type"] == "mrkdwn" {
            assert!(!block["text"]["text"].as_str().unwrap().contains('<'));
        }
    }
    let log = daemon.log();
    for secret in [
        ROUTING_KEY,
        "C2FVsBQIhrscChlQIMV",
        "/slack/ops",
        "/teams/sec",
    ] {
        assert!(!log.contains(secret), "the log shows {secret}");
    }
}

#[tokio::test]
async fn a_finding_no_route_takes_is_logged_and_counted_and_check_prints_the_routes() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let sink = emulator.http_url.clone().expect("HTTP sink");
    let port = crate::check::free_port();
    let extra = format!(
        "[notifiers.pager]\ntype = \"pagerduty\"\nmin_severity = \"CRITICAL\"\n\
         events_url = \"{sink}/pagerduty/enqueue\"\n\
         [metrics]\nlisten = \"127.0.0.1:{port}\"\n"
    );
    let config = write_config(dir.path(), &emulator, &extra);
    // Only PagerDuty, for CRITICAL: the [smtp] notifier the tests usually have is left out.
    let text = std::fs::read_to_string(&config).unwrap();
    let start = text.find("[smtp]").unwrap();
    let end = text.find("[delivery]").unwrap();
    std::fs::write(&config, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let key = [("IAMWATCHD__NOTIFIERS__PAGER__ROUTING_KEY", ROUTING_KEY)];

    let check = crate::cli::command(Some(&emulator.endpoint), dir.path())
        .envs(key)
        .args(["check", "--send-test", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&check.stdout);
    assert!(
        shown.contains("routing: pager (pagerduty) takes severity >= CRITICAL"),
        "{shown}"
    );
    assert!(
        shown.contains("notifier pager: test message sent"),
        "{shown}"
    );

    let daemon = Daemon::spawn_with_env(&emulator, dir.path(), &config, &key);
    let iam = Iam::new(&emulator.sdk_config().await);
    iam.create_group().group_name("quiet").send().await.unwrap(); // HIGH: below the route
    let id = event_id_of(&emulator, "CreateGroup").await;
    let metric = wait_until("the unrouted counter", || {
        let (_, body) = crate::check::try_get(port, "/metrics")?;
        body.lines()
            .find(|l| l.starts_with("iamwatchd_findings_unrouted_total "))
            .filter(|l| l.ends_with(" 1"))
            .map(str::to_owned)
    })
    .await;
    assert_eq!(metric, "iamwatchd_findings_unrouted_total 1");
    let log = daemon.plain_log();
    let line = log
        .lines()
        .find(|l| l.contains("no notifier's routing takes this finding"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(&id), "{line}");
    let posts = emulator.http_requests();
    assert_eq!(posts.len(), 1, "only check's test message: {posts:#?}");
}

#[tokio::test]
async fn a_slack_5xx_is_given_up_not_posted_twice_and_a_410_turns_a_webhook_off() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let sink = emulator.http_url.clone().expect("HTTP sink");
    emulator.http_script("/slack/ops", json!([{"status": 500}]));
    emulator.http_default("/webhook/gone", json!({"status": 410}));
    let extra = format!(
        "[notifiers.ops]\ntype = \"slack\"\nwebhook_url_file = \"{ops}\"\n\
         [notifiers.gone]\ntype = \"webhook\"\nurl = \"{sink}/webhook/gone\"\n\
         secret_file = \"{secret}\"\n",
        ops = secret_file(dir.path(), "ops.url", &format!("{sink}/slack/ops")),
        secret = secret_file(dir.path(), "gone.secret", WEBHOOK_SECRET),
    );
    let mut daemon = Daemon::start(&emulator, dir.path(), &extra);
    let iam = Iam::new(&emulator.sdk_config().await);
    iam.create_group().group_name("first").send().await.unwrap();
    let first = event_id_of(&emulator, "CreateGroup").await;
    wait_until("the 5xx given up and the 410 logged", || {
        let log = daemon.plain_log();
        (log.contains("notification given up") && log.contains("410 Gone")).then_some(())
    })
    .await;
    iam.create_user().user_name("second").send().await.unwrap();
    let second = event_id_of(&emulator, "CreateUser").await;
    wait_until("the second change on Slack and by mail", || {
        (delivered(&emulator, "/slack/ops", &[&second]) == once_each(&[&second])
            && mails_about(&emulator, "CreateUser").len() == 1)
            .then_some(())
    })
    .await;
    assert_eq!(daemon.stop().code(), Some(0), "{}", daemon.log());
    let requests = emulator.http_requests();
    let slack_first = requests
        .iter()
        .filter(|r| r["path"] == "/slack/ops" && r["body"].as_str().unwrap().contains(&first))
        .count();
    assert_eq!(
        slack_first, 1,
        "a post that may have landed is not repeated"
    );
    let gone = requests
        .iter()
        .filter(|r| r["path"] == "/webhook/gone")
        .count();
    assert_eq!(gone, 1, "nothing is posted after a 410 until a restart");
    let log = daemon.plain_log();
    assert!(
        log.contains("it may have been posted, so it is not retried"),
        "{log}"
    );
    assert!(log.contains("off until iamwatchd restarts"), "{log}");
}
