//! The ways people install iamwatchd, built and used as they would be: the container image
//! (`scripts/image`, the unchanged Dockerfile) run against the emulator, and the Debian package
//! (`scripts/deb`) installed, upgraded and removed in a clean Debian container.
//!
//! The two big tests need root and podman and build a release binary inside podman (minutes),
//! so a plain `cargo test` lists them as ignored; `scripts/test` runs them once, after the
//! other tests: `cargo test --locked --test e2e install:: -- --ignored --test-threads=1`.
//! Where podman is missing and cannot be installed (not root, no apt-get) they print why and
//! pass, unless `IAMWATCHD_REQUIRE_PODMAN=1` (set by `.ci/run`) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::daemon::{mails_about, wait_until, wait_until_within};
use crate::emulator::{Emulator, ROOT_ACCESS_KEY};

const WEBHOOK_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// The test configuration's `poller.sweep_interval` (`crate::daemon::config_text`), in seconds.
const SWEEP_INTERVAL_S: f64 = 2.0;

/// The series of the IAM stream's last complete pass (Unix seconds).
const IAM_LAST_PASS: &str = "iamwatchd_last_successful_poll_timestamp_seconds\
    {region=\"us-east-1\",stream=\"EventSource=iam.amazonaws.com\"}";

fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `scripts/NAME ARGS` (its progress on the test's stderr) and returns the last line of
/// its stdout, or `None` after saying why when podman cannot be installed here (exit 77).
fn script(name: &str, args: &[&str]) -> Option<String> {
    let started = Instant::now();
    let out = Command::new(repo().join("scripts").join(name))
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run scripts/{name}: {e}"));
    match out.status.code() {
        Some(0) => {
            eprintln!("scripts/{name}: done in {}s", started.elapsed().as_secs());
            let stdout = String::from_utf8(out.stdout).unwrap();
            Some(stdout.lines().last().expect("a result line").to_owned())
        }
        Some(77) if std::env::var_os("IAMWATCHD_REQUIRE_PODMAN").is_none() => {
            eprintln!("SKIPPED: podman is not available and cannot be installed here (needs root and apt-get)");
            None
        }
        _ => panic!("scripts/{name} {args:?} failed: {}", out.status),
    }
}

fn podman(args: &[&str]) -> Output {
    Command::new(repo().join("scripts/podman"))
        .args(args)
        .output()
        .expect("run scripts/podman")
}

/// `podman ARGS`, which must succeed; its stdout.
fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn short_commit() -> String {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .expect("git");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Removes the test's containers and volume however the test ends.
struct Cleanup {
    containers: Vec<String>,
    volume: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.containers {
            if std::thread::panicking() {
                let logs = podman(&["logs", name]);
                eprintln!(
                    "logs of {name}:\n{}{}",
                    String::from_utf8_lossy(&logs.stdout),
                    String::from_utf8_lossy(&logs.stderr)
                );
            }
            let _ = podman(&["rm", "-f", "-t", "0", name]);
        }
        let _ = podman(&["volume", "rm", "-f", &self.volume]);
    }
}

/// The daemon's configuration inside the container: the emulator's SMTP sink (plaintext on
/// loopback) and a signed webhook, whose secret comes from the environment only.
fn write_config(dir: &Path, emulator: &Emulator) {
    let sink = emulator.http_url.as_deref().expect("HTTP sink");
    // Digests off: the test's four changes are all root's, within a burst window, and the
    // fourth would wait for its digest (tests/e2e/digest.rs covers that); this test is about
    // the container, each change its own message.
    let extra = format!(
        "[notifiers.soar]\ntype = \"webhook\"\nurl = \"{sink}/webhook/soar\"\n\n\
         [metrics]\nlisten = \"127.0.0.1:9847\"\n\n\
         [digest]\nenabled = false\n"
    );
    let config = crate::daemon::config_text("/var/lib/iamwatchd", emulator, &extra);
    std::fs::write(dir.join("iamwatchd.toml"), config).unwrap();
    // The container's user (65532) reads the mounted directory.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        dir.join("iamwatchd.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
}

/// `podman run -d` of the daemon as the README shows it, plus the emulator's endpoint.
fn start_daemon(
    image: &str,
    name: &str,
    volume: &str,
    config_dir: &Path,
    env_file: &Path,
    emulator: &Emulator,
    metrics: &str,
) {
    podman_ok(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "-v",
        &format!("{}:/etc/iamwatchd:ro", config_dir.display()),
        "-v",
        &format!("{volume}:/var/lib/iamwatchd"),
        "--env-file",
        &env_file.display().to_string(),
        "-e",
        &format!("AWS_ENDPOINT_URL={}", emulator.endpoint),
        "-e",
        "AWS_REGION=us-east-1",
        // The listener (and so the health check) on a free port: the host's network is shared.
        "-e",
        &format!("IAMWATCHD__METRICS__LISTEN={metrics}"),
        image,
    ]);
}

