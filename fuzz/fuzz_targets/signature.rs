#![no_main]
//! Signed-link queries, genuine and edited: a genuine link verifies until its
//! expiry plus the skew and for its own path only, and anything accepted
//! carries exactly the signature the key would make for the expiry it names:
//! no edit, appended parameter or re-spelling forges one.

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use media_streamer::signing::{SignatureError, SigningKeys};

const NEW: &str = "new:0123456789abcdef0123456789abcdef-new";
const OLD: &str = "old:0123456789abcdef0123456789abcdef-old";
const SKEW: u64 = 30;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    path: &'a str,
    other_path: &'a str,
    expires: i64,
    now: i64,
    signed_with_old: bool,
    edits: Vec<(u16, u8, char)>,
    extra: &'a str,
}

/// A query parameter's raw value, if it is there exactly once.
fn param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    let mut values = query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v);
    let value = values.next()?;
    values.next().is_none().then_some(value)
}

fuzz_target!(|input: Input| {
    let keys = SigningKeys::list(&format!("{NEW},{OLD}"), SKEW).unwrap();
    let signer = if input.signed_with_old {
        SigningKeys::list(OLD, SKEW).unwrap()
    } else {
        keys.clone()
    };
    let genuine = signer.sign(input.path, input.expires);
    let fresh = input.now <= input.expires.saturating_add(SKEW as i64);
    let result = keys.verify(input.path, Some(&genuine), input.now);
    if fresh {
        assert_eq!(result, Ok(()), "{genuine}");
    } else {
        assert_eq!(result, Err(SignatureError::Expired), "{genuine}");
    }
    if input.other_path != input.path {
        let moved = keys.verify(input.other_path, Some(&genuine), input.now);
        assert_eq!(moved, Err(SignatureError::Invalid), "{genuine} moved");
    }

    let mut query: Vec<char> = genuine.chars().collect();
    for &(at, op, c) in &input.edits {
        let at = usize::from(at) % (query.len() + 1);
        match op % 3 {
            0 => query.insert(at, c),
            1 if at < query.len() => {
                query.remove(at);
            }
            _ if at < query.len() => query[at] = c,
            _ => {}
        }
    }
    let mut query: String = query.into_iter().collect();
    if !input.extra.is_empty() {
        query.push('&');
        query.push_str(input.extra);
    }
    if keys.verify(input.path, Some(&query), input.now).is_err() {
        return;
    }
    // Accepted: the signature must be the one the named key makes for the
    // expiry the query names.
    let expires: i64 = param(&query, "expires")
        .and_then(|e| {
            let decoded = percent_encoding::percent_decode_str(e).decode_utf8().ok()?;
            decoded.parse().ok()
        })
        .expect("accepted without a readable expiry");
    let kid = param(&query, "kid").expect("two keys: accepted without a kid");
    let key = match kid {
        "new" => NEW,
        "old" => OLD,
        other => panic!("accepted with the unknown key id {other:?}"),
    };
    let made = SigningKeys::list(key, SKEW)
        .unwrap()
        .sign(input.path, expires);
    assert_eq!(
        param(&query, "sig"),
        param(&made, "sig"),
        "{query:?} accepted for {:?}",
        input.path
    );
    assert!(
        input.now <= expires.saturating_add(SKEW as i64),
        "{query:?} expired"
    );
});
