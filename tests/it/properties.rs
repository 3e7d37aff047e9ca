//! Properties over generated input, through the real pipeline and a real
//! directory source: whatever the object's size and the Range header, every
//! answer is one the RFC allows, and every byte it carries is the one named.

use std::path::Path;
use std::sync::Arc;

use media_streamer::service::MediaService;
use media_streamer::source::dir::DirSource;
use proptest::prelude::*;

use crate::answer::{check, Answer};
use crate::fixture::{pattern, settings};

/// Range headers: well-formed sets of one to five specs (some past the end,
/// some empty, some overlapping), and anything at all.
fn range_header() -> impl Strategy<Value = String> {
    let spec = prop_oneof![
        (0u64..4000, 0u64..4000).prop_map(|(a, b)| format!("{a}-{b}")),
        (0u64..4000).prop_map(|a| format!("{a}-")),
        (0u64..4000).prop_map(|n| format!("-{n}")),
    ];
    let unit = prop_oneof![8 => Just("bytes"), 1 => Just("BYTES"), 1 => Just("bits")];
    let specs = prop_oneof![
        3 => prop::collection::vec(spec.clone(), 1..2),
        2 => prop::collection::vec(spec.clone(), 2..3),
        1 => prop::collection::vec(spec, 3..6),
    ];
    prop_oneof![
        6 => (unit, specs, prop_oneof![Just(","), Just(", ")])
            .prop_map(|(unit, specs, sep)| format!("{unit}={}", specs.join(sep))),
        1 => "[ -~]{0,40}",
        1 => "bytes=[0-9,\\- ]{0,30}",
    ]
}

async fn ask(service: &MediaService, target: &str, range: &str) -> Answer {
    let mut request = http::Request::get(target);
    if let Ok(value) = http::HeaderValue::from_str(range) {
        request = request.header(http::header::RANGE, value);
    }
    let (parts, ()) = request.body(()).unwrap().into_parts();
    Answer::of(service, parts).await
}

fn object(root: &Path, size: u64) -> (String, Vec<u8>) {
    let name = format!("object-{size}.bin");
    let data = pattern(size as usize, (size % 251) as u8);
    let path = root.join(&name);
    if !path.exists() {
        std::fs::write(&path, &data).unwrap();
    }
    (format!("/{name}"), data)
}

#[test]
fn every_answer_carries_exactly_the_bytes_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let service = MediaService::new(Arc::new(DirSource::new(dir.path()).unwrap()), settings());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = ProptestConfig {
        cases: 4000,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    // What the generated cases came to: every kind of answer must be among them.
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<&str, u32>::new());
    proptest!(config, |(size in prop_oneof![Just(0u64), Just(1u64), 0u64..5000], range in range_header())| {
        let (target, data) = object(dir.path(), size);
        let answer = runtime.block_on(ask(&service, &target, &range));
        if let Err(why) = check(&answer, &data, &range) {
            prop_assert!(false, "{} bytes, Range {:?}: {}", size, range, why);
        }
        let kind = match answer.status {
            200 => "200",
            206 if answer.headers.contains_key("content-range") => "206 single",
            206 => "206 multipart",
            _ => "416",
        };
        *seen.borrow_mut().entry(kind).or_default() += 1;
    });
    let seen = seen.into_inner();
    println!("answers: {seen:?}");
    for kind in ["200", "206 single", "206 multipart", "416"] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) >= 10,
            "too few {kind}: {seen:?}"
        );
    }
}
