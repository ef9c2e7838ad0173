//! What `deploy` prints while CloudFormation works: plain lines where stdout is a file or a
//! pipe (journald, CI logs), plus a spinner line on a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use aws_sdk_cloudformation::types::StackEvent;

/// Progress output: plain lines where stdout is a file or a pipe (journald, CI logs), plus a
/// spinner line on a terminal.
pub(super) struct Progress {
    tty: bool,
    started: Instant,
    frame: usize,
}

impl Progress {
    pub(super) fn new() -> Progress {
        Progress {
            tty: std::io::stdout().is_terminal(),
            started: Instant::now(),
            frame: 0,
        }
    }

    pub(super) fn line(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        if self.tty {
            // Clear the spinner line first.
            let _ = write!(out, "\r\x1b[2K");
        }
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    pub(super) fn event(&self, event: &StackEvent) {
        let time = event
            .timestamp()
            .and_then(|t| {
                chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
                    .map(|t| t.format("%H:%M:%S").to_string())
            })
            .unwrap_or_default();
        let mut text = format!(
            "  {time} {:<28} {:<32} {}",
            event.resource_status().map(|s| s.as_str()).unwrap_or("?"),
            event.logical_resource_id().unwrap_or("?"),
            event.resource_type().unwrap_or(""),
        );
        if let Some(reason) = event.resource_status_reason().filter(|r| !r.is_empty()) {
            text.push_str(&format!(": {reason}"));
        }
        self.line(&text);
    }

    /// Waits `duration`, animating the spinner on a terminal.
    pub(super) async fn pause(&mut self, duration: Duration, status: &str) {
        if !self.tty {
            tokio::time::sleep(duration).await;
            return;
        }
        const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
        let until = Instant::now() + duration;
        while Instant::now() < until {
            self.frame = (self.frame + 1) % FRAMES.len();
            let mut out = std::io::stdout().lock();
            let _ = write!(
                out,
                "\r\x1b[2K{} {status} ({}s)",
                FRAMES[self.frame],
                self.started.elapsed().as_secs()
            );
            let _ = out.flush();
            drop(out);
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
    }

    pub(super) fn done(&self) {
        if self.tty {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
        }
    }
}
