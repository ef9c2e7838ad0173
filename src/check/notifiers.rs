//! Each notifier: its health check, and with `--send-test` a clearly marked test message.

use super::{Options, Report, Status};
use crate::config::Config;
use crate::notify::render::test_message;

/// Each notifier's health check, and the test message when asked.
pub(super) async fn notifiers(
    config: &Config,
    options: Options,
    account: Option<&str>,
    report: &mut Report,
) {
    let built = match crate::notify::registry::build(config.notifiers()).await {
        Ok(built) => built,
        Err(error) => {
            report.fail(
                format!("notifiers: {error}"),
                "correct the notifier's section in the configuration",
            );
            return;
        }
    };
    if built.is_empty() {
        report.problem(
            Status::Warn,
            "notifiers: none configured — changes are recorded but nobody is told",
            "add a [notifiers.NAME] table (or an [smtp] or [sns] section)",
        );
    }
    // The routing table: which findings each notifier takes.
    for notifier in &config.notifiers {
        report.ok(format!(
            "routing: {} ({}) takes {}",
            notifier.name,
            notifier.kind.type_name(),
            notifier.route
        ));
    }
    for notifier in built {
        let name = notifier.name().to_owned();
        if let Err(error) = notifier.healthcheck().await {
            report.fail(
                format!("notifier {name}: not reachable: {error}"),
                "check the notifier's settings and that this machine can reach it (firewall, \
                 DNS, credentials)",
            );
            continue;
        }
        report.ok(format!("notifier {name}: reachable"));
        if options.send_test {
            match notifier
                .send(&test_message(account.unwrap_or("unknown")))
                .await
            {
                Ok(()) => report.ok(format!("notifier {name}: test message sent")),
                Err(error) => report.fail(
                    format!("notifier {name}: the test message failed: {error}"),
                    "check the notifier's settings (sender and recipients, topic permissions)",
                ),
            }
        }
    }
}
