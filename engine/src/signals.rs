//! SIGINT/SIGTERM handling without a signal handler: the main thread blocks both signals
//! before any other thread starts (threads inherit the mask), then one thread waits for them
//! with `sigwait`, so a signal never interrupts a core.
//!
//! Policy (SPEC §9): the first signal drains the node ([`crate::drain`]) within
//! `--shutdown-grace-ms` — v2 and SSE subscribers are sent to other nodes at once, v1 ones kept
//! until their matches end or the grace period is over — then it stops and exits 0; a second
//! signal cuts the drain short.

use std::sync::Arc;
use std::time::Duration;

use crate::drain::Trigger;
use crate::stats::NodeStats;

/// The signal thread's name.
pub const THREAD_NAME: &str = "matchstream-signals";

/// Blocks SIGINT and SIGTERM for this thread and every thread it starts afterwards.
pub fn block_termination() {
    // SAFETY: sigset manipulation on a local set; pthread_sigmask on the calling thread.
    unsafe {
        let set = termination_set();
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits until SIGINT or SIGTERM arrives; returns its number.
pub fn wait_termination() -> i32 {
    // SAFETY: sigwait on a set of signals blocked by `block_termination`.
    unsafe {
        let set = termination_set();
        let mut sig: libc::c_int = 0;
        libc::sigwait(&set, &mut sig);
        sig
    }
}

/// Starts the thread that turns SIGINT and SIGTERM (blocked by [`block_termination`]) into
/// a drain of `node` within `grace`; a second signal ends the drain at once.
pub fn drain_on_termination(node: Arc<NodeStats>, grace: Duration) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || {
            let sig = wait_termination();
            log::info!(target: "matchstream::signals",
                "signal {sig} received: draining within {grace:?} (again to stop now)");
            node.drain.begin(grace, Trigger::Signal);
            let sig = wait_termination();
            log::info!(target: "matchstream::signals", "signal {sig} received again: stopping now");
            node.drain.begin(Duration::ZERO, Trigger::Signal);
        })
        .map(drop)
}

unsafe fn termination_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set before sigaddset uses it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}
