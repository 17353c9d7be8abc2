//! Unit tests of `watch` on a byte stream: frames printed raw or in words, last words, early
//! closes, resumes that print nothing twice, command lines.

use super::*;

const STATUS: &[u8] = b"2011-09-13 13:48:40: status:\n\tseq: 1\n\thome: <<\"elp\">>\n\
                        \thome_score: 0\n\tvisit: <<\"tig\">>\n\tvisit_score: 0\n\tperiod: first\n\r\n";
const GOAL: &[u8] = b"2011-09-13 13:48:51: goal:\n\tseq: 2\n\tplayer: Luna (7) \n\
                      \tteam: <<\"tig\">>\n\r\n";
const STOP: &[u8] = b"2011-09-13 13:49:17: stop:\n\tseq: 3\n\r\n";

/// Hands out the input `chunk` bytes at a time, as a socket might.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.len().min(self.1).min(buf.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn run_on(sink: &mut Sink<Vec<u8>>, input: &[u8], chunk: usize) -> Result<Ending, Failure> {
    read_frames(&mut Trickle(input, chunk), sink)
}

fn sink(raw: bool) -> Sink<Vec<u8>> {
    // The history told when the first half started: 13:48:40.
    let mut clock = Clock::default();
    clock.started(Period::First, 1_315_921_720_000);
    Sink::new(Vec::new(), raw, false, View::new(clock))
}

fn text(sink: &Sink<Vec<u8>>) -> String {
    String::from_utf8(sink.out.clone()).expect("utf8")
}

#[test]
fn raw_frames_are_printed_with_a_blank_line_each() {
    let input = [STATUS, GOAL].concat();
    for chunk in [1, 2, 7, 4096] {
        let mut sink = sink(true);
        let ending = run_on(&mut sink, &input, chunk);
        assert_eq!(ending.expect("ends"), Ending::Closed, "chunk {chunk}");
        let mut want = STATUS[..STATUS.len() - 2].to_vec();
        want.push(b'\n');
        want.extend_from_slice(&GOAL[..GOAL.len() - 2]);
        want.push(b'\n');
        assert_eq!(text(&sink), String::from_utf8(want).expect("utf8"));
        assert_eq!(
            (sink.printed, sink.last_seq, sink.ended),
            (2, Some(2), false)
        );
    }
}

#[test]
fn frames_read_as_a_match_in_words() {
    let mut sink = sink(false);
    let input = [STATUS, GOAL, STOP].concat();
    assert_eq!(run_on(&mut sink, &input, 5).expect("ends"), Ending::Closed);
    assert_eq!(
        text(&sink),
        "elp 0-0 tig · first half\n\
         1' GOAL tig — Luna (7) · elp 0-1 tig\n\
         1' FULL TIME · elp 0-1 tig\n"
    );
    assert!(sink.ended);
}

#[test]
fn a_resume_prints_nothing_twice() {
    let mut sink = sink(false);
    assert_eq!(
        run_on(&mut sink, &[STATUS, GOAL].concat(), 4096).expect("ends"),
        Ending::Closed
    );
    // The server sends the goal again (a resume from an older seq): it is not printed again.
    sink.printed = 0;
    assert_eq!(
        run_on(&mut sink, &[GOAL, STOP].concat(), 4096).expect("ends"),
        Ending::Closed
    );
    assert_eq!(sink.printed, 1);
    assert_eq!(text(&sink).matches("GOAL").count(), 1);
}

#[test]
fn a_live_terminal_keeps_the_score_line_at_the_bottom() {
    let mut clock = Clock::default();
    clock.started(Period::First, 1_315_921_720_000);
    let mut sink = Sink::new(Vec::new(), false, true, View::new(clock));
    run_on(&mut sink, &[STATUS, GOAL].concat(), 4096).expect("ends");
    sink.finish().expect("finish");
    assert_eq!(
        text(&sink),
        "elp 0-0 tig · first half\
         \r\x1b[2K1' GOAL tig — Luna (7) · elp 0-1 tig\nelp 0-1 tig · first half\n"
    );
}

#[test]
fn an_error_line_ends_with_its_reason() {
    let mut s = sink(true);
    let ending = run_on(&mut s, b"ERROR: unknown match\r\n", 3);
    assert_eq!(ending.expect("ends"), Ending::Error("unknown match".into()));
    assert_eq!(text(&s), "");
    let mut s = sink(true);
    let input = [STATUS, b"ERROR: too slow\r\n".as_slice()].concat();
    let ending = run_on(&mut s, &input, 5);
    assert_eq!(ending.expect("ends"), Ending::Error("too slow".into()));
    assert_eq!(s.last_seq, Some(1));
}

#[test]
fn early_closes() {
    let mut s = sink(true);
    assert_eq!(run_on(&mut s, b"", 10).expect("a close"), Ending::Closed);
    assert!(!s.opened);
    let mut s = sink(true);
    let partial = run_on(&mut s, &GOAL[..GOAL.len() - 2], 10);
    let Err(Failure::Lost(e)) = partial else {
        panic!("a loss expected: {partial:?}")
    };
    assert!(e.to_string().contains("in the middle of a frame"), "{e}");
    assert_eq!(text(&s), "");
    let mut s = sink(true);
    assert!(matches!(
        run_on(&mut s, b"\r\n", 10),
        Err(Failure::Fatal(_))
    ));
}

#[test]
fn command_lines_and_pauses() {
    let id = MatchId::parse("elp-tig-2011-09-10").expect("id");
    assert_eq!(
        command_line(1, "me", &id, None),
        "VERSION:1:CONNECT:me:MATCH:elp-tig-2011-09-10\r\n"
    );
    assert_eq!(
        command_line(2, "me", &id, Some(7)),
        "VERSION:2:CONNECT:me:MATCH:elp-tig-2011-09-10:SINCE:7\r\n"
    );
    assert_eq!(
        command_line(1, "me", &id, Some(7)),
        "VERSION:1:CONNECT:me:MATCH:elp-tig-2011-09-10\r\n"
    );
    assert_eq!(bracket("::1"), "[::1]");
    assert_eq!(bracket("127.0.0.1"), "127.0.0.1");
    let pauses: Vec<u128> = (1..=MAX_RESUMES)
        .map(|n| pause_before(n).as_millis())
        .collect();
    assert_eq!(pauses, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
}
