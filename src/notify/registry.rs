//! The one factory: the configured notifier sections become built notifiers, each under its
//! configured name (the outbox, the metrics and the logs know a notifier by that name).

use std::sync::Arc;

use super::smtp::{SmtpNotifier, SmtpTls};
use super::sns::SnsNotifier;
use super::{Notifier, NotifyError};
use crate::config::{self, Config};

/// The notifiers the configuration names, built and ready to send (nothing is contacted: see
/// each notifier's health check).
pub async fn build(config: &Config) -> Result<Vec<Arc<dyn Notifier>>, NotifyError> {
    let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
    if let Some(smtp) = &config.smtp {
        let settings = super::smtp::SmtpConfig {
            host: smtp.host.clone(),
            port: smtp.port,
            tls: match smtp.tls {
                config::SmtpTls::Starttls => SmtpTls::StartTlsRequired,
                config::SmtpTls::Implicit => SmtpTls::Implicit,
                config::SmtpTls::None => SmtpTls::None,
            },
            allow_plaintext: smtp.tls == config::SmtpTls::None,
            ca_file: smtp.ca_file.clone(),
            username: smtp.auth.as_ref().map(|a| a.username.clone()),
            password: smtp.auth.as_ref().map(|a| a.password.expose().to_owned()),
            from: smtp.from.clone(),
            to: smtp.to.clone(),
            timeout: smtp.timeout,
        };
        notifiers.push(Arc::new(SmtpNotifier::new("smtp", &settings)?));
    }
    if let Some(sns) = &config.sns {
        let sdk = crate::aws::loader(&sns.region, config.aws.max_attempts)
            .load()
            .await;
        notifiers.push(Arc::new(SnsNotifier::new("sns", &sns.topic_arn, &sdk)?));
    }
    Ok(notifiers)
}
