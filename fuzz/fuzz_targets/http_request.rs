//! The HTTP request parser (http/src/request.rs) as a connection drives it: bytes arrive in
//! pieces, complete requests are parsed and drained, pipelined ones follow.
//!
//! Input: `<limits><splits>[<offset u16 LE> ...]<stream>`. `limits` minus `'0'` picks
//! `max_header_bytes` (bits 0-1), `max_headers` (bits 2-3) and `max_body` (bits 4-5), `'0'`
//! being the defaults; `splits` minus `'0'`, modulo 8, is the number of offsets that follow,
//! where the stream is cut into pieces. A seed reads `00GET / HTTP/1.1\r\n\r\n`.
//!
//! Properties:
//! - the session sees the same requests and ends the same way (the same error, or the same
//!   bytes left waiting) whether the stream arrives whole, in the fuzzer's pieces, or byte by
//!   byte: `Partial` never hides a complete request nor an error, and no error depends on
//!   where a read ended;
//! - every complete request is made of exactly its `consumed` bytes (never more than given,
//!   one byte less is `Partial`), its body being the last `body.len()` of them, within
//!   `max_body`;
//! - a request written back as a client would send it parses to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matchstream_fuzz::{http_session, write_request};
use matchstream_http::{parse_request, Limits, Parsed};

/// Byte-by-byte delivery costs a parse per byte; only for inputs up to this size.
const BYTEWISE_MAX: usize = 512;

fuzz_target!(|data: &[u8]| {
    let [sel, splits, rest @ ..] = data else {
        return;
    };
    let sel = sel.wrapping_sub(b'0');
    let limits = Limits {
        max_header_bytes: [8192, 512, 64, 24][usize::from(sel & 3)],
        max_headers: [32, 64, 3, 0][usize::from(sel >> 2 & 3)],
        max_body: [65536, 100, 1, 0][usize::from(sel >> 4 & 3)],
    };
    let count = usize::from(splits.wrapping_sub(b'0') % 8);
    if rest.len() < 2 * count {
        return;
    }
    let (offsets, stream) = rest.split_at(2 * count);
    let mut cuts: Vec<usize> = offsets
        .chunks_exact(2)
        .map(|o| usize::from(u16::from_le_bytes([o[0], o[1]])) % (stream.len() + 1))
        .collect();
    cuts.push(0);
    cuts.push(stream.len());
    cuts.sort_unstable();
    cuts.dedup();

    let whole = http_session([stream], &limits);
    let pieces = http_session(cuts.windows(2).map(|w| &stream[w[0]..w[1]]), &limits);
    assert_eq!(pieces, whole, "cut at {cuts:?}");
    if stream.len() <= BYTEWISE_MAX {
        let bytewise = http_session(stream.chunks(1), &limits);
        assert_eq!(bytewise, whole, "byte by byte");
    }

    let roomy = Limits {
        max_header_bytes: usize::MAX,
        max_headers: 64,
        max_body: usize::MAX,
    };
    for request in &whole.0 {
        let again = write_request(request);
        assert_eq!(
            parse_request(&again, &roomy),
            Ok(Parsed::Complete {
                request: request.clone(),
                consumed: again.len()
            }),
            "written back as {:?}",
            String::from_utf8_lossy(&again)
        );
    }
});
