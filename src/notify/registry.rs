//! The one factory: the configured notifiers become built notifiers, each under its
//! configured name (the outbox, the metrics and the logs know a notifier by that name). Adding
//! a notifier type is a folder with its config, a variant of
//! [`NotifierKind`](super::config::NotifierKind) and a line here.

use std::sync::Arc;

use super::chat::ChatNotifier;
use super::config::{NotifierConfig, NotifierKind};
use super::pagerduty::PagerDutyNotifier;
use super::route::Outlet;
use super::smtp::SmtpNotifier;
use super::sns::SnsNotifier;
use super::webhook::WebhookNotifier;
use super::{Notifier, NotifyError};

/// The notifiers of a configuration.
#[derive(Debug, Clone, Copy)]
pub struct Sections<'a> {
    /// Every configured notifier.
    pub notifiers: &'a [NotifierConfig],
    /// Attempts per AWS call (`aws.max_attempts`), for the notifiers that call AWS.
    pub max_attempts: u32,
}

impl Sections<'_> {
    /// Each notifier's name, route and digest settings, for the reporter.
    pub fn outlets(&self) -> Vec<Outlet> {
        self.notifiers
            .iter()
            .map(|n| Outlet {
                name: n.name.clone(),
                route: n.route.clone(),
                digest: n.digest,
            })
            .collect()
    }
}

/// The notifiers `sections` configure, built and ready to send (nothing is contacted: see
/// each notifier's health check).
pub async fn build(sections: Sections<'_>) -> Result<Vec<Arc<dyn Notifier>>, NotifyError> {
    let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
    for notifier in sections.notifiers {
        let name = notifier.name.as_str();
        let built: Arc<dyn Notifier> = match &notifier.kind {
            NotifierKind::Smtp(smtp) => Arc::new(SmtpNotifier::new(name, smtp)?),
            NotifierKind::Sns(sns) => {
                let sdk = crate::aws::loader(&sns.region, sections.max_attempts)
                    .load()
                    .await;
                Arc::new(SnsNotifier::new(name, &sns.topic_arn, &sdk)?)
            }
            NotifierKind::Chat(platform, chat) => {
                Arc::new(ChatNotifier::new(name, *platform, chat))
            }
            NotifierKind::PagerDuty(pagerduty) => Arc::new(PagerDutyNotifier::new(name, pagerduty)),
            NotifierKind::Webhook(webhook) => Arc::new(WebhookNotifier::new(name, webhook)),
        };
        notifiers.push(built);
    }
    Ok(notifiers)
}
