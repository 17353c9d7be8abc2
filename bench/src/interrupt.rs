//! Ctrl-C during `fanout`: the first SIGINT asks the run to stop where it is (publishing ends,
//! the subscribers give up) so the bench still prints and writes a *partial* report, marked as
//! such; a second SIGINT exits at once. Worker processes ignore SIGINT: their coordinator
//! tells them to give up (by closing their stdin) and collects what they measured.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // Only async-signal-safe calls here: an atomic swap, and _exit on the second signal.
    if REQUESTED.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe and ends the process.
        unsafe { libc::_exit(130) };
    }
}

/// Makes the first Ctrl-C a request to stop (see [`requested`]).
pub fn install() {
    let handler: extern "C" fn(libc::c_int) = on_sigint;
    // SAFETY: installs a handler that only touches an atomic (or calls _exit).
    unsafe { libc::signal(libc::SIGINT, handler as libc::sighandler_t) };
}

/// Makes this process ignore Ctrl-C (worker processes: the coordinator stops them).
pub fn ignore() {
    // SAFETY: SIG_IGN is a valid disposition.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
}

/// True once Ctrl-C was pressed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Asks for a stop as Ctrl-C does (tests).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}
