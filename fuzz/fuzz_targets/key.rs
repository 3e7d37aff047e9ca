#![no_main]
//! Any request path: what `parse_target` accepts can never leave the media
//! root, is never longer than S3's key limit, and has one spelling: the link
//! the index page prints for it names the same target again.

use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use media_streamer::index::href_of;
use media_streamer::protocol::key::{parse_target, Target, MAX_KEY_BYTES};

fuzz_target!(|path: &str| {
    let Ok(target) = parse_target(path) else {
        return;
    };
    let name = target.as_str();
    assert!(name.len() <= MAX_KEY_BYTES, "{name:?} is too long");
    assert!(
        !name.contains('\\') && !name.chars().any(char::is_control),
        "{name:?} has a backslash or a control character"
    );
    match &target {
        Target::Directory(prefix) => {
            assert!(prefix.is_empty() || prefix.ends_with('/'), "{prefix:?}");
        }
        Target::Object(key) => {
            assert!(
                !key.as_str().is_empty() && !key.as_str().ends_with('/'),
                "{key}"
            );
        }
    }
    // Joined under a root, it stays under the root: only plain segments.
    let joined = Path::new("/root").join(name);
    let mut components = joined.components();
    assert_eq!(components.next(), Some(Component::RootDir));
    assert_eq!(components.next(), Some(Component::Normal("root".as_ref())));
    for component in components {
        assert!(
            matches!(component, Component::Normal(_)),
            "{name:?} joins to {}",
            joined.display()
        );
    }
    assert_eq!(
        parse_target(&href_of(name)).as_ref(),
        Ok(&target),
        "{path:?}: the index link {:?} names another target",
        href_of(name)
    );
});
