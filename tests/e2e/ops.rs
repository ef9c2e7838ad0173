//! What an operator meets around the daemon: exit statuses systemd acts on, the unit that
//! acts on them, the watchdog's pace, a state database that is damaged or in use, and the
//! command line's output into a pipe that closes early.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::Stdio;

use serde_json::json;

use crate::cli::{command, iamwatchd};
use crate::daemon::{wait_until, write_config, Daemon};
use crate::emulator::Emulator;

const UNIT: &str = include_str!("../../systemd/iamwatchd.service");

/// The value(s) of `key=` in `section` of the unit.
fn unit_values(section: &str, key: &str) -> Vec<String> {
    let mut current = "";
    let mut values = Vec::new();
    for line in UNIT.lines().map(str::trim) {
        if line.starts_with('[') {
            current = line;
        } else if current == section {
            if let Some(value) = line.strip_prefix(&format!("{key}=")) {
                values.push(value.to_owned());
            }
        }
    }
    values
}

#[test]
fn a_bad_configuration_exits_78_from_check_offline_and_from_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("iamwatchd.toml");
    std::fs::write(&config, "[poller]\npoll_interval = \"soon\"\n").unwrap();
    let config = config.to_str().unwrap();
    for args in [
        &["check", "--offline", "--config", config][..],
        &["run", "--config", config][..],
    ] {
        let run = iamwatchd(None, dir.path(), args);
        assert_eq!(run.code, Some(78), "{args:?}: {run:?}");
        assert!(run.stderr.contains("poller.poll_interval"), "{run:?}");
    }
    let missing = dir.path().join("missing.toml");
    let run = iamwatchd(
        None,
        dir.path(),
        &["run", "--config", missing.to_str().unwrap()],
    );
    assert_eq!(
        run.code,
        Some(78),
        "a missing file is a configuration error: {run:?}"
    );
}

/// The unit does not restart what a restart cannot fix (78, as the test above shows both
/// ExecStartPre's check and run exit; 65, a corrupt store), and bounds the restarts of the
/// rest; `systemd-analyze verify` accepts it (with the test's binary in place of
/// /usr/bin/iamwatchd) where systemd-analyze is installed (scripts/test installs it).
#[test]
fn the_unit_stops_restarting_what_a_restart_cannot_fix() {
    let prevented: Vec<String> = unit_values("[Service]", "RestartPreventExitStatus")
        .iter()
        .flat_map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    assert!(prevented.contains(&"78".to_owned()), "{prevented:?}");
    assert!(prevented.contains(&"65".to_owned()), "{prevented:?}");
    assert_eq!(unit_values("[Service]", "Restart"), ["on-failure"]);
    assert_eq!(unit_values("[Unit]", "StartLimitIntervalSec"), ["10min"]);
    assert_eq!(unit_values("[Unit]", "StartLimitBurst"), ["5"]);
    assert!(
        unit_values("[Service]", "StartLimitBurst").is_empty(),
        "start limits belong in [Unit]"
    );

    let Ok(output) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("systemd-analyze is not installed: verify skipped (scripts/test installs it)");
        return;
    };
    assert!(output.status.success());
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("iamwatchd.service");
    std::fs::write(
        &unit,
        UNIT.replace("/usr/bin/iamwatchd", env!("CARGO_BIN_EXE_iamwatchd")),
    )
    .unwrap();
    let verify = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{stderr}");
    assert!(!stderr.contains("iamwatchd.service:"), "{stderr}");
}

/// What the daemon sent to `NOTIFY_SOCKET` until now.
fn datagrams(socket: &UnixDatagram, seen: &mut Vec<String>) {
    let mut buffer = [0u8; 4096];
    while let Ok(n) = socket.recv(&mut buffer) {
        seen.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
    }
}

/// `WatchdogSec=` reaches the daemon as `WATCHDOG_USEC`: it pings at half of it. Without
/// it (no watchdog configured) it sends READY and STOPPING, and no ping between them.
#[tokio::test]
async fn watchdog_pings_follow_watchdog_usec_and_stop_without_it() {
    let emulator = Emulator::start();
    for watchdog in [Some("2000000"), None] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_nonblocking(true).unwrap();
        let config = write_config(dir.path(), &emulator, "");
        let notify = path.to_str().unwrap().to_owned();
        let mut env = vec![("NOTIFY_SOCKET", notify.as_str())];
        if let Some(usec) = watchdog {
            env.push(("WATCHDOG_USEC", usec));
        }
        let mut daemon = Daemon::spawn_with_env(&emulator, dir.path(), &config, &env);
        let mut seen = Vec::new();
        match watchdog {
            Some(_) => {
                // Pings at 1 s: two of them are there in about 2 s.
                wait_until("two watchdog pings", || {
                    datagrams(&socket, &mut seen);
                    (seen.iter().filter(|d| d.contains("WATCHDOG=1")).count() >= 2).then_some(())
                })
                .await;
            }
            None => {
                // Past READY and a completed poll pass: the old fixed 10 s tick pinged at once.
                wait_until("ready", || {
                    datagrams(&socket, &mut seen);
                    seen.iter().any(|d| d.contains("READY=1")).then_some(())
                })
                .await;
                wait_until("a poll pass", || {
                    daemon.log().contains("pass complete").then_some(())
                })
                .await;
            }
        }
        assert!(daemon.stop().success());
        datagrams(&socket, &mut seen);
        assert!(seen.iter().any(|d| d.contains("STOPPING=1")), "{seen:?}");
        if watchdog.is_none() {
            assert!(
                !seen.iter().any(|d| d.contains("WATCHDOG=1")),
                "no watchdog, no pings: {seen:?}"
            );
        }
    }
}

