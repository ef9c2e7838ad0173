//! Every change of the last days from LookupEvents, for `scan --since`.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use super::budget::Budget;
use super::lookup::{fetch_window, Lookup, LookupError, Window};
use crate::event::Record;

/// Every IAM change and tampering record of the last `since` in `region`, oldest first, read
/// within a budget of `requests_per_second` (for `scan --since`).
pub async fn history(
    region: &str,
    since: Duration,
    requests_per_second: f64,
) -> Result<Vec<Record>, LookupError> {
    let sdk = crate::aws::loader(region, 1).load().await;
    let client = aws_sdk_cloudtrail::Client::new(&sdk);
    let budget = Budget::new(requests_per_second);
    let now = Utc::now();
    let window = Window {
        start: now
            - TimeDelta::from_std(since.min(crate::aws::LOOKUP_EVENTS_RETENTION))
                .unwrap_or_default(),
        end: now,
    };
    let lookups = std::iter::once(Lookup::EventSource(crate::rules::IAM_EVENT_SOURCE.into()))
        .chain(
            crate::rules::TAMPERING_EVENTS
                .iter()
                .map(|(_, name)| Lookup::EventName((*name).into())),
        );
    let never = CancellationToken::new();
    let mut records = Vec::new();
    for lookup in lookups {
        let fetched = fetch_window(&client, region, &budget, &lookup, window, &never).await?;
        records.extend(fetched.records);
    }
    records.sort_by_key(|r| r.event_time);
    Ok(records)
}
