//! The stream ports' wire, as `watch` reads it: the pieces of a stream (frames and `ERROR:`
//! lines, docs/protocol.md) and a frame's details decoded for the view. Decoding is lenient:
//! it takes the keys it knows and skips any other line, so a server that adds a detail does not
//! break an older watcher.

use anyhow::{anyhow, bail, Context};
use matchstream_protocol::{Card, EventKind, Period};

use super::view::{Happening, Status, Who};

/// A complete piece of the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A frame's header and detail lines, without the terminator line.
    Frame(&'a [u8]),
    /// The reason of an `ERROR: <reason>` line.
    Error(String),
}

/// The next complete piece at the start of `buf`, and the bytes it takes; `None` if more
/// bytes are needed.
pub fn next_piece(buf: &[u8]) -> anyhow::Result<Option<(Piece<'_>, usize)>> {
    const ERROR: &[u8] = b"ERROR:";
    if buf.len() < ERROR.len() && ERROR.starts_with(buf) {
        return Ok(None);
    }
    if buf.starts_with(ERROR) {
        let Some(end) = buf.iter().position(|b| *b == b'\n') else {
            return Ok(None);
        };
        let reason = String::from_utf8_lossy(&buf[ERROR.len()..end])
            .trim()
            .to_owned();
        return Ok(Some((Piece::Error(reason), end + 1)));
    }
    // A frame is lines ending in `\n`, then a line holding only `\r\n`.
    if buf.starts_with(b"\r\n") {
        bail!("a frame terminator with no frame before it");
    }
    Ok(buf
        .windows(3)
        .position(|w| w == b"\n\r\n")
        .map(|at| (Piece::Frame(&buf[..=at]), at + 3)))
}

/// The `seq` detail of a v2 frame.
pub fn frame_seq(frame: &[u8]) -> Option<u64> {
    frame
        .split(|b| *b == b'\n')
        .find_map(|line| line.strip_prefix(b"\tseq: "))
        .and_then(|n| std::str::from_utf8(n).ok()?.trim().parse().ok())
}

/// What a frame says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A status frame.
    Status(Status),
    /// An event frame.
    Event(Happening),
}

/// Decodes a frame (as [`Piece::Frame`] gives it).
pub fn decode(frame: &[u8]) -> anyhow::Result<Decoded> {
    let text = std::str::from_utf8(frame).context("a frame that is not UTF-8")?;
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let (stamp, kind) = header
        .split_at_checked(19)
        .and_then(|(stamp, rest)| Some((stamp, rest.strip_prefix(": ")?.strip_suffix(':')?)))
        .ok_or_else(|| anyhow!("not a frame header: {header:?}"))?;
    let timestamp_ms = parse_timestamp(stamp).ok_or_else(|| anyhow!("bad time {stamp:?}"))?;
    let kind = EventKind::parse(kind).ok_or_else(|| anyhow!("unknown kind {kind:?}"))?;
    let mut h = Happening::new(kind, timestamp_ms);
    let mut status = Status {
        seq: None,
        home: String::new(),
        visit: String::new(),
        home_score: 0,
        visit_score: 0,
        period: Period::NotStarted,
    };
    for line in lines {
        // Roster lines (`\t\t name (n) `) and roster keys (`\thome_players:`) say nothing the
        // view shows.
        let Some((key, value)) = line.strip_prefix('\t').and_then(|l| l.split_once(": ")) else {
            continue;
        };
        match key {
            "seq" => h.seq = value.trim().parse().ok(),
            "team" => h.team = Some(binary(value)),
            "player_team" => h.player_team = Some(binary(value)),
            "player" => h.player = player(value),
            "player_out" => h.player_out = player(value),
            "player_in" => h.player_in = player(value),
            "card" => h.card = Card::parse(value.trim()),
            "comment" => h.comment = Some(binary(value)),
            "home" => status.home = binary(value),
            "visit" => status.visit = binary(value),
            "home_score" => status.home_score = value.trim().parse().unwrap_or(0),
            "visit_score" => status.visit_score = value.trim().parse().unwrap_or(0),
            "period" => status.period = Period::parse(value.trim()).unwrap_or(status.period),
            _ => {}
        }
    }
    if kind == EventKind::Status {
        status.seq = h.seq;
        Ok(Decoded::Status(status))
    } else {
        Ok(Decoded::Event(h))
    }
}

/// The text of an Erlang binary, `<<"keeps \"el Matador\"">>`; other values as they are.
fn binary(value: &str) -> String {
    let Some(inner) = value
        .strip_prefix("<<\"")
        .and_then(|v| v.strip_suffix("\">>"))
    else {
        return value.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' {
            chars.next().unwrap_or(c)
        } else {
            c
        });
    }
    out
}

/// A player, `Luna (7) `.
fn player(value: &str) -> Option<Who> {
    let (name, number) = value.trim_end().strip_suffix(')')?.rsplit_once(" (")?;
    Some(Who {
        name: name.to_owned(),
        number: number.parse().ok()?,
    })
}

/// Milliseconds since the epoch of `YYYY-MM-DD HH:MM:SS` (UTC).
fn parse_timestamp(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' {
        return None;
    }
    let num = |from: usize, to: usize| s.get(from..to)?.parse::<u64>().ok();
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || day == 0 || day > 31 {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}

