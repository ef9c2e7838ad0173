//! The Prometheus text exposition (format 0.0.4) of [`Metrics`]: every series with its HELP and
//! TYPE lines, label values escaped.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Metrics, NotifierCounters, LAG_BUCKETS_SECONDS};
use crate::source::cloudtrail::stream::Counters;
use crate::store::Stats;

impl Metrics {
    /// The Prometheus text exposition (format 0.0.4) of every metric; the store's numbers
    /// when it could be read.
    pub(crate) fn render(&self, stats: Option<&Stats>) -> String {
        let mut out = String::new();
        let c = &self.poller;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counters: [(&str, &str, u64); 8] = [
            (
                "iamwatchd_poll_passes_total",
                "LookupEvents passes completed (fast passes and sweeps).",
                load(&c.passes),
            ),
            (
                "iamwatchd_poll_pages_total",
                "LookupEvents pages read.",
                load(&c.pages),
            ),
            (
                "iamwatchd_poll_throttled_total",
                "LookupEvents calls answered with ThrottlingException.",
                load(&c.throttled),
            ),
            (
                "iamwatchd_poll_failed_passes_total",
                "Passes that failed (read or store); the next sweep covers their window.",
                load(&c.failed_passes),
            ),
            (
                "iamwatchd_poll_refetched_events_total",
                "Events read again that were already seen (the cost of overlapping windows).",
                load(&c.events_refetched),
            ),
            (
                "iamwatchd_poll_reads_dropped_total",
                "Read-only events LookupEvents returned and the poller dropped.",
                load(&c.reads_dropped),
            ),
            (
                "iamwatchd_poll_malformed_total",
                "Events whose CloudTrail record could not be read.",
                load(&c.malformed),
            ),
            (
                "iamwatchd_poll_new_events_total",
                "Events the poller read for the first time.",
                load(&c.events_new),
            ),
        ];
        for (name, help, value) in counters {
            header(&mut out, name, help, "counter");
            let _ = writeln!(out, "{name} {value}");
        }

        self.render_accounts(&mut out);

        let name = "iamwatchd_build_info";
        header(
            &mut out,
            name,
            "The running build: its release and git commit (always 1).",
            "gauge",
        );
        let _ = writeln!(
            out,
            "{name}{{version=\"{}\",commit=\"{}\"}} 1",
            label(env!("CARGO_PKG_VERSION")),
            label(env!("IAMWATCHD_GIT_COMMIT"))
        );

        let name = "iamwatchd_last_successful_poll_timestamp_seconds";
        header(
            &mut out,
            name,
            "When each LookupEvents stream last completed a pass (every page read and stored), \
             in Unix seconds; a stream appears after its first.",
            "gauge",
        );
        for ((region, stream), at) in c.last_complete_passes() {
            let _ = writeln!(
                out,
                "{name}{{region=\"{}\",stream=\"{}\"}} {}",
                label(&region),
                label(&stream),
                at as f64 / 1000.0
            );
        }

        let name = "iamwatchd_events_reported_total";
        header(
            &mut out,
            name,
            "Reportable events seen for the first time, by the path that saw them first.",
            "counter",
        );
        for (path, counters) in &self.paths {
            let _ = writeln!(
                out,
                "{name}{{path=\"{path}\"}} {}",
                load(&counters.new_events)
            );
        }

        let name = "iamwatchd_detection_lag_seconds";
        header(
            &mut out,
            name,
            "Time from CloudTrail's eventTime to the daemon recording a reportable event.",
            "histogram",
        );
        for (path, counters) in &self.paths {
            let lag = &counters.lag;
            let mut cumulative = 0;
            for (i, bucket) in lag.buckets.iter().enumerate() {
                cumulative += load(bucket);
                let le = LAG_BUCKETS_SECONDS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "{name}_bucket{{path=\"{path}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let sum = load(&lag.sum_millis) as f64 / 1000.0;
            let _ = writeln!(out, "{name}_sum{{path=\"{path}\"}} {sum}");
            let _ = writeln!(out, "{name}_count{{path=\"{path}\"}} {}", load(&lag.count));
        }

        let per_notifier: [Series<'_, NotifierCounters>; 4] = [
            (
                "iamwatchd_notifications_sent_total",
                "Notifications a notifier accepted.",
                |c| &c.sent,
            ),
            (
                "iamwatchd_notifications_failed_total",
                "Delivery attempts that failed (retried with backoff).",
                |c| &c.failed,
            ),
            (
                "iamwatchd_digests_sent_total",
                "Digests of a burst a notifier accepted.",
                |c| &c.digests,
            ),
            (
                "iamwatchd_findings_digested_total",
                "Findings carried by the digests a notifier accepted.",
                |c| &c.digested,
            ),
        ];
        let notifiers: Vec<(&str, Option<&NotifierCounters>)> = self
            .notifiers
            .iter()
            .map(|(name, counters)| (name.as_str(), Some(counters)))
            .collect();
        labelled_counters(&mut out, "notifier", &per_notifier, &notifiers);

        let name = "iamwatchd_findings_unrouted_total";
        header(
            &mut out,
            name,
            "Findings no notifier's routing took (each also logged with its eventID).",
            "counter",
        );
        let _ = writeln!(out, "{name} {}", load(&self.unrouted));

        let Some(stats) = stats else {
            header(
                &mut out,
                "iamwatchd_store_up",
                "1 when the store could be read for this scrape.",
                "gauge",
            );
            out.push_str("iamwatchd_store_up 0\n");
            return out;
        };
        header(
            &mut out,
            "iamwatchd_store_up",
            "1 when the store could be read for this scrape.",
            "gauge",
        );
        out.push_str("iamwatchd_store_up 1\n");
        for (name, help, kind, counts) in [
            (
                "iamwatchd_notifications_pending",
                "Notifications queued and not yet sent.",
                "gauge",
                &stats.pending,
            ),
            (
                "iamwatchd_findings_held",
                "Findings held for their burst's digest (at most digest.max_delay).",
                "gauge",
                &stats.held,
            ),
            (
                "iamwatchd_notifications_given_up_total",
                "Notifications given up: after [delivery] max_age, or at once when a retry could \
                 deliver them twice (each also logged as an error).",
                "counter",
                &stats.given_up,
            ),
        ] {
            header(&mut out, name, help, kind);
            for notifier in self
                .notifiers
                .keys()
                .chain(counts.keys())
                .collect::<std::collections::BTreeSet<_>>()
            {
                let value = counts.get(notifier).copied().unwrap_or(0);
                let _ = writeln!(out, "{name}{{notifier=\"{}\"}} {value}", label(notifier));
            }
        }
        let name = "iamwatchd_store_events";
        header(
            &mut out,
            name,
            "Events in the store, by the path that saw them first.",
            "gauge",
        );
        for (path, n) in &stats.seen_by_path {
            let _ = writeln!(out, "{name}{{path=\"{path}\"}} {n}");
        }
        for (name, help, kind, value) in [
            (
                "iamwatchd_alarm_confirmations",
                "Stored events the alarm path confirmed after another path reported them.",
                "gauge",
                stats.confirmed_by_alarm,
            ),
            (
                "iamwatchd_store_size_bytes",
                "Size of the SQLite database and its write-ahead log.",
                "gauge",
                stats.db_size_bytes,
            ),
        ] {
            header(&mut out, name, help, kind);
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

impl Metrics {
    /// One series per member account (`[accounts]`): whether it is watched, and its poller's
    /// totals (the unlabelled `iamwatchd_poll_*` series are the daemon's own account).
    fn render_accounts(&self, out: &mut String) {
        let members = self.accounts.members();
        if members.is_empty() {
            return;
        }
        let name = "iamwatchd_account_watched";
        header(
            out,
            name,
            "1 while a member account's event history is read; 0 while its role cannot be \
             assumed (or before the first try).",
            "gauge",
        );
        for (account, account_name, member) in &members {
            let watched = u8::from(member.state == crate::accounts::AccountState::Watched);
            let _ = writeln!(
                out,
                "{name}{{account=\"{}\",name=\"{}\"}} {watched}",
                label(account),
                label(account_name.as_deref().unwrap_or(account))
            );
        }
        let series: [Series<'_, Counters>; 5] = [
            (
                "iamwatchd_account_poll_passes_total",
                "LookupEvents passes completed in a member account.",
                |c| &c.passes,
            ),
            (
                "iamwatchd_account_poll_pages_total",
                "LookupEvents pages read in a member account.",
                |c| &c.pages,
            ),
            (
                "iamwatchd_account_poll_throttled_total",
                "LookupEvents calls throttled in a member account.",
                |c| &c.throttled,
            ),
            (
                "iamwatchd_account_poll_failed_passes_total",
                "Passes that failed in a member account.",
                |c| &c.failed_passes,
            ),
            (
                "iamwatchd_account_poll_new_events_total",
                "Events read for the first time in a member account.",
                |c| &c.events_new,
            ),
        ];
        let accounts: Vec<(&str, Option<&Counters>)> = members
            .iter()
            .map(|(account, _, member)| (account.as_str(), member.counters.as_deref()))
            .collect();
        labelled_counters(out, "account", &series, &accounts);
        let name = "iamwatchd_account_last_successful_poll_timestamp_seconds";
        header(
            out,
            name,
            "When a member account's streams last completed a pass, in Unix seconds (the \
             oldest of its streams' last passes); an account appears after its first.",
            "gauge",
        );
        for (account, _, member) in &members {
            let oldest = member
                .counters
                .as_deref()
                .and_then(|c| c.last_complete_passes().into_values().min());
            if let Some(at) = oldest {
                let _ = writeln!(
                    out,
                    "{name}{{account=\"{}\"}} {}",
                    label(account),
                    at as f64 / 1000.0
                );
            }
        }
    }
}

/// One counter series: its name, its help text, and where its value is in `T`.
type Series<'a, T> = (&'a str, &'a str, fn(&T) -> &AtomicU64);

/// Counter series, each with a `key` label per row: a row without counters (yet) reads 0.
fn labelled_counters<T>(
    out: &mut String,
    key: &str,
    series: &[Series<'_, T>],
    rows: &[(&str, Option<&T>)],
) {
    for (name, help, pick) in series {
        header(out, name, help, "counter");
        for (value_of_key, counters) in rows {
            let value = counters.map_or(0, |c| pick(c).load(Ordering::Relaxed));
            let _ = writeln!(out, "{name}{{{key}=\"{}\"}} {value}", label(value_of_key));
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped as the exposition format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::event::SeenBy;
    use crate::metrics::testing::metrics;

    /// Every sample line's metric name has HELP and TYPE lines before it, and counters end in
    /// `_total`.
    fn assert_well_formed(text: &str) {
        let mut typed: BTreeMap<String, String> = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "{name}");
                }
                typed.insert(name.to_owned(), kind.to_owned());
            } else if !line.starts_with("# HELP ") {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| {
                        name.strip_suffix(s)
                            .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
                    })
                    .unwrap_or(name);
                assert!(typed.contains_key(family), "no TYPE before {line}");
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
    }

    #[test]
    fn each_member_account_has_its_labelled_series() {
        use crate::accounts::{AccountState, Roster};
        use crate::source::cloudtrail::stream::Counters;
        let roster = Roster::default();
        let m = metrics().with_roster(roster.clone());
        assert!(
            !m.render(None).contains("iamwatchd_account_"),
            "no [accounts]: no series"
        );
        roster.set_name("111122223333", "prod \"payments\"");
        roster.set_state("111122223333", AccountState::Watched);
        let counters = std::sync::Arc::new(Counters::default());
        counters.pages.fetch_add(7, Ordering::Relaxed);
        counters.last_complete_pass.lock().unwrap().extend([
            (("us-east-1".into(), "a".into()), 1_700_000_100_000),
            (("us-east-1".into(), "b".into()), 1_700_000_000_000),
        ]);
        roster.set_counters("111122223333", counters);
        roster.set_state("444455556666", AccountState::Failing("AccessDenied".into()));
        let text = m.render(None);
        assert_well_formed(&text);
        for line in [
            "iamwatchd_account_watched{account=\"111122223333\",name=\"prod \\\"payments\\\"\"} 1",
            "iamwatchd_account_watched{account=\"444455556666\",name=\"444455556666\"} 0",
            "iamwatchd_account_poll_pages_total{account=\"111122223333\"} 7",
            "iamwatchd_account_poll_pages_total{account=\"444455556666\"} 0",
            "iamwatchd_account_last_successful_poll_timestamp_seconds{account=\"111122223333\"} 1700000000",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("last_successful_poll_timestamp_seconds{account=\"444455556666\""));
    }

    #[test]
    fn renders_every_metric_with_help_type_and_labels() {
        let m = metrics();
        m.poller.passes.fetch_add(3, Ordering::Relaxed);
        m.poller.throttled.fetch_add(2, Ordering::Relaxed);
        m.notification_sent("smtp");
        m.notification_sent("smtp");
        m.notification_failed("ops\"mail");
        m.notification_sent("not-configured");
        m.new_event(SeenBy::Poller, Duration::from_secs(12));
        m.new_event(SeenBy::Poller, Duration::from_millis(500));
        m.new_event(SeenBy::Alarm, Duration::from_secs(7200));
        m.poller.last_complete_pass.lock().unwrap().insert(
            ("us-east-1".into(), "EventSource=iam.amazonaws.com".into()),
            1_700_000_000_500,
        );
        let stats = Stats {
            seen: 3,
            seen_by_path: [(SeenBy::Poller, 2), (SeenBy::Alarm, 1)].into(),
            confirmed_by_alarm: 1,
            pending: [("smtp".to_owned(), 4)].into(),
            given_up: [("gone".to_owned(), 1)].into(),
            held: [("smtp".to_owned(), 2)].into(),
            db_size_bytes: 4096,
        };
        let text = m.render(Some(&stats));
        assert_well_formed(&text);
        for line in [
            "iamwatchd_poll_passes_total 3",
            "iamwatchd_poll_throttled_total 2",
            "iamwatchd_notifications_sent_total{notifier=\"smtp\"} 2",
            "iamwatchd_notifications_failed_total{notifier=\"ops\\\"mail\"} 1",
            "iamwatchd_events_reported_total{path=\"poller\"} 2",
            "iamwatchd_detection_lag_seconds_bucket{path=\"poller\",le=\"1\"} 1",
            "iamwatchd_detection_lag_seconds_bucket{path=\"poller\",le=\"15\"} 2",
            "iamwatchd_detection_lag_seconds_bucket{path=\"poller\",le=\"+Inf\"} 2",
            "iamwatchd_detection_lag_seconds_sum{path=\"poller\"} 12.5",
            "iamwatchd_detection_lag_seconds_bucket{path=\"alarm\",le=\"3600\"} 0",
            "iamwatchd_detection_lag_seconds_bucket{path=\"alarm\",le=\"+Inf\"} 1",
            "iamwatchd_notifications_pending{notifier=\"smtp\"} 4",
            "iamwatchd_notifications_pending{notifier=\"ops\\\"mail\"} 0",
            "iamwatchd_notifications_given_up_total{notifier=\"gone\"} 1",
            "iamwatchd_alarm_confirmations 1",
            "iamwatchd_store_events{path=\"alarm\"} 1",
            "iamwatchd_store_size_bytes 4096",
            "iamwatchd_store_up 1",
            "iamwatchd_last_successful_poll_timestamp_seconds{region=\"us-east-1\",\
             stream=\"EventSource=iam.amazonaws.com\"} 1700000000.5",
            concat!(
                "iamwatchd_build_info{version=\"",
                env!("CARGO_PKG_VERSION"),
                "\",commit=\"",
                env!("IAMWATCHD_GIT_COMMIT"),
                "\"} 1"
            ),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("not-configured"));
    }

    #[test]
    fn without_the_store_only_its_up_gauge_says_so() {
        let text = metrics().render(None);
        assert_well_formed(&text);
        assert!(text.lines().any(|l| l == "iamwatchd_store_up 0"));
        assert!(!text.contains("iamwatchd_notifications_pending"));
    }
}
