//! Randomized robustness of the request parser: mutated and split requests never panic, a
//! complete request never claims more bytes than it was given, and a valid request parses
//! the same however it is split. (A stand-in for cargo-fuzz, which needs nightly.)

use matchstream_http::{parse_request, Limits, Parsed};

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

const SEEDS: [&[u8]; 3] = [
    b"GET /1/match/elp-tig-2011-09-10/history?since=3 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /1/matches HTTP/1.1\r\nAuthorization: Bearer t\r\nContent-Length: 12\r\n\r\n{\"home\":\"a\"}",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
];

#[test]
fn mutated_requests_never_panic_or_overrun() {
    let limits = Limits::default();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for i in 0..50_000 {
        let mut input = SEEDS[i % SEEDS.len()].to_vec();
        for _ in 0..=rng.below(5) {
            let at = rng.below(input.len() + 1);
            match rng.below(4) {
                0 if at < input.len() => input[at] = rng.next() as u8,
                1 => input.insert(at, [b'\r', b'\n', b':', b' ', b'0', 0x80][rng.below(6)]),
                2 if at < input.len() => {
                    input.remove(at);
                }
                _ => input.truncate(at),
            }
        }
        if let Ok(Parsed::Complete { consumed, .. }) = parse_request(&input, &limits) {
            assert!(consumed <= input.len());
        }
    }
}

#[test]
fn a_valid_request_parses_the_same_at_every_split() {
    let limits = Limits::default();
    for seed in SEEDS {
        let Ok(Parsed::Complete { request, consumed }) = parse_request(seed, &limits) else {
            panic!("seed does not parse");
        };
        for cut in 0..consumed {
            assert!(
                matches!(parse_request(&seed[..cut], &limits), Ok(Parsed::Partial)),
                "cut at {cut}"
            );
        }
        let Ok(Parsed::Complete { request: again, .. }) = parse_request(seed, &limits) else {
            panic!("unstable");
        };
        assert_eq!(request, again);
    }
}
