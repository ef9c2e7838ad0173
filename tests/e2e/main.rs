//! End-to-end tests: the real AWS SDK and the real binary against the local emulator.
//!
//! One test crate with modules, so the AWS SDK is linked once. Every test starts its own
//! emulator on free ports (`emulator::Emulator`), so tests run in parallel and leave nothing
//! behind.

mod access;
mod accounts;
mod alarm;
mod analysis;
mod chat;
mod check;
mod cli;
mod daemon;
mod deploy;
mod deploy_settings;
mod digest;
mod emulator;
mod encryption;
mod foundation;
mod install;
mod notify;
mod ops;
mod organization_stack;
mod poller;
mod rules;
mod run;
mod scan;
#[path = "../../src/testdata.rs"]
mod testdata;
