//! Every change of the last days from LookupEvents, for `scan --since`.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use super::budget::Budget;
use super::lookup::{fetch_window, Lookup, LookupError, Reader, Window};
use crate::event::Record;

/// Every record of the last `since` in `region` that the catalogue could report (IAM and every
/// group's lookups), oldest first, read within a budget of `requests_per_second` (for
/// `scan --since`).
pub async fn history(
    region: &str,
    since: Duration,
    requests_per_second: f64,
) -> Result<Vec<Record>, LookupError> {
    let sdk = crate::aws::loader(region, 1).load().await;
    let reader = Reader::own(aws_sdk_cloudtrail::Client::new(&sdk));
    let budget = Budget::new(requests_per_second);
    let now = Utc::now();
    let window = Window {
        start: now
            - TimeDelta::from_std(since.min(crate::aws::LOOKUP_EVENTS_RETENTION))
                .unwrap_or_default(),
        end: now,
    };
    let mut lookups = vec![Lookup::EventSource(crate::rules::IAM_EVENT_SOURCE.into())];
    for lookup in crate::rules::GROUPS.iter().flat_map(Lookup::of_group) {
        if !lookups.contains(&lookup) {
            lookups.push(lookup);
        }
    }
    let never = CancellationToken::new();
    let mut records = Vec::new();
    for lookup in lookups {
        let fetched = fetch_window(&reader, region, &budget, &lookup, window, &never).await?;
        records.extend(fetched.records);
    }
    // A record two lookups find (the root user's IAM call) is one record.
    records.sort_by(|a, b| (a.event_time, &a.event_id).cmp(&(b.event_time, &b.event_id)));
    records.dedup_by(|a, b| a.event_id == b.event_id);
    Ok(records)
}
