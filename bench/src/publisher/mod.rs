//! fanout's publishing, the same for matchstream and every baseline: when each event may go
//! ([`flow`]: paced, or a window of W events ahead of the slowest live subscriber, which
//! [`window`] tracks across every shard), what is written per system ([`publish`]), and the
//! loop that writes it pipelined and reads the answers ([`pipeline`]).

pub mod flow;
pub mod pipeline;
pub mod publish;
pub mod window;