/// Days from 1970-01-01 to a date on or after it: Howard Hinnant's `days_from_civil`, the
/// inverse of the one the frames are rendered with.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let y = if month <= 2 {
        year.checked_sub(1)?
    } else {
        year
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matchstream_protocol::frame::{render_event, render_status, Version};
    use matchstream_protocol::script::{parse_script, SAMPLE};
    use matchstream_protocol::state::{apply, validate};
    use matchstream_protocol::{Event, Match};

    /// Decodes what the server renders for every event of the sample match.
    #[test]
    fn frames_decode_to_what_was_rendered() {
        let script = parse_script(SAMPLE).expect("sample");
        let mut m = Match::create(
            script.new_match,
            1_315_921_727_000,
            matchstream_protocol::Incarnation::UNSET,
        );
        let mut seq = 0;
        for step in script.steps {
            let matchstream_protocol::script::Step::Event(posted) = step else {
                continue;
            };
            seq += 1;
            let data = validate(&m, &posted).expect("valid");
            let e = Event {
                match_id: m.id.clone(),
                seq,
                timestamp_ms: 1_315_921_727_000 + seq * 1000,
                kind: posted.kind,
                data,
            };
            apply(&mut m, &e);
            for version in Version::ALL {
                let mut bytes = Vec::new();
                render_event(&e, version, &mut bytes);
                let frame = &bytes[..bytes.len() - 2];
                let Decoded::Event(h) = decode(frame).expect("decodes") else {
                    panic!("an event")
                };
                assert_eq!(h.seq, (version == Version::V2).then_some(seq));
                assert_eq!(h.timestamp_ms, e.timestamp_ms);
                assert_eq!(h.kind, e.kind);
                let d = &e.data;
                assert_eq!(h.team.as_deref(), d.team.as_ref().map(|t| t.as_str()));
                assert_eq!(
                    h.player_team.as_deref(),
                    d.player_team.as_ref().map(|t| t.as_str())
                );
                let who = |p: &Option<matchstream_protocol::Player>| {
                    p.as_ref().map(|p| Who {
                        name: p.name.clone(),
                        number: p.number,
                    })
                };
                assert_eq!(h.player, who(&d.player));
                assert_eq!(h.player_out, who(&d.player_out));
                assert_eq!(h.player_in, who(&d.player_in));
                assert_eq!(h.card, d.card);
                assert_eq!(h.comment, d.comment);
            }
            let mut bytes = Vec::new();
            render_status(&m, Version::V2, &mut bytes);
            let Decoded::Status(s) = decode(&bytes[..bytes.len() - 2]).expect("decodes") else {
                panic!("a status")
            };
            assert_eq!(
                s,
                Status {
                    seq: Some(seq),
                    home: "elp".into(),
                    visit: "tig".into(),
                    home_score: m.home_score,
                    visit_score: m.visit_score,
                    period: m.period,
                }
            );
        }
        assert!(seq > 20, "the whole sample");
    }

    #[test]
    fn values_and_times() {
        assert_eq!(
            binary(r#"<<"keeps \"el Matador\" \\ up">>"#),
            r#"keeps "el Matador" \ up"#
        );
        assert_eq!(
            player("Fernandez (18) "),
            Some(Who {
                name: "Fernandez".into(),
                number: 18
            })
        );
        assert_eq!(player("Luna"), None);
        assert_eq!(
            parse_timestamp("2011-09-13 13:48:51"),
            Some(1_315_921_731_000)
        );
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_timestamp("2000-02-29 23:59:59"),
            Some(951_868_799_000)
        );
        assert_eq!(parse_timestamp("2011-13-13 13:48:51"), None);
        assert!(decode(b"garbage\n").is_err());
        assert!(decode(b"2011-09-13 13:48:51: gaol:\n").is_err());
    }

    #[test]
    fn pieces() {
        assert_eq!(next_piece(b"").expect("ok"), None);
        assert_eq!(next_piece(b"ERR").expect("ok"), None);
        assert_eq!(next_piece(b"ERROR: bad").expect("ok"), None);
        assert_eq!(
            next_piece(b"ERROR: bad user id\r\nrest").expect("ok"),
            Some((Piece::Error("bad user id".into()), 20))
        );
        assert_eq!(
            next_piece(b"ERROR:x\n").expect("ok"),
            Some((Piece::Error("x".into()), 8))
        );
        assert_eq!(
            next_piece(b"2011-09-13 13:48:51: stop:\n").expect("ok"),
            None
        );
        assert_eq!(
            next_piece(b"2011-09-13 13:48:51: stop:\n\r\nmore").expect("ok"),
            Some((Piece::Frame(b"2011-09-13 13:48:51: stop:\n"), 29))
        );
        assert!(next_piece(b"\r\n").is_err());
        assert_eq!(
            frame_seq(b"2011-09-13 13:48:51: goal:\n\tseq: 2\n\tteam: <<\"tig\">>\n"),
            Some(2)
        );
        assert_eq!(
            frame_seq(b"2011-09-13 13:48:51: goal:\n\tteam: <<\"tig\">>\n"),
            None
        );
    }
}
