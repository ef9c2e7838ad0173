//! The one factory: the configured notifier sections become built notifiers, each under its
//! configured name (the outbox, the metrics and the logs know a notifier by that name). Adding
//! a notifier type is a folder with its config and a line here.

use std::sync::Arc;

use super::smtp::{SmtpConfig, SmtpNotifier};
use super::sns::{SnsConfig, SnsNotifier};
use super::{Notifier, NotifyError};

/// The notifier sections of a configuration.
#[derive(Debug, Clone, Copy)]
pub struct Sections<'a> {
    /// `[smtp]`, when configured.
    pub smtp: Option<&'a SmtpConfig>,
    /// `[sns]`, when configured.
    pub sns: Option<&'a SnsConfig>,
    /// Attempts per AWS call (`aws.max_attempts`), for the notifiers that call AWS.
    pub max_attempts: u32,
}

/// The notifiers `sections` configure, built and ready to send (nothing is contacted: see
/// each notifier's health check).
pub async fn build(sections: Sections<'_>) -> Result<Vec<Arc<dyn Notifier>>, NotifyError> {
    let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(smtp) = sections.smtp {
        notifiers.push(Arc::new(SmtpNotifier::new("smtp", smtp)?));
    }
    if let Some(sns) = sections.sns {
        let sdk = crate::aws::loader(&sns.region, sections.max_attempts)
            .load()
            .await;
        notifiers.push(Arc::new(SnsNotifier::new("sns", &sns.topic_arn, &sdk)?));
    }
    Ok(notifiers)
}
