//! The sample match (`protocol/scripts/elp-tig.match`) played event by event through the same
//! validation and state transitions as the store's, with the timestamps a watcher keeping the
//! script's pace from 2011-09-13 13:48:47 UTC would get. Shared by `protocol/tests/docs.rs`
//! and `protocol/tests/golden.rs` (included with `#[path]`).

use matchstream_protocol::script::{parse_script, Step, SAMPLE};
use matchstream_protocol::state::{apply, validate};
use matchstream_protocol::{Event, Incarnation, Match};

/// When the sample match is created: the script's first sleep (1 s) before its `start`.
const CREATED_MS: u64 = 1_315_921_727_000;

/// The incarnation the docs' sample match was given (a server draws one at random).
pub const INCARNATION: &[u8] = b"3f9a0c1d2b4e5f60";

/// The states after seq 0, 1, 2 … and the events.
pub fn play() -> (Vec<Match>, Vec<Event>) {
    let script = parse_script(SAMPLE).expect("the sample script parses");
    let mut clock = CREATED_MS;
    let incarnation = Incarnation::parse(INCARNATION).expect("an incarnation");
    let mut m = Match::create(script.new_match, clock, incarnation);
    let mut states = vec![m.clone()];
    let mut events = Vec::new();
    for step in script.steps {
        match step {
            Step::Sleep(ms) => clock += ms,
            Step::Event(posted) => {
                let data = validate(&m, &posted).expect("the sample is valid");
                let event = Event {
                    match_id: m.id.clone(),
                    seq: m.last_seq + 1,
                    timestamp_ms: clock,
                    kind: posted.kind,
                    data,
                };
                apply(&mut m, &event);
                states.push(m.clone());
                events.push(event);
            }
        }
    }
    (states, events)
}
