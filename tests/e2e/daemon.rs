//! The real `iamwatchd run` as a child process against the emulator, shared by the tests of
//! `run`, the alarm path, `check` and metrics: its own state directory and configuration
//! pointed at the emulator and its SMTP sink, stopped like systemd stops it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::emulator::{header_fields, values, Emulator};

pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

/// A running daemon with its own state directory and configuration.
pub(crate) struct Daemon {
    child: Option<Child>,
    dir: PathBuf,
    log: PathBuf,
}

/// The configuration tests run with: fast polling, plaintext SMTP to the sink, short backoff.
pub(crate) fn write_config(dir: &Path, emulator: &Emulator, extra: &str) -> PathBuf {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let config = config_text(&state.display().to_string(), emulator, extra);
    let path = dir.join("iamwatchd.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// [`write_config`]'s text, with the state directory as the daemon will see it (the container
/// test's is a volume inside the container).
pub(crate) fn config_text(state: &str, emulator: &Emulator, extra: &str) -> String {
    format!(
        r#"
[aws]
region = "us-east-1"

[poller]
requests_per_second = 2.0
poll_interval = "1s"
short_window = "3s"
sweep_interval = "2s"
sweep_horizon = "2m"
start_from = "10m"

[store]
state_directory = "{state}"

[smtp]
host = "127.0.0.1"
port = {port}
tls = "none"
allow_plaintext = true
from = "iamwatchd <iamwatchd@example.com>"
to = ["security@example.com"]
timeout = "5s"

[delivery]
initial_backoff = "200ms"
max_backoff = "1s"

[log]
level = "iamwatchd=debug,info"
{extra}
"#,
        port = emulator.smtp_port.expect("SMTP sink"),
    )
}

impl Daemon {
    pub(crate) fn start(emulator: &Emulator, dir: &Path, extra: &str) -> Daemon {
        let config = write_config(dir, emulator, extra);
        Daemon::spawn(emulator, dir, &config)
    }

    pub(crate) fn spawn(emulator: &Emulator, dir: &Path, config: &Path) -> Daemon {
        Daemon::spawn_with_env(emulator, dir, config, &[])
    }

    /// Like [`Daemon::spawn`], with extra environment variables (secrets, systemd's).
    pub(crate) fn spawn_with_env(
        emulator: &Emulator,
        dir: &Path,
        config: &Path,
        env: &[(&str, &str)],
    ) -> Daemon {
        let log = dir.join(format!("daemon-{}.log", std::process::id()));
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = crate::cli::command(Some(&emulator.endpoint), dir)
            .envs(env.iter().copied())
            .arg("run")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start iamwatchd run");
        Daemon {
            child: Some(child),
            dir: dir.to_owned(),
            log,
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the daemon has opened its store and started every path, so a test may
    /// read the store beside it (opening it first would race the daemon's schema migration).
    pub(crate) async fn ready(&self) {
        wait_until("the daemon running", || {
            self.log().contains("iamwatchd is running").then_some(())
        })
        .await;
    }

    /// The log without terminal colour codes, for matching `field=value`.
    pub(crate) fn plain_log(&self) -> String {
        let log = self.log();
        let mut plain = String::with_capacity(log.len());
        let mut chars = log.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // CSI: ESC [ parameters final-byte
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                plain.push(c);
            }
        }
        plain
    }

    /// SIGTERM, as systemd stops it; returns the exit status.
    pub(crate) fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap()
    }

    /// SIGKILL: a crash, no chance to finish anything.
    pub(crate) fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("daemon log:\n{}", self.log());
        }
        let _ = &self.dir;
    }
}

/// The mail whose headers carry this event name, from the sink.
pub(crate) fn mails_about(emulator: &Emulator, needle: &str) -> Vec<String> {
    emulator
        .mail()
        .into_iter()
        .filter(|m| m.contains(needle))
        .collect()
}

pub(crate) async fn wait_until<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    wait_until_within(DEADLINE, what, check).await
}

/// [`wait_until`] for conditions that legitimately take longer than [`DEADLINE`].
pub(crate) async fn wait_until_within<T>(
    deadline: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await; // condition polling interval
    }
}

/// One header field of a stored mail, unfolded (encoded words left as they are).
pub(crate) fn header(mail: &str, name: &str) -> Option<String> {
    let fields = header_fields(mail);
    values(&fields, &name.to_ascii_lowercase())
        .first()
        .map(|v| (*v).to_owned())
}

/// The eventID CloudTrail gave the (only) call named `event_name`.
pub(crate) async fn event_id_of(emulator: &Emulator, event_name: &str) -> String {
    use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
    let trail = aws_sdk_cloudtrail::Client::new(&emulator.sdk_config().await);
    let page = trail
        .lookup_events()
        .lookup_attributes(
            LookupAttribute::builder()
                .attribute_key(LookupAttributeKey::EventName)
                .attribute_value(event_name)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    page.events()[0].event_id().unwrap().to_owned()
}

/// Whether the daemon's store has recorded the event (read beside the running daemon).
pub(crate) fn seen_in_store(dir: &Path, event_id: &str) -> bool {
    let store = iamwatchd::store::Store::open(&dir.join("state")).expect("open the store");
    store.seen(event_id).expect("read the store").is_some()
}

/// How many of `notifier`'s messages the daemon's store has marked sent (read beside the
/// running daemon, read-only): a test that kills the daemon after seeing messages arrive waits
/// for this first, or the kill may land between the sink's accepting one and the daemon's
/// recording it, and the restart sends it again (a duplicate the test did not set out to make).
pub(crate) fn sent_in_store(dir: &Path, notifier: &str) -> usize {
    let db = dir.join("state").join("iamwatchd.sqlite3");
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the store read-only");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.query_row(
        "SELECT count(*) FROM outbox WHERE notifier = ?1 AND sent_at IS NOT NULL",
        [notifier],
        |r| r.get::<_, i64>(0),
    )
    .expect("count the sent messages") as usize
}
