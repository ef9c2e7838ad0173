//! The daemon's memory, as glibc's allocator keeps it.
//!
//! glibc gives each thread that allocates at once its own arena (up to eight per core), and
//! keeps what is freed in each for reuse. For a daemon that waits on the network with two
//! runtime workers and a few blocking threads, that is memory held for nothing: each arena
//! keeps its high-water mark of the start-up (configuration, SDK clients, the first passes).
//! So [`limit_arenas`] allows two, and [`give_back`] returns what is free to the system, once
//! a minute ([`give_back_every`]). Neither changes what the daemon does; on another C
//! library both do nothing.

/// Allows glibc two malloc arenas (call before any thread starts).
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns the free memory at the top of each arena, and free whole pages inside them, to
/// the system.
pub(crate) fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Calls [`give_back`] once `every` until `stop`.
pub(crate) async fn give_back_every(
    every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => give_back(),
        }
    }
}
