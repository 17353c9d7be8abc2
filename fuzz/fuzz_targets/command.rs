//! The stream command line (protocol/src/command.rs), as a session reads it: `find_line` on
//! what has arrived, then `parse_command` on the line.
//!
//! Properties:
//! - `find_line` finds the first LF within `MAX_COMMAND_LINE` bytes, and nothing else: the
//!   line it returns ends with the first LF, fits the limit, and a shorter read of the same
//!   bytes finds the same line or waits (never `TooLong` early, never another line);
//! - an accepted command is valid (user id, graphic match id without `:`, `SINCE` only in
//!   version 2, `INCARNATION` only after `SINCE`) and survives write → parse unchanged; its
//!   canonical line is a fixed point;
//! - a line end changes nothing: a line without one parses like the same line with `\n` or
//!   `\r\n` appended.
#![no_main]

use libfuzzer_sys::fuzz_target;
use matchstream_fuzz::write_command;
use matchstream_protocol::command::{find_line, parse_command, CommandError, MAX_COMMAND_LINE};
use matchstream_protocol::frame::Version;
use matchstream_protocol::is_valid_user_id;

fuzz_target!(|data: &[u8]| {
    let first_lf = data.iter().position(|&b| b == b'\n');
    let found = find_line(data);
    match found {
        Ok(Some(n)) => {
            assert_eq!(Some(n - 1), first_lf);
            assert!(n <= MAX_COMMAND_LINE);
        }
        Ok(None) => assert!(first_lf.is_none() && data.len() < MAX_COMMAND_LINE),
        Err(CommandError::TooLong) => {
            assert!(data.len() >= MAX_COMMAND_LINE);
            assert!(first_lf.is_none_or(|i| i >= MAX_COMMAND_LINE));
        }
        Err(e) => panic!("find_line gave {e:?}"),
    }
    // Bytes arrive in pieces: every shorter read agrees or waits.
    for cut in [
        data.len() / 2,
        data.len().saturating_sub(1),
        MAX_COMMAND_LINE - 1,
    ] {
        let Some(prefix) = data.get(..cut) else {
            continue;
        };
        let want = match found {
            Ok(Some(n)) if cut < n => Ok(None),
            Err(CommandError::TooLong) if cut < MAX_COMMAND_LINE => Ok(None),
            other => other,
        };
        assert_eq!(find_line(prefix), want, "a read of {cut} bytes");
    }

    // The session parses the line it found; any bytes are worth parsing as a line too.
    let line = match found {
        Ok(Some(n)) => &data[..n],
        _ => data,
    };
    let parsed = parse_command(line);
    if let Ok(c) = &parsed {
        assert!(is_valid_user_id(&c.user_id), "user {:?}", c.user_id);
        assert!(!c.match_id.is_empty());
        assert!(c
            .match_id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b':'));
        assert!(c.since.is_none() || c.version == Version::V2);
        assert!(c.incarnation.is_none() || c.since.is_some());
        assert!(c.incarnation.is_none_or(|i| i.is_set()));
        let canonical = write_command(c);
        if canonical.len() <= MAX_COMMAND_LINE {
            assert_eq!(find_line(&canonical), Ok(Some(canonical.len())));
        }
        assert_eq!(parse_command(&canonical).as_ref(), Ok(c));
    }
    if !line.ends_with(b"\n") && !line.ends_with(b"\r") {
        for end in [&b"\n"[..], b"\r\n"] {
            let ended = [line, end].concat();
            assert_eq!(parse_command(&ended), parsed, "with {end:?} appended");
        }
    }
});
