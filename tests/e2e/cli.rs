//! Running the real `iamwatchd` binary in a clean environment, as an operator would.

use std::path::Path;
use std::process::Command;

use crate::emulator::ROOT_ACCESS_KEY;

/// What one run of the binary did.
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn assert_success(&self) -> &Run {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    pub(crate) fn assert_failure(&self) -> &Run {
        assert_eq!(
            self.code,
            Some(1),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert_eq!(
            self.stderr.trim_end().lines().count(),
            1,
            "one paragraph, no trace:\n{}",
            self.stderr
        );
        self
    }
}

/// The binary with nothing from the test's own environment but what is given: an empty HOME
/// (no ~/.aws), no instance metadata, and the emulator's endpoint and a key when `endpoint` is
/// given (PATH stays, for the `kill` the daemon tests use).
pub(crate) fn command(endpoint: Option<&str>, home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_iamwatchd"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true");
    if let Some(endpoint) = endpoint {
        command
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", ROOT_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", "secret");
    }
    command
}

/// Runs `iamwatchd ARGS` to completion in the environment of [`command`].
pub(crate) fn iamwatchd(endpoint: Option<&str>, home: &Path, args: &[&str]) -> Run {
    let output = command(endpoint, home)
        .args(args)
        .output()
        .expect("run iamwatchd");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}
