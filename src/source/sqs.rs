//! The one SQS consumer loop: long-poll a queue, hand each message to its handler, and delete a
//! message only after the handler's work is committed. A message whose work failed is left
//! alone (it becomes visible again after its processing visibility and is tried again: the
//! store's dedup by eventID makes that harmless); one that cannot be read is hidden for a long
//! while, so it is not read again at once: the queue's redrive policy (or the
//! age-of-oldest-message alarm) makes it visible to a human.

use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::Message;
use tokio_util::sync::CancellationToken;

/// The AWS actions this module calls (the daemon's policy, `deploy/iamwatchd-policy.json`,
/// must allow exactly the union of every module's list; `src/aws/actions.rs` enforces it).
#[cfg(test)]
pub(crate) const ACTIONS: &[&str] = &[
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
];

/// What SQS calls in KMS on the reader's behalf: the stack's queue is encrypted with its KMS
/// key, and ReceiveMessage decrypts with the caller's permissions. Not an SDK call of this file
/// (so not in `ACTIONS`); `src/aws/actions.rs` lists it among the implied actions.
#[cfg(test)]
pub(crate) const KMS_ACTIONS: &[&str] = &["kms:Decrypt"];

/// SQS long polling. A receive in flight is finished, not dropped, at shutdown: a dropped one
/// can still take a message server-side and hide it for the visibility timeout. So this also
/// bounds how long a consumer delays a stop.
const WAIT_SECONDS: i32 = 10;

/// How long a received message stays hidden while it is processed; reading a window of a log
/// group takes seconds, so this leaves room for throttling and retries.
const PROCESSING_VISIBILITY_SECONDS: i32 = 120;

/// How long an unreadable message stays hidden before it is tried (and logged) again.
pub(crate) const UNREADABLE_VISIBILITY: Duration = Duration::from_secs(3600);

/// After a failed ReceiveMessage, wait this long before the next one.
const RECEIVE_RETRY: Duration = Duration::from_secs(5);

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    /// Its work is committed: delete it.
    Done,
    /// Its work failed: leave it, it is read again after its visibility timeout.
    Failed,
    /// It cannot be read: hide it for [`UNREADABLE_VISIBILITY`].
    Unreadable,
}

/// A queue and the client of its region.
pub(crate) struct Queue {
    pub(crate) client: aws_sdk_sqs::Client,
    pub(crate) url: String,
}

impl Queue {
    /// Long-polls the queue until `stop` fires, handing each message to `handle`; the receive
    /// in flight and the messages it brought are finished first (at most the long poll plus
    /// their processing). `what` names the queue in log lines.
    pub(crate) async fn consume<F, Fut>(&self, what: &str, stop: CancellationToken, mut handle: F)
    where
        F: FnMut(Message) -> Fut,
        Fut: Future<Output = Handled>,
    {
        while !stop.is_cancelled() {
            let received = self
                .client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(10)
                .wait_time_seconds(WAIT_SECONDS)
                .visibility_timeout(PROCESSING_VISIBILITY_SECONDS)
                .send()
                .await;
            let messages = match received {
                Ok(output) => output.messages.unwrap_or_default(),
                Err(error) => {
                    tracing::error!(queue = %self.url, error = %DisplayErrorContext(&error),
                        "cannot read the {what} queue; retrying in {RECEIVE_RETRY:?}");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(RECEIVE_RETRY) => continue,
                    }
                }
            };
            for message in messages {
                let id = message.message_id().unwrap_or("unknown").to_owned();
                let Some(receipt) = message.receipt_handle().map(str::to_owned) else {
                    tracing::error!(message_id = id, "{what} message without a receipt handle");
                    continue;
                };
                match handle(message).await {
                    Handled::Done => self.delete(&id, &receipt, what).await,
                    Handled::Failed => {}
                    Handled::Unreadable => self.hide(&id, &receipt).await,
                }
            }
        }
    }

    async fn delete(&self, id: &str, receipt: &str, what: &str) {
        let deleted = self
            .client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await;
        if let Err(error) = deleted {
            // Harmless: re-processing finds everything already recorded.
            tracing::warn!(message_id = id, error = %DisplayErrorContext(&error),
                "cannot delete the processed {what} message; it will be processed again");
        }
    }

    async fn hide(&self, id: &str, receipt: &str) {
        let hidden = self
            .client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(UNREADABLE_VISIBILITY.as_secs() as i32)
            .send()
            .await;
        if let Err(error) = hidden {
            tracing::warn!(message_id = id, error = %DisplayErrorContext(&error),
                "cannot hide the unreadable message; it is read again soon");
        }
    }
}
