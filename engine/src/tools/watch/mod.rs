//! `matchstream watch`: a terminal subscriber. It checks in through the HTTP API and follows a
//! match on the stream port it is given (SPEC §3), or with `--sse` on the API port's event
//! stream (SPEC §8), and prints the match as a person reads it ([`view`]): a score line and
//! each event in words with its minute; `--raw` prints the frames (or SSE events) as they
//! arrive instead.
//!
//! It exits 0 when the stream ends as the server means it to (after `stop`, after the status
//! of a match that is not live for v1, or a 204 to an SSE resume after the end), and fails
//! with the reason of an error the server gives for good (`unknown match`, `match
//! cancelled`, ...). A v2 or SSE watcher whose stream is lost — the connection closed before
//! `stop` or reset, `too slow`, `server shutting down`, `node draining` — checks in again (for
//! v2 possibly another node) and resumes after the last seq it printed, with `SINCE` or
//! `Last-Event-ID`: nothing is printed twice or missed. It gives up after [`MAX_RESUMES`]
//! attempts in a row that brought nothing, pausing longer between each.

mod frames;
mod sse;
mod view;

use std::io::{ErrorKind, IsTerminal, Read, Write};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use matchstream_client::{connect, HttpClient};
use matchstream_protocol::api::parse_event_json;
use matchstream_protocol::{is_valid_user_id, EventKind, MatchId, Period};

use crate::config::WatchArgs;
use frames::{decode, frame_seq, next_piece, Decoded, Piece};
use view::{Clock, Happening, Status, View};

/// Longest frame or SSE block accepted before the stream is judged broken (a status with two
/// full rosters is a few kilobytes).
const MAX_FRAME: usize = 1024 * 1024;

/// Reconnections in a row that brought nothing new before giving up.
pub const MAX_RESUMES: u32 = 8;

/// Longest pause between two reconnections.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Errors after which a v2 or SSE watcher resumes.
const RESUMABLE: [&str; 3] = ["too slow", "server shutting down", "node draining"];

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
    let clock = if args.raw {
        Clock::default()
    } else {
        history_clock(&mut client, &id)
    };
    let stdout = std::io::stdout();
    let live = !args.raw && stdout.is_terminal();
    let mut sink = Sink::new(stdout.lock(), args.raw, live, View::new(clock));
    let resumable = args.sse || args.version == 2;
    let mut misses = 0;
    loop {
        sink.printed = 0;
        let (place, outcome) = if args.sse {
            let url = client.url().clone();
            (args.url.clone(), sse::session(&url, &id, &mut sink))
        } else {
            let line = command_line(args.version, &args.user, &id, sink.last_seq);
            tcp_session(&mut client, &line, &mut sink)
        };
        let why = match outcome {
            Ok(Ending::Closed) if sink.ended || (!resumable && sink.printed > 0) => {
                return sink.finish()
            }
            Ok(Ending::Closed) if !resumable || !sink.opened => {
                bail!("{place} closed the connection without sending anything")
            }
            Ok(Ending::Closed) => format!("{place} closed the stream before the match ended"),
            Ok(Ending::NoContent) => return sink.finish(),
            Ok(Ending::OutputClosed) => return Ok(()),
            Ok(Ending::Error(reason)) if resumable && RESUMABLE.contains(&reason.as_str()) => {
                format!("{place} said {reason:?}")
            }
            Ok(Ending::Error(reason)) => {
                sink.finish()?;
                bail!("ERROR from {place}: {reason}")
            }
            Err(Failure::Lost(e)) if resumable && sink.opened => format!("{e:#}"),
            Err(Failure::Lost(e) | Failure::Fatal(e)) => {
                sink.finish()?;
                return Err(e.context(format!("watching {id}")));
            }
        };
        if sink.printed > 0 {
            misses = 0;
        }
        misses += 1;
        if misses > MAX_RESUMES {
            sink.finish()?;
            bail!("watching {id}: {why}; gave up after {MAX_RESUMES} attempts");
        }
        let pause = pause_before(misses);
        sink.pause()?;
        eprintln!(
            "matchstream: {why}; resuming after seq {} in {} ms (attempt {misses} of {MAX_RESUMES})",
            sink.last_seq.unwrap_or(0),
            pause.as_millis()
        );
        std::thread::sleep(pause);
    }
}

