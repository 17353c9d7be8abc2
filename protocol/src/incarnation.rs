//! A match's incarnation: which history of the match a seq belongs to.
//!
//! Seqs number a match's events 1, 2, 3 … within one history. A history can be replaced under
//! the same match id: the match is cancelled and created again, or a store loses writes (a
//! Redis failover to a replica that missed them, a restore) and numbers new events with seqs
//! that clients already hold for other events. A match therefore carries an incarnation, drawn
//! at random when its history starts and drawn again when a node finds its stored history
//! rewound; a client that resumes after seq n names the incarnation n belongs to, and the
//! server refuses a resume against another one (docs/protocol.md).
//!
//! The text form is 16 lowercase hex digits. [`Incarnation::UNSET`] (all zeros) is never
//! drawn: it stands for a match stored before incarnations existed, until its store gives it
//! one.

use std::fmt;

use crate::error::ModelError;

/// The incarnation of a match's history: 64 random bits, shown as 16 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Incarnation(u64);

impl Incarnation {
    /// No incarnation yet: a match read from a store written before incarnations existed.
    pub const UNSET: Incarnation = Incarnation(0);

    /// Length of the text form.
    pub const LEN: usize = 16;

    /// The incarnation made of `bits` (random bits from the caller; this crate does no I/O);
    /// `None` for 0, which is [`Incarnation::UNSET`].
    ///
    /// ```
    /// use matchstream_protocol::Incarnation;
    /// let i = Incarnation::from_bits(0x3f9a_0c1d_2b4e_5f60).expect("not zero");
    /// assert_eq!(i.to_string(), "3f9a0c1d2b4e5f60");
    /// assert_eq!(Incarnation::parse(b"3f9a0c1d2b4e5f60"), Ok(i));
    /// assert!(Incarnation::from_bits(0).is_none());
    /// ```
    pub fn from_bits(bits: u64) -> Option<Incarnation> {
        (bits != 0).then_some(Incarnation(bits))
    }

    /// Parses exactly 16 lowercase hex digits, not all zeros.
    pub fn parse(text: &[u8]) -> Result<Incarnation, ModelError> {
        if text.len() != Incarnation::LEN {
            return Err(ModelError::BadIncarnation);
        }
        let mut bits = 0u64;
        for &b in text {
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => return Err(ModelError::BadIncarnation),
            };
            bits = bits << 4 | u64::from(digit);
        }
        Incarnation::from_bits(bits).ok_or(ModelError::BadIncarnation)
    }

    /// False for [`Incarnation::UNSET`].
    pub fn is_set(self) -> bool {
        self != Incarnation::UNSET
    }

    /// Appends the 16 hex digits to `out` (frames are rendered without allocating).
    pub fn write_hex(self, out: &mut Vec<u8>) {
        for shift in (0..16).rev() {
            out.push(b"0123456789abcdef"[(self.0 >> (shift * 4) & 0xf) as usize]);
        }
    }
}

impl fmt::Display for Incarnation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok = |bits| Ok(Incarnation(bits));
        #[rustfmt::skip]
        let cases: [(&str, &[u8], Result<Incarnation, ModelError>); 8] = [
            ("sixteen digits", b"3f9a0c1d2b4e5f60", ok(0x3f9a_0c1d_2b4e_5f60)),
            ("leading zeros", b"0000000000000001", ok(1)),
            ("all ones", b"ffffffffffffffff", ok(u64::MAX)),
            ("all zeros is unset", b"0000000000000000", Err(ModelError::BadIncarnation)),
            ("uppercase", b"3F9A0C1D2B4E5F60", Err(ModelError::BadIncarnation)),
            ("fifteen digits", b"3f9a0c1d2b4e5f6", Err(ModelError::BadIncarnation)),
            ("seventeen digits", b"3f9a0c1d2b4e5f600", Err(ModelError::BadIncarnation)),
            ("not hex", b"3f9a0c1d2b4e5f6g", Err(ModelError::BadIncarnation)),
        ];
        for (name, text, want) in cases {
            assert_eq!(Incarnation::parse(text), want, "{name}");
        }
    }

    #[test]
    fn text_forms_agree() {
        for bits in [1, 0xa, 0x3f9a_0c1d_2b4e_5f60, u64::MAX] {
            let i = Incarnation(bits);
            let mut hex = Vec::new();
            i.write_hex(&mut hex);
            assert_eq!(hex, i.to_string().into_bytes());
            assert_eq!(Incarnation::parse(&hex), Ok(i));
        }
        assert!(!Incarnation::UNSET.is_set());
    }
}
