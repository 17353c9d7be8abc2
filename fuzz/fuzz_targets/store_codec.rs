//! What the Redis store reads back: the `ms:events` feed messages (engine/src/cluster/feed.rs:
//! `C<match>` created, `E<event>` committed, `X<id>` cancelled) and, through the same decoders
//! (protocol/src/codec.rs), the stored `ms:match:<id>` values and `ms:history:<id>` entries
//! (engine/src/store/redis.rs, cluster/; the embedded store keeps the same encoding).
//! Input: a feed message, its first byte the tag; other tags are ignored, as the feed does.
//!
//! Properties:
//! - what decodes survives encode → decode unchanged, and its encoding is a fixed point
//!   (a node that re-stores what it read writes the same bytes);
//! - a decoded match's id is the one its teams and date make;
//! - a decoded event reads the same through the API's history shape, and a decoded match
//!   through the `GET /1/match/<id>` shape;
//! - what decodes renders as exactly one well-formed frame per version (a status frame for a
//!   match, an event frame for an event): the decoders check values as the API does, so no
//!   CR/LF a foreign writer puts in a comment or a name can forge a frame (issue 11, item 7);
//! - a cancelled (`X`) or new-incarnation (`R`) id that parses is exactly the text given, and
//!   parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matchstream_fuzz::assert_one_frame;
use matchstream_protocol::api::{event_json, match_json, parse_event_json, parse_match_json};
use matchstream_protocol::codec::{decode_event, decode_match, encode_event, encode_match};
use matchstream_protocol::frame::{render_event, render_status, Version};
use matchstream_protocol::MatchId;

fuzz_target!(|data: &[u8]| {
    let Some((&tag, body)) = data.split_first() else {
        return;
    };
    match tag {
        b'C' => {
            let Ok(m) = decode_match(body) else {
                return;
            };
            assert_eq!(m.id, MatchId::new(&m.home, &m.visit, m.start_date));
            let bytes = encode_match(&m);
            assert_eq!(decode_match(&bytes).as_ref(), Ok(&m));
            assert_eq!(
                decode_match(&bytes).map(|again| encode_match(&again)),
                Ok(bytes)
            );
            assert_eq!(parse_match_json(&match_json(&m)).as_ref(), Ok(&m));
            for version in Version::ALL {
                let mut frame = Vec::new();
                render_status(&m, version, &mut frame);
                assert_one_frame(&frame);
            }
        }
        b'E' => {
            let Ok(e) = decode_event(body) else {
                return;
            };
            let bytes = encode_event(&e);
            assert_eq!(decode_event(&bytes).as_ref(), Ok(&e));
            assert_eq!(
                decode_event(&bytes).map(|again| encode_event(&again)),
                Ok(bytes)
            );
            assert_eq!(
                parse_event_json(&event_json(&e), &e.match_id).as_ref(),
                Ok(&e)
            );
            for version in Version::ALL {
                let mut frame = Vec::new();
                render_event(&e, version, &mut frame);
                assert_one_frame(&frame);
            }
        }
        b'X' | b'R' => {
            let text = String::from_utf8_lossy(body);
            if let Ok(id) = MatchId::parse(&text) {
                assert_eq!(id.as_str(), text);
                assert_eq!(MatchId::parse(id.as_str()).as_ref(), Ok(&id));
            }
        }
        _ => {}
    }
});
