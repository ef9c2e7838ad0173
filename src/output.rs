//! What the commands print on stdout, and a reader that went away: `iamwatchd scan … | head`
//! closes the pipe early. Rust ignores SIGPIPE, so a write then fails with `EPIPE`, which
//! `println!` turns into a panic and `?` into an error line ("Broken pipe (os error 32)").
//! Instead, a closed stdout is remembered, the rest of the output is dropped, and the command
//! goes on to its normal end and exit status (0 when it succeeded): nobody is reading, and a
//! command half done (a deploy, a `scan --notify`) would be worse than one that finishes.
//!
//! [`outln!`](crate::outln) and [`out!`](crate::out) replace `println!` and `print!` in every
//! command; [`write_to`] tells a closed pipe from a failed write for code with its own writer.

use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to stdout found the reader gone.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether stdout's reader has gone away (a write failed with `EPIPE`).
pub fn stdout_closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// Writes `args` to `out` and flushes: `Ok(false)` when the reader is gone (`EPIPE`, which is
/// not an error), another failure (a full disk) as it is.
pub fn write_to(out: &mut impl Write, args: std::fmt::Arguments<'_>) -> std::io::Result<bool> {
    match out.write_fmt(args).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == ErrorKind::BrokenPipe => Ok(false),
        Err(error) => Err(error),
    }
}

/// Writes `args` to stdout unless its reader is gone; a first `EPIPE` marks it closed.
pub fn write_stdout(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    if stdout_closed() {
        return Ok(());
    }
    if !write_to(&mut std::io::stdout().lock(), args)? {
        CLOSED.store(true, Ordering::Relaxed);
    }
    Ok(())
}

/// [`write_stdout`] with a newline, for [`outln!`](crate::outln).
pub fn write_line(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    write_stdout(format_args!("{args}\n"))
}

/// `print!` for the commands' output: a closed stdout ends the output quietly (see the
/// module documentation); another write failure is reported on stderr once per line.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        if let Err(error) = $crate::output::write_stdout(format_args!($($arg)*)) {
            eprintln!("iamwatchd: cannot write to stdout: {error}");
        }
    };
}

/// `println!` for the commands' output; see [`out!`](crate::out).
#[macro_export]
macro_rules! outln {
    () => { $crate::out!("\n") };
    ($($arg:tt)*) => {
        if let Err(error) = $crate::output::write_line(format_args!($($arg)*)) {
            eprintln!("iamwatchd: cannot write to stdout: {error}");
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader has gone away.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A writer on a full disk.
    struct Full;

    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(ErrorKind::StorageFull.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_is_an_error_and_a_closed_pipe_is_not() {
        let error = write_to(&mut Full, format_args!("x")).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::StorageFull);
        let written = write_to(&mut ClosedPipe, format_args!("x"));
        assert!(!written.expect("EPIPE is the reader's choice, not an error"));
        assert!(write_to(&mut Vec::new(), format_args!("x")).unwrap());
    }
}
