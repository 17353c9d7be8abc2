//! `matchstream watch`: a terminal subscriber. It checks in through the HTTP API, connects to
//! the stream port it is given, sends the command line of SPEC §3 and prints every frame as it
//! arrives (the frame's lines, then a blank line for its `\r\n` terminator).
//!
//! It exits 0 when the server closes the connection after a complete frame (the match ended,
//! or is not live for v1), and fails with the reason of an `ERROR:` line. A v2 watcher cut off
//! as too slow checks in again and resumes with `SINCE`, as the protocol intends.

use std::io::{ErrorKind, Read, Write};

use anyhow::{anyhow, bail, Context};
use matchstream_client::{connect, HttpClient};
use matchstream_protocol::{is_valid_user_id, MatchId};

use crate::config::WatchArgs;

/// Longest frame accepted before the stream is judged broken (a frame with two full rosters
/// is a few kilobytes).
const MAX_FRAME: usize = 1024 * 1024;

/// Resumptions in a row that brought no new frame before giving up.
const MAX_RESUMES: u32 = 3;

/// Runs `matchstream watch`.
pub fn run(args: WatchArgs) -> anyhow::Result<()> {
    if !matches!(args.version, 1 | 2) {
        bail!("--version must be 1 or 2, got {}", args.version);
    }
    if !is_valid_user_id(&args.user) {
        bail!("--user {:?}: use 1 to 64 of A-Z a-z 0-9 . _ -", args.user);
    }
    let id = MatchId::parse(&args.match_id).map_err(|e| anyhow!("{:?}: {e}", args.match_id))?;
    let mut client = HttpClient::new(&args.url)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut since = None;
    let mut resumes = 0;
    loop {
        let checkin = client.checkin()?;
        let target = format!("{}:{}", bracket(&checkin.host), checkin.port);
        // No read timeout: a match may be quiet for a long while.
        let mut stream = connect(&target)?;
        let line = command_line(args.version, &args.user, &id, since);
        stream
            .write_all(line.as_bytes())
            .with_context(|| format!("cannot send the command to {target}"))?;
        let mut progress = Progress {
            frames: 0,
            last_seq: since,
        };
        let ending = copy_frames(&mut stream, &mut out, &mut progress)
            .with_context(|| format!("watching {id} on {target}"))?;
        match ending {
            Ending::Closed | Ending::OutputClosed => return Ok(()),
            Ending::Error(reason)
                if reason == "too slow" && args.version == 2 && resumes < MAX_RESUMES =>
            {
                resumes = if progress.frames > 0 { 1 } else { resumes + 1 };
                since = progress.last_seq;
                eprintln!(
                    "matchstream: {target} cut us off as too slow; resuming after seq {}",
                    since.unwrap_or(0)
                );
            }
            Ending::Error(reason) => bail!("ERROR from {target}: {reason}"),
        }
    }
}

/// The subscriber's command line, `\r\n` included.
pub fn command_line(version: u8, user: &str, id: &MatchId, since: Option<u64>) -> String {
    match since {
        Some(seq) if version >= 2 => {
            format!("VERSION:{version}:CONNECT:{user}:MATCH:{id}:SINCE:{seq}\r\n")
        }
        _ => format!("VERSION:{version}:CONNECT:{user}:MATCH:{id}\r\n"),
    }
}

/// `[::1]` for an IPv6 address, the host unchanged otherwise.
fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// What was seen on one connection.
#[derive(Debug, Default, PartialEq, Eq)]
struct Progress {
    /// Frames printed.
    frames: u64,
    /// The last `seq` detail seen (v2), or where the connection resumed from.
    last_seq: Option<u64>,
}

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// The server closed after a complete frame.
    Closed,
    /// The server sent `ERROR: <reason>`.
    Error(String),
    /// Our own output went away (`watch ... | head`): stop quietly.
    OutputClosed,
}

