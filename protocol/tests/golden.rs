//! The whole sample match in version 2, as a subscriber receives it, written out byte for
//! byte by hand from docs/protocol.md and `protocol/scripts/elp-tig.match` — not produced by
//! the renderer it checks. The version 1 session has such a golden (the seed's session in
//! `protocol/src/testdata.rs`, and the doc's v1 examples); this one covers what only
//! version 2 has, for every event kind the sample plays: the `seq` line of each frame, the
//! status before `start` (`seq: 0`) and the status of the ended match (`seq: 30`).
//!
//! The timestamps are those a watcher keeping the script's pace from 2011-09-13 13:48:47 UTC
//! gets (milliseconds dropped in the header), as in docs/protocol.md.

#[path = "support/sample.rs"]
mod sample;

use matchstream_protocol::frame::{render_event, render_status, Version};

/// The status of the match as created: nobody has played, `seq: 0`; the incarnation the
/// sample was given (`support/sample.rs`).
const STATUS_CREATED: &str = concat!(
    "2011-09-13 13:48:47: status:\n",
    "\tseq: 0\n",
    "\tincarnation: 3f9a0c1d2b4e5f60\n",
    "\thome: <<\"elp\">>\n",
    "\thome_players:\n",
    "\t\t Albil (25) \n",
    "\t\t Mercado (14) \n",
    "\t\t Desabato (2) \n",
    "\t\t Cellay (3) \n",
    "\t\t Dominguez (27) \n",
    "\t\t Veron (11) \n",
    "\t\t Fernandez (10) \n",
    "\t\t Sanchez (5) \n",
    "\t\t Gonzalez (19) \n",
    "\t\t Fernandez (18) \n",
    "\t\t Boselli (9) \n",
    "\thome_score: 0\n",
    "\tvisit: <<\"tig\">>\n",
    "\tvisit_players:\n",
    "\t\t Garcia (12) \n",
    "\t\t Casteglione (13) \n",
    "\t\t Echeverria (21) \n",
    "\t\t Blengio (3) \n",
    "\t\t Diaz (15) \n",
    "\t\t Castano (5) \n",
    "\t\t Martinez (6) \n",
    "\t\t Leone (11) \n",
    "\t\t Morales (10) \n",
    "\t\t Luna (7) \n",
    "\t\t Maggiolo (9) \n",
    "\tvisit_score: 0\n",
    "\tperiod: not_started\n",
    "\r\n",
);

/// Every event of the sample, seq 1 to 30, in order.
const EVENTS: [&str; 30] = [
    "2011-09-13 13:48:48: start:\n\tseq: 1\n\r\n",
    concat!(
        "2011-09-13 13:48:51: goal:\n",
        "\tseq: 2\n",
        "\tplayer: Luna (7) \n",
        "\tteam: <<\"tig\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:03: penalty:\n",
        "\tseq: 3\n",
        "\tplayer: Martinez (6) \n",
        "\tteam: <<\"tig\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:04: card:\n",
        "\tseq: 4\n",
        "\tplayer: Albil (25) \n",
        "\tcard: red\n",
        "\tteam: <<\"elp\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:05: substitution:\n",
        "\tseq: 5\n",
        "\tplayer_out: Fernandez (18) \n",
        "\tteam: <<\"elp\">>\n",
        "\tplayer_in: Silva (21) \n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:07: card:\n",
        "\tseq: 6\n",
        "\tplayer: Desabato (2) \n",
        "\tcard: yellow\n",
        "\tteam: <<\"elp\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:08: goal:\n",
        "\tseq: 7\n",
        "\tplayer: Morales (10) \n",
        "\tteam: <<\"tig\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:08: shot:\n",
        "\tseq: 8\n",
        "\tplayer: Boselli (9) \n",
        "\tteam: <<\"elp\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:09: save:\n",
        "\tseq: 9\n",
        "\tplayer: Garcia (12) \n",
        "\tteam: <<\"tig\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:09: corner:\n",
        "\tseq: 10\n",
        "\tplayer: Veron (11) \n",
        "\tteam: <<\"elp\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:09: shot:\n",
        "\tseq: 11\n",
        "\tplayer: Blengio (3) \n",
        "\tteam: <<\"tig\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:10: foul:\n",
        "\tseq: 12\n",
        "\tplayer: Sanchez (5) \n",
        "\tteam: <<\"elp\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:10: freekick:\n",
        "\tseq: 13\n",
        "\tplayer: Leone (11) \n",
        "\tteam: <<\"tig\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:10: offside:\n",
        "\tseq: 14\n",
        "\tplayer: Maggiolo (9) \n",
        "\tteam: <<\"tig\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:10: goalkick:\n",
        "\tseq: 15\n",
        "\tteam: <<\"elp\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:11: comment:\n",
        "\tseq: 16\n",
        "\tteam: <<\"tig\">>\n",
        "\tcomment: <<\"Garcia keeps \\\"el Matador\\\" two goals up\">>\n",
        "\r\n",
    ),
    "2011-09-13 13:49:11: halftime_start:\n\tseq: 17\n\r\n",
    "2011-09-13 13:49:13: halftime_stop:\n\tseq: 18\n\r\n",
    concat!(
        "2011-09-13 13:49:13: goal:\n",
        "\tseq: 19\n",
        "\tplayer: Maggiolo (9) \n",
        "\tteam: <<\"elp\">>\n",
        "\tplayer_team: <<\"tig\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:14: substitution:\n",
        "\tseq: 20\n",
        "\tplayer_out: Gonzalez (19) \n",
        "\tteam: <<\"elp\">>\n",
        "\tplayer_in: Cuevas (16) \n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:14: card:\n",
        "\tseq: 21\n",
        "\tplayer: Casteglione (13) \n",
        "\tcard: yellow\n",
        "\tteam: <<\"tig\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:14: substitution:\n",
        "\tseq: 22\n",
        "\tplayer_out: Diaz (15) \n",
        "\tteam: <<\"tig\">>\n",
        "\tplayer_in: Sosa (18) \n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:15: throwin:\n",
        "\tseq: 23\n",
        "\tplayer: Cellay (3) \n",
        "\tteam: <<\"elp\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:15: shot:\n",
        "\tseq: 24\n",
        "\tplayer: Silva (21) \n",
        "\tteam: <<\"elp\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:15: save:\n",
        "\tseq: 25\n",
        "\tplayer: Garcia (12) \n",
        "\tteam: <<\"tig\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:15: card:\n",
        "\tseq: 26\n",
        "\tplayer: Veron (11) \n",
        "\tcard: yellow\n",
        "\tteam: <<\"elp\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:16: substitution:\n",
        "\tseq: 27\n",
        "\tplayer_out: Maggiolo (9) \n",
        "\tteam: <<\"tig\">>\n",
        "\tplayer_in: Ramirez (20) \n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:16: card:\n",
        "\tseq: 28\n",
        "\tplayer: Morales (10) \n",
        "\tcard: red\n",
        "\tteam: <<\"tig\">>\n",
        "\r\n",
    ),
    concat!(
        "2011-09-13 13:49:16: comment:\n",
        "\tseq: 29\n",
        "\tcomment: <<\"Five minutes of added time\">>\n",
        "\r\n",
    ),
    "2011-09-13 13:49:17: stop:\n\tseq: 30\n\r\n",
];

