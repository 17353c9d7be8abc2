//! Randomized robustness of the parsers that face the network: whatever bytes a subscriber
//! or a watcher sends, parsing returns a value or an error, never a panic. (A stand-in for
//! cargo-fuzz, which needs a nightly toolchain; deterministic, so a failure reproduces.)

use matchstream_protocol::api::{parse_new_match, parse_posted_event};
use matchstream_protocol::command::{find_line, parse_command, MAX_COMMAND_LINE};
use matchstream_protocol::script::parse_script;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `seed` mutated: bytes flipped, inserted, deleted, duplicated.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(6) {
        let at = rng.below(out.len() + 1);
        match rng.below(5) {
            0 if at < out.len() => out[at] = rng.next() as u8,
            1 => out.insert(at, rng.next() as u8),
            2 if at < out.len() => {
                out.remove(at);
            }
            3 => {
                let special = [b':', b'\r', b'\n', b'"', b'\\', b'{', b'}', 0xff, b'9'];
                out.insert(at, special[rng.below(special.len())]);
            }
            _ => {
                let end = (at + rng.below(16)).min(out.len());
                let chunk = out[at..end].to_vec();
                out.splice(at..at, chunk);
            }
        }
    }
    out
}

#[test]
fn command_lines_never_panic() {
    let seeds: [&[u8]; 3] = [
        b"VERSION:1:CONNECT:user:MATCH:elp-tig-2011-09-10\r\n",
        b"VERSION:2:CONNECT:u.1-x:MATCH:elp-tig-2011-09-10:SINCE:12\r\n",
        b"VERSION:2:CONNECT:u:MATCH:x:SINCE:18446744073709551616\n",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..50_000 {
        let input = mutate(&mut rng, seeds[i % seeds.len()]);
        match find_line(&input) {
            Ok(Some(n)) => {
                assert!(n <= input.len());
                let _ = parse_command(&input[..n]);
            }
            Ok(None) => assert!(input.len() < MAX_COMMAND_LINE),
            Err(_) => {}
        }
        let _ = parse_command(&input);
    }
}

#[test]
fn api_bodies_never_panic() {
    let seeds: [&[u8]; 3] = [
        br#"{"home":"elp","visit":"tig","start_date":"2011-09-10","home_players":[{"number":25,"name":"Albil"}]}"#,
        br#"{"kind":"substitution","team":"elp","player_out":18,"player_in":{"number":21,"name":"Silva"}}"#,
        br#"{"kind":"comment","comment":"a \"quoted\" \\ line"}"#,
    ];
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for i in 0..30_000 {
        let input = mutate(&mut rng, seeds[i % seeds.len()]);
        let _ = parse_new_match(&input);
        let _ = parse_posted_event(&input);
    }
}

#[test]
fn scripts_never_panic() {
    let seed = matchstream_protocol::script::SAMPLE.as_bytes();
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    for _ in 0..300 {
        let input = mutate(&mut rng, seed);
        let _ = parse_script(&String::from_utf8_lossy(&input));
    }
}