/// A garbage file: exit 65, the path and the fix named, the file untouched. A file another
/// connection holds exclusively (a second daemon, a stale lock): exit 75, said so.
#[tokio::test]
async fn a_corrupt_or_locked_state_database_stops_run_with_its_own_status_and_fix() {
    let emulator = Emulator::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &emulator, "");
    let file = dir.path().join("state").join("iamwatchd.sqlite3");
    let run = || {
        iamwatchd(
            Some(&emulator.endpoint),
            dir.path(),
            &["run", "--config", config.to_str().unwrap()],
        )
    };

    let garbage: Vec<u8> = (0..16384u32).map(|i| (i * 31 % 253) as u8).collect();
    std::fs::write(&file, &garbage).unwrap();
    let corrupt = run();
    assert_eq!(corrupt.code, Some(65), "{corrupt:?}");
    assert!(
        corrupt.stderr.contains(&file.display().to_string()),
        "{corrupt:?}"
    );
    assert!(
        corrupt.stderr.contains("restore it from a backup"),
        "{corrupt:?}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), garbage, "never re-created");

    std::fs::remove_file(&file).unwrap();
    iamwatchd::store::Store::open(&dir.path().join("state")).unwrap();
    let holder = rusqlite::Connection::open(&file).unwrap();
    holder
        .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;")
        .unwrap();
    let locked = run();
    assert_eq!(locked.code, Some(75), "{locked:?}");
    assert!(locked.stderr.contains("another iamwatchd"), "{locked:?}");
    assert!(
        locked.stderr.contains(&file.display().to_string()),
        "{locked:?}"
    );
    holder.execute_batch("COMMIT").unwrap();
}

/// `scan --files … | head -1`: the reader goes away after one line; the scan ends quietly
/// with status 0. The output is larger than a pipe's buffer, so later writes do meet the
/// closed pipe.
#[test]
fn scan_into_a_pipe_that_closes_early_ends_quietly_with_status_0() {
    let home = tempfile::tempdir().unwrap();
    let records: Vec<_> = (0..3000)
        .map(|i| {
            json!({"eventID": format!("e-{i:05}"), "eventSource": "iam.amazonaws.com",
                   "eventName": "CreateUser", "eventTime": "2026-12-01T10:00:00Z",
                   "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
                   "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice"},
                   "requestParameters": {"userName": format!("user-{i:05}-{}", "x".repeat(100))}})
        })
        .collect();
    let file = home.path().join("trail.json");
    std::fs::write(&file, json!({"Records": records}).to_string()).unwrap();
    let mut child = command(None, home.path())
        .args(["scan", "--json", "--files", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("e-"), "{first}");
    // The reader is gone (dropped above), as `head -1` exits.
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A directory link to its parent: every file once, the loop reported once, status 0.
#[test]
fn scan_files_reports_a_symlink_loop_once_and_goes_on() {
    let home = tempfile::tempdir().unwrap();
    let logs = home.path().join("AWSLogs");
    let day = logs.join("2026").join("12");
    std::fs::create_dir_all(&day).unwrap();
    let record = json!({"Records": [{"eventID": "loop-1", "eventSource": "iam.amazonaws.com",
        "eventName": "CreateUser", "eventTime": "2026-12-01T10:00:00Z",
        "requestParameters": {"userName": "bob"}}]});
    std::fs::write(day.join("a.json"), record.to_string()).unwrap();
    std::os::unix::fs::symlink("../..", day.join("up")).unwrap();
    let run = iamwatchd(
        None,
        home.path(),
        &["scan", "--json", "--files", logs.to_str().unwrap()],
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout.lines().count(), 1, "{run:?}");
    assert_eq!(
        run.stderr.matches("symbolic link loop").count(),
        1,
        "{run:?}"
    );
    assert!(
        run.stderr.contains(&day.join("up").display().to_string()),
        "{run:?}"
    );
}