/// The status of the ended match: red cards and substitutions have changed the rosters
/// (players in at the end), the own goal counts for elp.
const STATUS_ENDED: &str = concat!(
    "2011-09-13 13:49:17: status:\n",
    "\tseq: 30\n",
    "\tincarnation: 3f9a0c1d2b4e5f60\n",
    "\thome: <<\"elp\">>\n",
    "\thome_players:\n",
    "\t\t Mercado (14) \n",
    "\t\t Desabato (2) \n",
    "\t\t Cellay (3) \n",
    "\t\t Dominguez (27) \n",
    "\t\t Veron (11) \n",
    "\t\t Fernandez (10) \n",
    "\t\t Sanchez (5) \n",
    "\t\t Boselli (9) \n",
    "\t\t Silva (21) \n",
    "\t\t Cuevas (16) \n",
    "\thome_score: 1\n",
    "\tvisit: <<\"tig\">>\n",
    "\tvisit_players:\n",
    "\t\t Garcia (12) \n",
    "\t\t Casteglione (13) \n",
    "\t\t Echeverria (21) \n",
    "\t\t Blengio (3) \n",
    "\t\t Castano (5) \n",
    "\t\t Martinez (6) \n",
    "\t\t Leone (11) \n",
    "\t\t Luna (7) \n",
    "\t\t Sosa (18) \n",
    "\t\t Ramirez (20) \n",
    "\tvisit_score: 2\n",
    "\tperiod: ended\n",
    "\r\n",
);

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("frames are UTF-8")
}

#[test]
fn status_frames_v2_are_byte_exact() {
    let (states, _) = sample::play();
    for (after, want) in [(0, STATUS_CREATED), (30, STATUS_ENDED)] {
        let mut out = Vec::new();
        render_status(&states[after], Version::V2, &mut out);
        assert_eq!(text(out), want, "status after seq {after}");
    }
}

#[test]
fn event_frames_v2_are_byte_exact() {
    let (_, events) = sample::play();
    assert_eq!(events.len(), EVENTS.len());
    for (event, want) in events.iter().zip(EVENTS) {
        let mut out = Vec::new();
        render_event(event, Version::V2, &mut out);
        assert_eq!(text(out), want, "seq {}", event.seq);
    }
}

#[test]
fn a_whole_v2_session_is_the_status_then_every_event() {
    // What a subscriber that connected before the start reads, up to the server's hang-up.
    let (states, events) = sample::play();
    let mut out = Vec::new();
    render_status(&states[0], Version::V2, &mut out);
    for event in &events {
        render_event(event, Version::V2, &mut out);
    }
    assert_eq!(text(out), STATUS_CREATED.to_owned() + &EVENTS.concat());
}
