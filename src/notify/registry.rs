//! The one factory: the configured notifier sections become built notifiers, each under its
//! configured name (the outbox, the metrics and the logs know a notifier by that name).

use std::sync::Arc;

use super::smtp::SmtpNotifier;
use super::sns::SnsNotifier;
use super::{Notifier, NotifyError};
use crate::config::Config;

/// The notifiers the configuration names, built and ready to send (nothing is contacted: see
/// each notifier's health check).
pub async fn build(config: &Config) -> Result<Vec<Arc<dyn Notifier>>, NotifyError> {
    let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(smtp) = &config.smtp {
        notifiers.push(Arc::new(SmtpNotifier::new("smtp", smtp)?));
    }
    if let Some(sns) = &config.sns {
        let sdk = crate::aws::loader(&sns.region, config.aws.max_attempts)
            .load()
            .await;
        notifiers.push(Arc::new(SnsNotifier::new("sns", &sns.topic_arn, &sdk)?));
    }
    Ok(notifiers)
}