/// The pause before the `n`th reconnection in a row: 100 ms, doubling, at most [`MAX_PAUSE`].
fn pause_before(n: u32) -> Duration {
    (Duration::from_millis(100) * 2u32.saturating_pow(n.saturating_sub(1).min(8))).min(MAX_PAUSE)
}

/// The clock of the match's periods from its history (`GET /1/match/<id>/history`); an empty
/// one (times of day) if it cannot be read.
fn history_clock(client: &mut HttpClient, id: &MatchId) -> Clock {
    let events = client
        .get(&format!("/1/match/{id}/history"))
        .ok()
        .filter(|r| r.status == 200)
        .and_then(|r| r.json().ok());
    let Some(events) = events.as_ref().and_then(|v| v.as_array()) else {
        return Clock::default();
    };
    Clock::from_history(
        events
            .iter()
            .filter_map(|e| parse_event_json(e, id).ok())
            .map(|e| (e.kind, e.timestamp_ms)),
    )
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

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    /// The server closed after a complete frame or event.
    Closed,
    /// The server's last words: `ERROR: <reason>`, or an SSE `error` event.
    Error(String),
    /// An SSE resume answered 204: the match ended with nothing after the resume point.
    NoContent,
    /// Our own output went away (`watch ... | head`): stop quietly.
    OutputClosed,
}

/// Why a connection failed.
#[derive(Debug)]
enum Failure {
    /// Lost (no checkin, no connection, reset, closed mid-frame): worth resuming.
    Lost(anyhow::Error),
    /// Refused for good (an unknown match, bytes that are no stream).
    Fatal(anyhow::Error),
}

/// One connection to a stream port: check in, connect, send `line`, read to the end. Returns
/// where it connected and how it ended.
fn tcp_session(
    client: &mut HttpClient,
    line: &str,
    sink: &mut Sink<impl Write>,
) -> (String, Result<Ending, Failure>) {
    let checkin = match client.checkin() {
        Ok(c) => c,
        Err(e) => return (client.base_url().to_owned(), Err(Failure::Lost(e))),
    };
    let target = format!("{}:{}", bracket(&checkin.host), checkin.port);
    // No read timeout: a match may be quiet for a long while.
    let outcome = connect(&target)
        .and_then(|mut stream| {
            stream
                .write_all(line.as_bytes())
                .with_context(|| format!("cannot send the command to {target}"))?;
            Ok(stream)
        })
        .map_err(Failure::Lost)
        .and_then(|mut stream| read_frames(&mut stream, sink));
    (target, outcome)
}

