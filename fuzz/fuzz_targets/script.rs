//! Match scripts (protocol/src/script.rs `parse_script`), what `matchstream replay` and `demo`
//! play. Input: the script's text (invalid UTF-8 replaced, as a lossy reader would).
//!
//! Properties:
//! - an accepted script survives write → parse unchanged (`write_script` quotes every event
//!   value), and its canonical text is a fixed point;
//! - what replay posts is accepted by the API as it is: the new match and every event step
//!   survive `new_match_body` → `parse_new_match` and `posted_event_body` →
//!   `parse_posted_event` unchanged (a script the parser takes never fails mid-replay on a
//!   body the server refuses);
//! - a refusal names a line of the text (1 up to its line count, 1 for an empty text).
#![no_main]

use libfuzzer_sys::fuzz_target;
use matchstream_fuzz::write_script;
use matchstream_protocol::api::{
    new_match_body, parse_new_match, parse_posted_event, posted_event_body,
};
use matchstream_protocol::script::{parse_script, Step};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let script = match parse_script(&text) {
        Ok(script) => script,
        Err(e) => {
            let lines = text.lines().count().max(1);
            assert!((1..=lines).contains(&e.line), "line {} of {lines}", e.line);
            return;
        }
    };
    let canonical = write_script(&script);
    assert_eq!(
        parse_script(&canonical).as_ref(),
        Ok(&script),
        "written back as {canonical:?}"
    );
    let m = &script.new_match;
    assert_eq!(parse_new_match(&new_match_body(m)).as_ref(), Ok(m));
    for step in &script.steps {
        if let Step::Event(e) = step {
            assert_eq!(parse_posted_event(&posted_event_body(e)).as_ref(), Ok(e));
        }
    }
});
