//! The delivery worker's tests: paused time, a counting notifier, a real store.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use crate::event::SeenBy;
use crate::source::cloudtrail::stream::Counters;
use crate::store::testing::{event, open};
use crate::store::Notification;

/// A notifier that accepts everything and counts what it was sent.
#[derive(Default)]
struct Counting(AtomicUsize);

#[async_trait]
impl Notifier for Counting {
    fn name(&self) -> &str {
        "n"
    }
    async fn send(&self, _message: &Message) -> Result<(), NotifyError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn healthcheck(&self) -> Result<(), NotifyError> {
        Ok(())
    }
}

/// A notification of a test message for notifier `n`.
fn note() -> Notification {
    let message = Message::for_test("HIGH", "iam-change", "CreateUser");
    Notification {
        notifier: "n".to_owned(),
        payload: serde_json::to_vec(&message).unwrap(),
        burst: None,
    }
}

/// `notifier`'s delivery worker on `store`, with `in_flight` sends at once; stopped by the
/// token.
fn worker(
    notifier: Arc<dyn Notifier>,
    store: SharedStore,
    in_flight: usize,
) -> (tokio::task::JoinHandle<()>, CancellationToken) {
    let metrics = Arc::new(Metrics::new(
        Arc::new(Counters::default()),
        &["n".to_owned()],
        Duration::from_secs(60),
    ));
    let stop = CancellationToken::new();
    let worker = tokio::spawn(deliver(
        notifier,
        None,
        store,
        Arc::new(Notify::new()),
        Pace {
            backoff: (Duration::from_millis(200), Duration::from_secs(1)),
            in_flight,
        },
        metrics,
        stop.clone(),
    ));
    (worker, stop)
}

#[tokio::test(start_paused = true)]
async fn a_sent_row_the_store_cannot_record_is_not_sent_again() {
    // Found by the soak (scripts/soak): on a full or read-only state directory every
    // delivery round sent the same messages again, once a second, to every notifier.
    let (_dir, mut store) = open();
    store
        .record_event(&event("e1", SeenBy::Poller, 0), &[note()])
        .unwrap();
    store.set_query_only(true);
    let store = SharedStore::new(store);
    let notifier = Arc::new(Counting::default());
    let (worker, stop) = worker(notifier.clone(), store.clone(), DEFAULT_IN_FLIGHT);
    // Thirty delivery ticks with the store refusing every write (paused time).
    tokio::time::sleep(DELIVERY_TICK * 30).await;
    assert_eq!(
        notifier.0.load(Ordering::SeqCst),
        1,
        "sent once, not once a tick"
    );
    store
        .with(|s| {
            s.set_query_only(false);
            Ok(())
        })
        .await
        .unwrap();
    tokio::time::sleep(RECORD_SENT_RETRY * 3).await;
    let due = store.with(|s| s.due("n", Utc::now(), 10)).await.unwrap();
    assert!(
        due.is_empty(),
        "recorded as sent once the store could write: {due:?}"
    );
    tokio::time::sleep(DELIVERY_TICK * 5).await;
    assert_eq!(notifier.0.load(Ordering::SeqCst), 1);
    stop.cancel();
    worker.await.unwrap();
}

#[test]
fn backoff_doubles_from_the_initial_delay_to_the_cap() {
    let defaults = (defaults::INITIAL_BACKOFF, defaults::MAX_BACKOFF);
    let secs: Vec<u64> = (0..12)
        .map(|n| backoff_with(n, defaults.0, defaults.1).as_secs())
        .collect();
    assert_eq!(secs, [5, 5, 10, 20, 40, 80, 160, 300, 300, 300, 300, 300]);
    assert_eq!(
        backoff_with(u32::MAX, defaults.0, defaults.1),
        Duration::from_secs(300)
    );
    assert_eq!(
        backoff_with(3, Duration::from_millis(100), Duration::from_secs(1)),
        Duration::from_millis(400)
    );
}

/// A notifier that counts how many sends it has in flight at once (each takes a second).
#[derive(Default)]
struct Slow {
    now: AtomicUsize,
    most: AtomicUsize,
    sent: AtomicUsize,
}

#[async_trait]
impl Notifier for Slow {
    fn name(&self) -> &str {
        "n"
    }

    async fn send(&self, _message: &Message) -> Result<(), NotifyError> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        self.sent.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn healthcheck(&self) -> Result<(), NotifyError> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn sends_in_flight_are_bounded_by_the_setting_one_by_default() {
    for (in_flight, most) in [(DEFAULT_IN_FLIGHT, 1), (4, 4)] {
        let (_dir, mut store) = open();
        for i in 0..8 {
            store
                .record_event(&event(&format!("e{i}"), SeenBy::Poller, 0), &[note()])
                .unwrap();
        }
        let notifier = Arc::new(Slow::default());
        let (worker, stop) = worker(notifier.clone(), SharedStore::new(store), in_flight);
        tokio::time::sleep(Duration::from_secs(20)).await;
        stop.cancel();
        worker.await.unwrap();
        assert_eq!(notifier.sent.load(Ordering::SeqCst), 8);
        assert_eq!(
            notifier.most.load(Ordering::SeqCst),
            most,
            "in_flight = {in_flight}"
        );
    }
}

#[test]
fn in_flight_is_one_unless_set_within_its_bounds() {
    use crate::config::testing::{load_str, problem_at, problems, MINIMAL};
    assert_eq!(load_str(MINIMAL, &[]).unwrap().delivery.in_flight, 1);
    let four = load_str(&format!("{MINIMAL}[delivery]\nin_flight = 4\n"), &[]).unwrap();
    assert_eq!(four.delivery.in_flight, 4);
    for bad in ["0", "9", "-1"] {
        let found = problems(&format!("{MINIMAL}[delivery]\nin_flight = {bad}\n"));
        assert!(problem_at(&found, "delivery.in_flight")
            .message
            .contains("crash"));
    }
}