/// Reads frames from `input` into `sink` until the server closes or sends an error.
fn read_frames(input: &mut impl Read, sink: &mut Sink<impl Write>) -> Result<Ending, Failure> {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        while let Some((piece, consumed)) = next_piece(&buf).map_err(Failure::Fatal)? {
            sink.opened = true;
            match piece {
                Piece::Error(reason) => return Ok(Ending::Error(reason)),
                Piece::Frame(frame) => {
                    let item = match decode(frame) {
                        Ok(Decoded::Status(s)) => Item::Status(s),
                        Ok(Decoded::Event(h)) => Item::Event(h),
                        Err(_) => Item::Other(frame_seq(frame)),
                    };
                    let mut text = frame.to_vec();
                    text.push(b'\n');
                    if !sink.take(&item, &text) {
                        return Ok(Ending::OutputClosed);
                    }
                }
            }
            buf.drain(..consumed);
        }
        if buf.len() > MAX_FRAME {
            return Err(Failure::Fatal(anyhow!(
                "no frame terminator within {MAX_FRAME} bytes"
            )));
        }
        let n = match input.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::Lost(anyhow!(e).context("connection lost"))),
        };
        if n == 0 {
            return if buf.is_empty() {
                Ok(Ending::Closed)
            } else {
                Err(Failure::Lost(anyhow!(
                    "the server closed the connection in the middle of a frame: {:?}",
                    String::from_utf8_lossy(&buf[..buf.len().min(200)])
                )))
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// What a frame or an SSE event said, for the [`Sink`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// The match's status.
    Status(Status),
    /// An event.
    Event(Happening),
    /// Anything else (an SSE comment, a frame this watcher cannot read), with its seq if any.
    Other(Option<u64>),
}

/// Where the watcher prints, and what it has seen across connections: the view, the last seq
/// (where a resume starts), whether the match ended.
struct Sink<W: Write> {
    out: W,
    raw: bool,
    /// A terminal: the score line stays at the bottom, rewritten after each event.
    live: bool,
    /// The score line is on screen (it is erased before the next line).
    shown: bool,
    view: View,
    /// The seq of the last status or event printed.
    last_seq: Option<u64>,
    /// `stop`, or the status of an ended match, was seen.
    ended: bool,
    /// A stream was opened at least once (a later loss is resumed, a first failure is not).
    opened: bool,
    /// Statuses and events printed on the current connection.
    printed: u64,
    /// The output went away.
    closed: bool,
}

impl<W: Write> Sink<W> {
    fn new(out: W, raw: bool, live: bool, view: View) -> Sink<W> {
        Sink {
            out,
            raw,
            live,
            shown: false,
            view,
            last_seq: None,
            ended: false,
            opened: false,
            printed: 0,
            closed: false,
        }
    }

    /// Takes one item in and prints it (`raw`: the wire text as given); false once the
    /// output has gone away. An event at or before the last seq printed is dropped: a resume
    /// never prints an event twice.
    fn take(&mut self, item: &Item, raw: &[u8]) -> bool {
        let seq = match item {
            Item::Status(s) => s.seq,
            Item::Event(h) => h.seq,
            Item::Other(seq) => *seq,
        };
        if let (Item::Event(_), Some(seq), Some(last)) = (item, seq, self.last_seq) {
            if seq <= last {
                return true;
            }
        }
        if seq.is_some() {
            self.last_seq = seq;
        }
        let written = match item {
            Item::Status(s) => {
                self.ended |= s.period == Period::Ended;
                self.printed += 1;
                self.view.status(s);
                match (self.raw, self.view.score_line()) {
                    (true, _) | (false, None) => self.write_raw(raw),
                    (false, Some(line)) => self.line(None, &line),
                }
            }
            Item::Event(h) => {
                self.ended |= h.kind == EventKind::Stop;
                self.printed += 1;
                let line = self.view.event(h);
                if self.raw {
                    self.write_raw(raw)
                } else {
                    let score = self.view.score_line();
                    self.line(Some(&line), score.as_deref().unwrap_or_default())
                }
            }
            Item::Other(_) if self.raw => self.write_raw(raw),
            Item::Other(_) => Ok(()),
        };
        match written {
            Ok(()) => true,
            Err(_) => {
                self.closed = true;
                false
            }
        }
    }

    fn write_raw(&mut self, raw: &[u8]) -> std::io::Result<()> {
        self.out.write_all(raw)?;
        self.out.flush()
    }

    /// Prints `line` (if any) and the score: on a terminal the score stays as the last,
    /// unfinished line, rewritten each time; elsewhere it is printed once, with the status
    /// (each event line carries the score).
    fn line(&mut self, line: Option<&str>, score: &str) -> std::io::Result<()> {
        if self.shown {
            self.out.write_all(b"\r\x1b[2K")?;
            self.shown = false;
        }
        if let Some(line) = line {
            writeln!(self.out, "{line}")?;
        }
        if self.live {
            write!(self.out, "{score}")?;
            self.shown = true;
        } else if line.is_none() {
            writeln!(self.out, "{score}")?;
        }
        self.out.flush()
    }

    /// Ends the unfinished score line before something else is written (a notice on stderr).
    fn pause(&mut self) -> anyhow::Result<()> {
        if self.shown && !self.closed {
            writeln!(self.out)?;
            self.shown = false;
        }
        Ok(())
    }

    /// Ends the output.
    fn finish(&mut self) -> anyhow::Result<()> {
        self.pause()
    }
}

#[cfg(test)]
mod tests;
