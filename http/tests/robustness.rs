//! Randomized robustness of the request parser: mutated and split requests never panic, a
//! complete request never claims more bytes than it was given, and a valid request parses
//! to the request written out by hand however it is split; likewise mutated response heads.
//! (A stand-in for cargo-fuzz, which needs nightly.)

use matchstream_http::{
    parse_request, parse_response_head, Limits, Method, Parsed, ParsedHead, Request, ResponseLimits,
};

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

/// `seed` with up to six random edits (a byte changed, inserted or removed, a truncation).
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut input = seed.to_vec();
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
    input
}

#[test]
fn mutated_requests_never_panic_or_overrun() {
    let limits = Limits::default();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for i in 0..50_000 {
        let input = mutate(&mut rng, SEEDS[i % SEEDS.len()]);
        if let Ok(Parsed::Complete { consumed, .. }) = parse_request(&input, &limits) {
            assert!(consumed <= input.len());
        }
    }
}

const RESPONSE_SEEDS: [&[u8]; 3] = [
    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"seq\":2}",
    b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n[]",
];

#[test]
fn mutated_response_heads_never_panic_or_overrun() {
    let limits = ResponseLimits::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..50_000 {
        let input = mutate(&mut rng, RESPONSE_SEEDS[i % RESPONSE_SEEDS.len()]);
        if let Ok(ParsedHead::Complete(head)) = parse_response_head(&input, &limits) {
            assert!(head.len <= input.len());
        }
    }
}

/// What the seeds are, written out by hand: each request of the seed with the bytes it
/// takes, in order.
fn seed_requests() -> [Vec<(Request, usize)>; 3] {
    let get = |path: &str, query: Option<&str>, keep_alive| Request {
        method: Method::Get,
        path: path.to_owned(),
        query: query.map(str::to_owned),
        authorization: None,
        content_type: None,
        last_event_id: None,
        body: Vec::new(),
        keep_alive,
    };
    let post = Request {
        method: Method::Post,
        path: "/1/matches".to_owned(),
        query: None,
        authorization: Some("Bearer t".to_owned()),
        content_type: None,
        last_event_id: None,
        body: b"{\"home\":\"a\"}".to_vec(),
        keep_alive: true,
    };
    [
        vec![(
            get("/1/match/elp-tig-2011-09-10/history", Some("since=3"), true),
            SEEDS[0].len(),
        )],
        vec![(post, SEEDS[1].len())],
        vec![
            // HTTP/1.0 with keep-alive asked for, then an HTTP/1.1 request.
            (get("/", None, true), 42),
            (get("/x", None, true), 19),
        ],
    ]
}

#[test]
fn a_valid_request_parses_as_written_at_every_split() {
    let limits = Limits::default();
    for (seed, requests) in SEEDS.into_iter().zip(seed_requests()) {
        let mut rest = seed;
        for (want, len) in requests {
            // Every cut short of the request waits for more bytes; every cut past its end
            // (the next request partly there) gives the same request and length.
            for cut in 0..len {
                assert_eq!(
                    parse_request(&rest[..cut], &limits),
                    Ok(Parsed::Partial),
                    "{want:?} cut at {cut}"
                );
            }
            for cut in len..=rest.len() {
                assert_eq!(
                    parse_request(&rest[..cut], &limits),
                    Ok(Parsed::Complete {
                        request: want.clone(),
                        consumed: len
                    }),
                    "cut at {cut}"
                );
            }
            rest = &rest[len..];
        }
        assert!(
            rest.is_empty(),
            "{:?} left over",
            String::from_utf8_lossy(rest)
        );
    }
}
