//! The peak of a gauge over a window of recent seconds, without a reader resetting it.
//!
//! Policy (issue 13, item 2): a peak "since the last read" would be stolen by whichever
//! reader came first — `matchstream top` and Prometheus both read `/1/stats` or `/metrics` —
//! so nothing here is reset by a read. The writer keeps the largest value of each second in
//! one of [`SLOTS`] per-second slots (a relaxed atomic word holding the second and its
//! peak); a reader takes the largest of the slots of the seconds it asks about. A reader
//! polling once a second (top, the ops page) asks for [`RECENT`] seconds, so it sees every
//! peak at least once; a Prometheus scrape, for [`MINUTE`]. No timer runs: a slot of an
//! older second is simply reused.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Instant;

/// Seconds kept.
pub const SLOTS: usize = 64;

/// The window of a once-a-second reader: the current second and the one before it, so the
/// last 1 to 2 s.
pub const RECENT: u64 = 2;

/// The window of a scraper: the current second and the 59 before it, so the last minute.
pub const MINUTE: u64 = 60;

/// Bits of a slot's word that hold its peak; the others hold its second.
const VALUE_BITS: u32 = 32;
const VALUE_MAX: u64 = (1 << VALUE_BITS) - 1;

/// The per-second peaks of one gauge.
#[derive(Debug)]
pub struct Peak {
    slots: [AtomicU64; SLOTS],
}

impl Default for Peak {
    fn default() -> Peak {
        Peak {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Peak {
    /// Records `value` now.
    pub fn record(&self, value: u64) {
        self.record_at(second(), value);
    }

    /// The largest value recorded in the last `seconds` seconds, the current one included
    /// (0 if none).
    pub fn over(&self, seconds: u64) -> u64 {
        self.over_at(second(), seconds)
    }

    fn record_at(&self, now: u64, value: u64) {
        let slot = &self.slots[(now % SLOTS as u64) as usize];
        let value = value.min(VALUE_MAX);
        let _ = slot.fetch_update(Relaxed, Relaxed, |word| {
            let (at, peak) = unpack(word);
            match at == now {
                true if peak >= value => None,
                _ => Some(now << VALUE_BITS | value),
            }
        });
    }

    fn over_at(&self, now: u64, seconds: u64) -> u64 {
        let seconds = seconds.min(SLOTS as u64);
        self.slots
            .iter()
            .map(|s| unpack(s.load(Relaxed)))
            .filter(|&(at, _)| at <= now && now - at < seconds)
            .map(|(_, peak)| peak)
            .max()
            .unwrap_or(0)
    }
}

fn unpack(word: u64) -> (u64, u64) {
    (word >> VALUE_BITS, word & VALUE_MAX)
}

/// Seconds since the first use, from 1 (an unused slot, second 0, never counts).
fn second() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_secs() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_of_a_second_is_its_largest_value() {
        let p = Peak::default();
        p.record_at(5, 3);
        p.record_at(5, 9);
        p.record_at(5, 4);
        assert_eq!(p.over_at(5, RECENT), 9);
    }

    #[test]
    fn reading_does_not_reset_the_peak_for_another_reader() {
        let p = Peak::default();
        p.record_at(7, 12);
        assert_eq!(p.over_at(7, RECENT), 12, "top");
        assert_eq!(p.over_at(7, MINUTE), 12, "a scrape right after");
        assert_eq!(p.over_at(8, RECENT), 12, "top's next read, a second later");
    }

    #[test]
    fn a_peak_leaves_the_window_once_its_second_is_out_of_it() {
        let p = Peak::default();
        p.record_at(10, 50);
        p.record_at(11, 2);
        assert_eq!(p.over_at(11, RECENT), 50);
        assert_eq!(p.over_at(12, RECENT), 2, "second 10 is out of the last two");
        assert_eq!(p.over_at(12, MINUTE), 50);
        assert_eq!(p.over_at(10 + MINUTE - 1, MINUTE), 50);
        assert_eq!(
            p.over_at(10 + MINUTE, MINUTE),
            2,
            "a minute later, second 11 only"
        );
    }

    #[test]
    fn a_reused_slot_starts_afresh() {
        let p = Peak::default();
        p.record_at(3, 100);
        p.record_at(3 + SLOTS as u64, 1);
        assert_eq!(p.over_at(3 + SLOTS as u64, MINUTE), 1);
    }

    #[test]
    fn values_past_32_bits_saturate_instead_of_spilling_into_the_second() {
        let p = Peak::default();
        p.record_at(2, u64::MAX);
        assert_eq!(p.over_at(2, RECENT), VALUE_MAX);
        p.record_at(3, 1);
        assert_eq!(p.over_at(3, RECENT), VALUE_MAX);
    }

    #[test]
    fn the_clock_starts_at_one() {
        assert!(second() >= 1);
        let p = Peak::default();
        p.record(4);
        assert_eq!(p.over(RECENT), 4);
    }
}
