//! A resume's backlog (`SINCE:<seq>` on a stream port, `Last-Event-ID` or `?since=` on an SSE
//! stream), streamed from the core's history in bounded pieces as the client's socket drains,
//! before the subscriber joins the live fanout. The same for every encoding: only the frames
//! copied differ.
//!
//! Policy: a resuming subscriber's memory is bounded by [`piece_bytes`] (at most half of
//! `--max-queue`), whatever the backlog: the session task copies the next piece of stored
//! frames into one buffer, writes it (waiting for the socket through io_uring), then looks at
//! the history again, which may have grown meanwhile. Once what is left fits in one piece, the
//! caller subscribes with the seq reached, without an await in between, so the queued rest and
//! the live events that follow join with no gap and no duplicate. The backlog never counts
//! against the slow-consumer bound: a client cut off as too slow can always resume.

use std::time::Duration;

use futures_lite::future;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use glommio::timer::Timer;
use matchstream_protocol::encoding::Encoding;

use crate::fanout::Entry;
use crate::shard::Shard;

/// Most bytes written per piece, whatever `--max-queue` allows.
const MAX_PIECE: usize = 64 * 1024;

/// How long a resume cut short gets to take its error line.
const GOODBYE_TIME: Duration = Duration::from_secs(1);

/// Why a replay ended before its subscriber could join the live stream.
pub enum Stopped {
    /// Tell the client this (after the frames already written), then close.
    Reply(&'static str),
    /// The peer went away.
    Gone,
}

/// Bytes of backlog one piece may hold for a node whose slow-consumer bound is `max_queue`:
/// half of it, so the rest queued at subscription leaves room for live events; at most
/// [`MAX_PIECE`]; at least one frame (a piece always makes progress).
pub fn piece_bytes(max_queue: usize) -> usize {
    (max_queue / 2).min(MAX_PIECE)
}

/// What a connection about to subscribe does next ([`send_backlog`]).
pub enum Next {
    /// Subscribe, from this seq (`None`: no resume, the status first).
    Subscribe(Option<u64>),
    /// The stream ended during its backlog (the reason was said, or the peer left).
    Done,
}

/// Sends a resume's backlog if there is one ([`stream_backlog`]), and says why when the
/// stream ends during it instead ([`say_goodbye`]). The caller subscribes from the seq
/// returned before its next await. Shared by the stream port and the API's event streams.
pub async fn send_backlog(
    shard: &Shard,
    stream: &mut TcpStream,
    match_id: &str,
    encoding: Encoding,
    since: Option<u64>,
) -> Next {
    let Some(seq) = since else {
        return Next::Subscribe(None);
    };
    match stream_backlog(shard, stream, match_id, encoding, seq).await {
        Ok(reached) => Next::Subscribe(Some(reached)),
        Err(Stopped::Reply(reason)) => {
            say_goodbye(stream, reason, encoding).await;
            Next::Done
        }
        Err(Stopped::Gone) => Next::Done,
    }
}

/// Writes the stored events of `match_id` after `since` to `stream`, piece by piece, until
/// what is left fits in one piece; returns the seq reached. The caller must subscribe from it
/// before its next await.
pub async fn stream_backlog(
    shard: &Shard,
    stream: &mut TcpStream,
    match_id: &str,
    encoding: Encoding,
    since: u64,
) -> Result<u64, Stopped> {
    let budget = piece_bytes(shard.config.max_queue);
    let mut cursor = since;
    let mut piece: Vec<u8> = Vec::new();
    // The history being replayed: if the match gets a new incarnation meanwhile (its stored
    // history was rewound or replaced), the seqs already sent belong to the old one.
    let mut incarnation = None;
    loop {
        shard.sync();
        if shard.shutdown.is_set() {
            return Err(Stopped::Reply("server shutting down"));
        }
        // Every backlog is a resume (v2, SSE): a draining node sends it on to another node.
        if shard.node.drain.is_draining() {
            return Err(Stopped::Reply(crate::drain::REASON));
        }
        let frames = {
            let fanout = shard.fanout.borrow();
            let Some(view) = fanout.get(match_id) else {
                return Err(Stopped::Reply("match cancelled"));
            };
            if *incarnation.get_or_insert(view.state.incarnation) != view.state.incarnation {
                return Err(Stopped::Reply("match history changed"));
            }
            let rest = view.since(cursor);
            let (frames, reached) = fill_piece(rest, encoding, budget, &mut piece);
            if frames == rest.len() && piece.len() <= budget {
                // What is left fits in one piece: the subscription queues it.
                return Ok(cursor);
            }
            cursor = reached;
            frames as u64
        };
        write(stream, &piece).await?;
        shard.stats.add_bytes(piece.len() as u64);
        shard.stats.add_frames(frames);
    }
}

/// Renders the next piece into `piece`: the frames of `rest` from its start, whole, as many as
/// fit in `budget` bytes, and at least one (a piece always makes progress); returns how many
/// and the seq of the last.
fn fill_piece(
    rest: &[Entry],
    encoding: Encoding,
    budget: usize,
    piece: &mut Vec<u8>,
) -> (usize, u64) {
    piece.clear();
    let mut frames = 0;
    let mut reached = 0;
    for entry in rest {
        let before = piece.len();
        entry.write_frame(encoding, piece);
        if frames > 0 && piece.len() > budget {
            piece.truncate(before);
            break;
        }
        frames += 1;
        reached = entry.event.seq;
    }
    (frames, reached)
}

/// Writes one piece whole. Not raced with shutdown: a piece ends at a frame's end, and the
/// client gets whole frames before any error line; the node's grace period bounds the wait.
async fn write(stream: &mut TcpStream, piece: &[u8]) -> Result<(), Stopped> {
    stream.write_all(piece).await.map_err(|_| Stopped::Gone)
}

/// Tells a resuming client why its stream ends (the frames before were written whole), if
/// its socket takes the line (`ERROR: <reason>`, or an SSE `error` event) within
/// [`GOODBYE_TIME`].
pub async fn say_goodbye(stream: &mut TcpStream, reason: &str, encoding: Encoding) {
    let mut line = Vec::with_capacity(64);
    encoding.render_error(reason, &mut line);
    future::or(
        async {
            let _ = stream.write_all(&line).await;
        },
        async {
            Timer::new(GOODBYE_TIME).await;
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    use matchstream_protocol::script::{parse_script, SAMPLE};
    use matchstream_protocol::{Event, EventData, EventKind, Incarnation, Match};

    use crate::bus::MatchRecord;
    use crate::fanout::Fanout;

    /// A table holding one match with comments of these lengths (seq 1, 2, ...).
    fn table(lengths: &[usize]) -> (Fanout, String) {
        let script = parse_script(SAMPLE).expect("sample");
        let m = Match::create(script.new_match, 0, Incarnation::UNSET);
        let history = lengths
            .iter()
            .enumerate()
            .map(|(i, len)| {
                Arc::new(Event {
                    match_id: m.id.clone(),
                    seq: i as u64 + 1,
                    timestamp_ms: 0,
                    kind: EventKind::Comment,
                    data: EventData {
                        comment: Some("c".repeat(*len)),
                        ..EventData::default()
                    },
                })
            })
            .collect();
        let id = m.id.as_str().to_owned();
        let record = MatchRecord {
            state: Arc::new(m),
            history,
        };
        (Fanout::new(&[record]), id)
    }

    #[test]
    fn a_piece_holds_whole_frames_as_many_as_fit_and_at_least_one() {
        let (table, id) = table(&[100, 100, 100, 2000, 100]);
        let view = table.get(&id).expect("view");
        let size = |seq: u64| {
            let mut out = Vec::new();
            view.since(seq - 1)[0].write_frame(Encoding::V2, &mut out);
            out.len()
        };
        let mut piece = Vec::new();
        // Exactly two frames' worth: two, not three, and the bytes are those two frames.
        let two = size(1) + size(2);
        assert_eq!(
            fill_piece(view.since(0), Encoding::V2, two, &mut piece),
            (2, 2)
        );
        assert_eq!(piece.len(), two);
        // One byte short of two: one.
        assert_eq!(
            fill_piece(view.since(0), Encoding::V2, two - 1, &mut piece),
            (1, 1)
        );
        assert_eq!(piece.len(), size(1));
        // A frame larger than the budget still makes a piece of its own.
        assert_eq!(
            fill_piece(view.since(3), Encoding::V2, 500, &mut piece),
            (1, 4)
        );
        assert_eq!(piece.len(), size(4));
        // The rest of the history when it fits, with what was there before cleared.
        assert_eq!(
            fill_piece(view.since(4), Encoding::V2, 10_000, &mut piece),
            (1, 5)
        );
        assert_eq!(piece.len(), size(5));
        assert_eq!(
            fill_piece(view.since(5), Encoding::V2, 10_000, &mut piece),
            (0, 0)
        );
        assert!(piece.is_empty());
    }

    #[test]
    fn a_piece_is_half_the_bound_and_at_most_64_kib() {
        assert_eq!(piece_bytes(256 * 1024), 64 * 1024);
        assert_eq!(piece_bytes(8 * 1024), 4 * 1024);
        assert_eq!(piece_bytes(1), 0);
    }
}
