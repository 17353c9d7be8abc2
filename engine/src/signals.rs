//! SIGINT/SIGTERM handling without a signal handler: the main thread blocks both signals
//! before any other thread starts (threads inherit the mask), then waits for one with
//! `sigwait`, so a signal never interrupts a core.

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
