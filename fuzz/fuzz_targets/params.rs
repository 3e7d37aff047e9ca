#![no_main]
//! Any query on an image: the parser never panics; what it accepts keeps to
//! the allowed sizes and ranges, ignores the signature's parameters, and its
//! canonical form parses back to the same parameters (one spelling each).

use libfuzzer_sys::fuzz_target;
use media_streamer::derivative::params::{parse, qualities, DEFAULT_SIZES};

fuzz_target!(|query: &str| {
    let Ok(parsed) = parse(Some(query), DEFAULT_SIZES) else {
        return;
    };
    let Some(params) = parsed else {
        let names = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').map_or(p, |(name, _)| name));
        for name in names {
            assert!(["expires", "kid", "sig"].contains(&name), "{query:?}");
        }
        return;
    };
    for size in [params.width, params.height].into_iter().flatten() {
        assert!(DEFAULT_SIZES.contains(&size), "{query:?}: {size}");
    }
    assert!(
        params.quality.is_none_or(|q| qualities().contains(&q)),
        "{query:?}"
    );
    let canonical = params.canonical();
    match parse(Some(&canonical), DEFAULT_SIZES) {
        Ok(Some(again)) => assert_eq!(again, params, "{query:?} -> {canonical:?}"),
        // Every parameter at its default: the canonical form is empty.
        Ok(None) => assert!(canonical.is_empty(), "{query:?} -> {canonical:?}"),
        Err(e) => panic!("{query:?} -> {canonical:?}: {e}"),
    }
    assert_eq!(
        parse(
            Some(&format!("{canonical}&expires=1&kid=k&sig=s")),
            DEFAULT_SIZES
        ),
        parse(Some(&canonical), DEFAULT_SIZES)
    );
});