async fn wait_healthy(name: &str) {
    wait_until_within(
        Duration::from_secs(90),
        "podman healthcheck run: healthy",
        || {
            podman(&["healthcheck", "run", name])
                .status
                .success()
                .then_some(())
        },
    )
    .await;
}

fn smtp_control(emulator: &Emulator, body: Value) -> Value {
    let (status, answer) = emulator.control("POST", "smtp", &body.to_string());
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test]
#[ignore = "needs root and podman and builds a release image (minutes): scripts/test runs it"]
async fn the_image_deploys_runs_read_only_and_stops_and_restarts_cleanly() {
    let Some(image) = script("image", &[]) else {
        return;
    };

    // The image's conventions.
    let inspect: Value = serde_json::from_str(&podman_ok(&["image", "inspect", &image])).unwrap();
    let config = &inspect[0]["Config"];
    let labels = &config["Labels"];
    for key in [
        "title",
        "description",
        "source",
        "version",
        "revision",
        "licenses",
    ] {
        let label = format!("org.opencontainers.image.{key}");
        assert!(
            labels[&label].as_str().is_some_and(|v| !v.is_empty()),
            "{label}: {labels:#}"
        );
    }
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    let revision = labels["org.opencontainers.image.revision"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(revision, short_commit());
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["Entrypoint"], json!(["/usr/local/bin/iamwatchd"]));
    assert!(
        config["Env"]
            .as_array()
            .unwrap()
            .contains(&json!("IAMWATCHD__LOG__FORMAT=json")),
        "{config:#}"
    );
    let size = inspect[0]["Size"].as_u64().unwrap();
    eprintln!("image {image}: {} MB", size / 1_000_000);

    // The binary in the image names the commit its revision label names.
    let version = podman_ok(&["run", "--rm", &image, "--version"]);
    assert!(
        version.contains(&format!("(commit {revision}, built ")),
        "{version} (revision label {revision})"
    );

    let emulator = Emulator::start();
    emulator.http_secret("/webhook/soar", WEBHOOK_SECRET);
    let aws = [
        format!("AWS_ENDPOINT_URL={}", emulator.endpoint),
        format!("AWS_ACCESS_KEY_ID={ROOT_ACCESS_KEY}"),
        "AWS_SECRET_ACCESS_KEY=secret".to_owned(),
        "AWS_REGION=us-east-1".to_owned(),
    ];

    // `deploy`, a one-off container.
    let mut deploy = vec!["run", "--rm", "--network", "host", "--read-only"];
    deploy.extend(["--cap-drop", "ALL"]);
    for var in &aws {
        deploy.extend(["-e", var.as_str()]);
    }
    deploy.extend([image.as_str(), "deploy", "--email", "security@example.com"]);
    let output = podman_ok(&deploy);
    assert!(output.contains("QueueUrl"), "the stack's outputs: {output}");
    let cfn = aws_sdk_cloudformation::Client::new(&emulator.sdk_config().await);
    let stacks = cfn
        .describe_stacks()
        .stack_name("iamwatchd")
        .send()
        .await
        .unwrap();
    assert_eq!(
        stacks.stacks()[0].stack_status().unwrap().as_str(),
        "CREATE_COMPLETE"
    );

    // `run`, long-lived: configuration read-only, the secret from the environment only.
    let pid = std::process::id();
    let name = format!("iamwatchd-test-{pid}");
    let second = format!("iamwatchd-test-{pid}-restarted");
    let volume = format!("iamwatchd-test-state-{pid}");
    let _cleanup = Cleanup {
        containers: vec![name.clone(), second.clone()],
        volume: volume.clone(),
    };
    let config_dir = tempfile::tempdir().unwrap();
    write_config(config_dir.path(), &emulator);
    let secrets = tempfile::tempdir().unwrap();
    let env_file = secrets.path().join("iamwatchd.env");
    std::fs::write(
        &env_file,
        format!(
            "AWS_ACCESS_KEY_ID={ROOT_ACCESS_KEY}\nAWS_SECRET_ACCESS_KEY=secret\n\
             IAMWATCHD__NOTIFIERS__SOAR__SECRET={WEBHOOK_SECRET}\n"
        ),
    )
    .unwrap();
    let metrics_port = crate::check::free_port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    start_daemon(
        &image,
        &name,
        &volume,
        config_dir.path(),
        &env_file,
        &emulator,
        &metrics,
    );
    wait_healthy(&name).await;

    // Non-root, no capabilities, read-only root filesystem.
    let state: Value = serde_json::from_str(&podman_ok(&["container", "inspect", &name])).unwrap();
    assert_eq!(state[0]["HostConfig"]["ReadonlyRootfs"], true);
    let pid1 = state[0]["State"]["Pid"].as_u64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid1}/status")).unwrap();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    assert!(field("Uid:").starts_with("65532"), "{status}");
    assert_eq!(field("CapEff:"), "0000000000000000");
    assert_eq!(field("CapBnd:"), "0000000000000000");

    // An IAM change reaches the SMTP sink and the signed webhook.
    let iam = aws_sdk_iam::Client::new(&emulator.sdk_config().await);
    iam.create_user().user_name("bob").send().await.unwrap();
    iam.attach_user_policy()
        .user_name("bob")
        .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
        .send()
        .await
        .unwrap();
    wait_until("the AttachUserPolicy mail", || {
        (mails_about(&emulator, "AttachUserPolicy").len() == 1).then_some(())
    })
    .await;
    let webhooks = wait_until("the signed webhooks", || {
        let hooks: Vec<Value> = emulator
            .http_requests()
            .into_iter()
            .filter(|r| r["path"] == "/webhook/soar")
            .collect();
        (hooks.len() >= 2).then_some(hooks)
    })
    .await;
    assert!(
        webhooks.iter().all(|r| r["signature_verified"] == true),
        "{webhooks:#?}"
    );

    // SIGTERM to PID 1 while a mail is in flight: it is delivered, and the exit is clean.
    smtp_control(&emulator, json!({"data_delay": 3}));
    iam.create_user().user_name("carol").send().await.unwrap();
    wait_until("carol's mail held by the server", || {
        let (_, answer) = emulator.control("GET", "smtp", "");
        (answer["holding"] == 1).then_some(())
    })
    .await;
    let stopping = Instant::now();
    podman_ok(&["stop", "-t", "30", &name]);
    let stopped_in = stopping.elapsed();
    assert!(stopped_in < Duration::from_secs(30), "{stopped_in:?}");
    let exit = podman_ok(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(exit.trim(), "0", "exit status of podman stop");
    assert_eq!(
        mails_about(&emulator, "carol").len(),
        1,
        "the mail in flight at SIGTERM was delivered before the exit"
    );
    let logs = podman(&["logs", &name]);
    let logs =
        String::from_utf8_lossy(&logs.stderr).into_owned() + &String::from_utf8_lossy(&logs.stdout);
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
    }
    assert!(logs.contains("SIGTERM received"), "{logs}");
    smtp_control(&emulator, json!({"data_delay": 0}));

    // A new container on the same volume repeats nothing and reports what is new.
    let mails_before = emulator.mail().len();
    let hooks_before = emulator.http_requests().len();
    start_daemon(
        &image,
        &second,
        &volume,
        config_dir.path(),
        &env_file,
        &emulator,
        &metrics,
    );
    wait_healthy(&second).await;
    iam.create_user().user_name("dave").send().await.unwrap();
    wait_until("dave's mail", || {
        (mails_about(&emulator, "dave").len() == 1).then_some(())
    })
    .await;
    let dave_seen = unix_seconds();
    // The restarted daemon's first pass of a stream is a sweep from the stored cursor, which
    // trails the last sweep by the 2-minute horizon: it reads bob's and carol's changes again,
    // and it ends before any later pass of the stream; sweeps go on every 2 s. No sleeping:
    // wait on the new process's own counters (they start at 0) until the IAM stream has gone
    // on completing passes for two sweep intervals after dave's mail, at least bob's two and
    // carol's one change were recognised as already seen, and the outbox is empty. A pass
    // records its findings' messages before it completes, so a copy of an old change, had one
    // been made, would be in the sink by then.
    wait_until("sweeps after the restart and an empty outbox", || {
        let (_, body) = crate::check::try_get(metrics_port, "/metrics")?;
        let iam_pass = crate::check::sample(&body, IAM_LAST_PASS)?;
        let refetched = crate::check::sample(&body, "iamwatchd_poll_refetched_events_total")?;
        let pending: f64 = body
            .lines()
            .filter(|l| l.starts_with("iamwatchd_notifications_pending{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        (iam_pass >= dave_seen + 2.0 * SWEEP_INTERVAL_S && refetched >= 3.0 && pending == 0.0)
            .then_some(())
    })
    .await;
    assert_eq!(
        emulator.mail().len(),
        mails_before + 1,
        "only dave's change is new"
    );
    assert_eq!(mails_about(&emulator, "AttachUserPolicy").len(), 1);
    assert_eq!(
        mails_about(&emulator, "bob").len(),
        2,
        "CreateUser, AttachUserPolicy"
    );
    assert_eq!(mails_about(&emulator, "carol").len(), 1);
    assert_eq!(mails_about(&emulator, "dave").len(), 1);
    wait_until("dave's webhook", || {
        (emulator.http_requests().len() > hooks_before).then_some(())
    })
    .await;
    podman_ok(&["stop", "-t", "30", &second]);
    let exit = podman_ok(&["inspect", "--format", "{{.State.ExitCode}}", &second]);
    assert_eq!(exit.trim(), "0");
}

/// The shell script the package test runs in a clean Debian container (`bash -eu`).
const PACKAGE_SCRIPT: &str = r#"
deb=/pkg/$DEB
say() { printf '\n--- %s\n' "$*"; }

say "dpkg -i"
dpkg -i "$deb"
iamwatchd --version
iamwatchd --version | grep -qF "(commit $COMMIT, built "
for f in /usr/bin/iamwatchd /lib/systemd/system/iamwatchd.service \
    /etc/iamwatchd/iamwatchd.toml /etc/iamwatchd/iamwatchd.env \
    /usr/share/man/man1/iamwatchd.1.gz /usr/share/man/man1/iamwatchd-run.1.gz \
    /usr/share/man/man1/iamwatchd-deploy.1.gz /usr/share/man/man1/iamwatchd-check.1.gz \
    /usr/share/bash-completion/completions/iamwatchd \
    /usr/share/zsh/vendor-completions/_iamwatchd \
    /usr/share/fish/vendor_completions.d/iamwatchd.fish \
    /usr/share/iamwatchd/iamwatchd-policy.json /usr/share/iamwatchd/iamwatchd-deploy-policy.json \
    /usr/share/iamwatchd/iamwatchd.template.json \
    /usr/share/iamwatchd/iamwatchd-member-role.template.json \
    /usr/share/doc/iamwatchd/copyright /usr/share/doc/iamwatchd/changelog.Debian.gz; do
  test -f "$f" || { echo "missing: $f"; exit 1; }
done
test "$(stat -c %a /etc/iamwatchd/iamwatchd.env)" = 600
grep -qx /etc/iamwatchd/iamwatchd.toml /var/lib/dpkg/info/iamwatchd.conffiles
grep -qx /etc/iamwatchd/iamwatchd.env /var/lib/dpkg/info/iamwatchd.conffiles

say "check --offline: the shipped example needs the SMTP password, as the unit's EnvironmentFile gives it"
if iamwatchd check --offline --config /etc/iamwatchd/iamwatchd.toml; then
  echo "check passed without the password"; exit 1
fi
echo 'IAMWATCHD__SMTP__PASSWORD=example-password' >>/etc/iamwatchd/iamwatchd.env
(set -a; . /etc/iamwatchd/iamwatchd.env; set +a
 iamwatchd check --offline --config /etc/iamwatchd/iamwatchd.toml)

say "systemd-analyze verify on the installed unit"
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
systemd-analyze verify /lib/systemd/system/iamwatchd.service

say "upgrade over itself keeps the edited conffiles"
sed -i 's/^poll_interval = "10s"/poll_interval = "20s"/' /etc/iamwatchd/iamwatchd.toml
grep -q '^poll_interval = "20s"' /etc/iamwatchd/iamwatchd.toml
dpkg -i "$deb"
grep -q '^poll_interval = "20s"' /etc/iamwatchd/iamwatchd.toml
grep -q '^IAMWATCHD__SMTP__PASSWORD=example-password' /etc/iamwatchd/iamwatchd.env
test "$(stat -c %a /etc/iamwatchd/iamwatchd.env)" = 600
iamwatchd --version

say "remove keeps the conffiles, purge removes them"
dpkg -r iamwatchd
test ! -e /usr/bin/iamwatchd
test ! -e /lib/systemd/system/iamwatchd.service
test ! -e /usr/share/iamwatchd
test -f /etc/iamwatchd/iamwatchd.toml
dpkg -P iamwatchd
test ! -e /etc/iamwatchd
! dpkg -s iamwatchd >/dev/null 2>&1
echo "package test passed"
"#;

#[tokio::test]
#[ignore = "needs root and podman, packages the image's release binary: scripts/test runs it"]
async fn the_debian_package_installs_upgrades_and_removes_cleanly() {
    // One release build serves both: the package takes the image's binary.
    let Some(image) = script("image", &[]) else {
        return;
    };
    let deb = script("deb", &["--from-image", &image]).expect("scripts/deb");
    let deb = repo().join(deb);
    let file_name = deb.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        file_name,
        format!("iamwatchd_{}_amd64.deb", env!("CARGO_PKG_VERSION"))
    );

    // lintian: no errors (warnings are printed).
    if Command::new("lintian").arg("--version").output().is_err() {
        let status = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "lintian"])
            .status()
            .expect("apt-get");
        assert!(status.success(), "install lintian");
    }
    let lintian = Command::new("lintian")
        .args(["--fail-on", "error"])
        .arg(&deb)
        .output()
        .expect("lintian");
    eprintln!("lintian:\n{}", String::from_utf8_lossy(&lintian.stdout));
    assert!(
        lintian.status.success(),
        "lintian found errors:\n{}{}",
        String::from_utf8_lossy(&lintian.stdout),
        String::from_utf8_lossy(&lintian.stderr)
    );

    // Install, upgrade, remove and purge in a clean Debian container.
    let out = podman(&[
        "run",
        "--rm",
        "--network",
        "host",
        "-v",
        &format!("{}:/pkg:ro", deb.parent().unwrap().display()),
        "-e",
        &format!("DEB={file_name}"),
        "-e",
        &format!("COMMIT={}", short_commit()),
        "docker.io/library/debian:bookworm-slim",
        "bash",
        "-euc",
        PACKAGE_SCRIPT,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    assert!(stdout.contains("package test passed"));
}

#[test]
fn the_dockerfile_labels_the_release_and_its_context_leaves_out_build_outputs() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!("ARG VERSION={}\n", env!("CARGO_PKG_VERSION"))),
        "the Dockerfile's default VERSION is Cargo.toml's"
    );
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for excluded in ["target/", ".venv/", "bench/work/"] {
        assert!(ignored.contains(&excluded), "{excluded} in .dockerignore");
    }
    for line in dockerfile.lines() {
        let Some(rest) = line.strip_prefix("COPY ") else {
            continue;
        };
        if rest.starts_with("--from") {
            continue;
        }
        let sources: Vec<&str> = rest.split_whitespace().collect();
        for source in &sources[..sources.len() - 1] {
            let source = source.trim_end_matches('/');
            assert!(
                !ignored.iter().any(|i| i.trim_end_matches('/') == source),
                "{source} is copied by the Dockerfile but ignored"
            );
        }
    }
}
