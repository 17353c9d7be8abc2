//! CPU time from /proc: the process's (`/proc/self/stat`) and one thread's
//! (`/proc/self/task/<tid>/stat`), user plus system, in seconds. A reader turns two of them
//! into a CPU % (`matchstream top`, Prometheus's `rate()`).

/// CPU seconds of the process so far (0 when /proc cannot be read).
pub fn process_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat").map_or(0.0, |s| seconds_of(&s))
}

/// CPU seconds of thread `tid` of this process so far (0 when unknown).
pub fn thread_seconds(tid: u64) -> f64 {
    if tid == 0 {
        return 0.0;
    }
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).map_or(0.0, |s| seconds_of(&s))
}

/// The calling thread's id, for [`thread_seconds`].
pub fn current_thread_id() -> u64 {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    u64::try_from(tid).unwrap_or(0)
}

/// utime + stime of a `stat` line, in seconds. Fields are counted after the command's
/// closing parenthesis (the command may hold spaces): state is the first, utime the 12th,
/// stime the 13th.
fn seconds_of(stat: &str) -> f64 {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let mut fields = rest.split_whitespace().skip(11);
    let mut tick = || {
        fields
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let ticks = tick() + tick();
    ticks as f64 / clock_ticks()
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 {
        n as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_read_past_a_command_with_spaces_and_parentheses() {
        let line = "1234 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(seconds_of(line), 300.0 / clock_ticks());
        assert_eq!(seconds_of("garbage"), 0.0);
    }

    #[test]
    fn a_busy_thread_shows_cpu_time() {
        let tid = current_thread_id();
        let before = thread_seconds(tid);
        // Spin until the kernel has counted a tick of it (10 ms of CPU; a loaded machine may
        // give the thread little CPU per second of wall time): 10 s bounds a count that
        // never moves.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while thread_seconds(tid) <= before && start.elapsed() < std::time::Duration::from_secs(10)
        {
            for _ in 0..100_000 {
                x = x.wrapping_mul(31).wrapping_add(7);
            }
        }
        std::hint::black_box(x);
        assert!(thread_seconds(tid) > before, "{before}");
        assert!(process_seconds() >= thread_seconds(tid));
        assert_eq!(thread_seconds(0), 0.0);
    }
}