/// Copies frames from `input` to `out` until the server closes or sends an error.
fn copy_frames(
    input: &mut impl Read,
    out: &mut impl Write,
    progress: &mut Progress,
) -> anyhow::Result<Ending> {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        while let Some((piece, consumed)) = next_piece(&buf)? {
            match piece {
                Piece::Error(reason) => return Ok(Ending::Error(reason)),
                Piece::Frame(frame) => {
                    if let Some(seq) = frame_seq(frame) {
                        progress.last_seq = Some(seq);
                    }
                    progress.frames += 1;
                    let written = out
                        .write_all(frame)
                        .and_then(|()| out.write_all(b"\n"))
                        .and_then(|()| out.flush());
                    match written {
                        Ok(()) => {}
                        Err(e) if e.kind() == ErrorKind::BrokenPipe => {
                            return Ok(Ending::OutputClosed)
                        }
                        Err(e) => return Err(anyhow!(e).context("cannot write the frame")),
                    }
                }
            }
            buf.drain(..consumed);
        }
        if buf.len() > MAX_FRAME {
            bail!("no frame terminator within {MAX_FRAME} bytes");
        }
        let n = match input.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(anyhow!(e).context("connection lost")),
        };
        if n == 0 {
            return match (buf.is_empty(), progress.frames) {
                (true, 0) => bail!("the server closed the connection without sending a frame"),
                (true, _) => Ok(Ending::Closed),
                (false, _) => bail!(
                    "the server closed the connection in the middle of a frame: {:?}",
                    String::from_utf8_lossy(&buf[..buf.len().min(200)])
                ),
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A complete piece of the stream.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    /// A frame's header and detail lines, without the terminator line.
    Frame(&'a [u8]),
    /// The reason of an `ERROR: <reason>` line.
    Error(String),
}

/// The next complete piece at the start of `buf`, and the bytes it takes; `None` if more
/// bytes are needed.
fn next_piece(buf: &[u8]) -> anyhow::Result<Option<(Piece<'_>, usize)>> {
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
fn frame_seq(frame: &[u8]) -> Option<u64> {
    frame
        .split(|b| *b == b'\n')
        .find_map(|line| line.strip_prefix(b"\tseq: "))
        .and_then(|n| std::str::from_utf8(n).ok()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &[u8] = b"2011-09-13 13:48:40: status:\n\tseq: 1\n\thome: <<\"elp\">>\n\r\n";
    const GOAL: &[u8] = b"2011-09-13 13:48:51: goal:\n\tseq: 2\n\tplayer: Luna (7) \n\
                          \tteam: <<\"tig\">>\n\r\n";

    fn run_on(input: &[u8], chunk: usize) -> (anyhow::Result<Ending>, String, Progress) {
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
        let mut out = Vec::new();
        let mut progress = Progress::default();
        let ending = copy_frames(&mut Trickle(input, chunk), &mut out, &mut progress);
        (ending, String::from_utf8(out).expect("utf8"), progress)
    }

    #[test]
    fn frames_are_printed_with_a_blank_line_each() {
        let input = [STATUS, GOAL].concat();
        for chunk in [1, 2, 7, 4096] {
            let (ending, out, progress) = run_on(&input, chunk);
            assert_eq!(ending.expect("ends"), Ending::Closed, "chunk {chunk}");
            assert_eq!(
                out,
                "2011-09-13 13:48:40: status:\n\tseq: 1\n\thome: <<\"elp\">>\n\n\
                 2011-09-13 13:48:51: goal:\n\tseq: 2\n\tplayer: Luna (7) \n\
                 \tteam: <<\"tig\">>\n\n"
            );
            assert_eq!(
                progress,
                Progress {
                    frames: 2,
                    last_seq: Some(2)
                }
            );
        }
    }

    #[test]
    fn an_error_line_ends_with_its_reason() {
        let (ending, out, _) = run_on(b"ERROR: unknown match\r\n", 3);
        assert_eq!(ending.expect("ends"), Ending::Error("unknown match".into()));
        assert_eq!(out, "");
        let input = [STATUS, b"ERROR: too slow\r\n".as_slice()].concat();
        let (ending, _, progress) = run_on(&input, 5);
        assert_eq!(ending.expect("ends"), Ending::Error("too slow".into()));
        assert_eq!(progress.last_seq, Some(1));
    }

    #[test]
    fn early_closes_are_errors() {
        let (ending, _, _) = run_on(b"", 10);
        let text = ending.expect_err("nothing").to_string();
        assert!(text.contains("without sending a frame"), "{text}");
        let (ending, out, _) = run_on(&GOAL[..GOAL.len() - 2], 10);
        let text = ending.expect_err("partial").to_string();
        assert!(text.contains("in the middle of a frame"), "{text}");
        assert_eq!(out, "");
        let (ending, _, _) = run_on(b"\r\n", 10);
        assert!(ending.is_err());
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
    }

    #[test]
    fn seqs_and_command_lines() {
        assert_eq!(frame_seq(GOAL), Some(2));
        assert_eq!(
            frame_seq(b"2011-09-13 13:48:51: goal:\n\tteam: <<\"tig\">>\n"),
            None
        );
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
    }
}
