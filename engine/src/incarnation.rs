//! Incarnations on the node's side: drawing new ones, and refusing a resume against another.
//!
//! What an incarnation is and when it changes: `matchstream_protocol::incarnation` and
//! docs/protocol.md ("Incarnations"). The store thread draws one for every match it creates
//! ([`draw`]); a Redis node draws one when it finds a stored history rewound
//! ([`crate::cluster::rewind`]). A session checks a resume's incarnation here, just before it
//! subscribes ([`check_resume`]).

use std::sync::atomic::{AtomicU64, Ordering};

use matchstream_protocol::command::Command;
use matchstream_protocol::Incarnation;

use crate::fanout::Fanout;

/// The reason of the error line for a subscriber of a replaced history, and for a resume
/// that names another incarnation than the match's.
pub const HISTORY_CHANGED: &str = "match history changed";

/// A new incarnation: 64 bits from the OS's random source (never [`Incarnation::UNSET`]).
pub fn draw() -> Incarnation {
    loop {
        let mut bytes = [0u8; 8];
        let bits = match getrandom::getrandom(&mut bytes) {
            Ok(()) => u64::from_le_bytes(bytes),
            Err(_) => fallback_bits(),
        };
        // Zero (unset) comes once in 2^64 draws: draw again.
        if let Some(incarnation) = Incarnation::from_bits(bits) {
            return incarnation;
        }
    }
}

/// Bits from the clock, the process and a counter, mixed (splitmix64): without the OS's
/// random source incarnations must still differ between matches, nodes and restarts.
fn fallback_bits() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = nanos
        ^ u64::from(std::process::id()) << 40
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ z >> 30).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ z >> 27).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ z >> 31
}

/// Refuses (with [`HISTORY_CHANGED`]) a resume whose `INCARNATION` is not the current one of
/// the match in `fanout`: its seq counts in a history this node no longer serves, so the
/// events after it here may be others than the client missed. A command without one, or for
/// a match the table does not have (refused as unknown before this), passes.
pub fn check_resume(fanout: &Fanout, command: &Command) -> Result<(), &'static str> {
    let (Some(wanted), Some(view)) = (command.incarnation, fanout.get(&command.match_id)) else {
        return Ok(());
    };
    if view.state.incarnation == wanted {
        Ok(())
    } else {
        Err(HISTORY_CHANGED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ_and_are_never_unset() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let i = draw();
            assert!(i.is_set());
            assert!(seen.insert(i), "{i} drawn twice");
        }
        let fallback: std::collections::HashSet<u64> = (0..1000).map(|_| fallback_bits()).collect();
        assert_eq!(fallback.len(), 1000);
    }
}
