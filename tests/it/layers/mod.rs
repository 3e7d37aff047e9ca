//! The layer table of `docs/architecture.md` held against the code. The
//! table is read from the document itself, so the two cannot drift apart:
//! every file of `src/` is in exactly one layer, every `crate::` and
//! `super::` path in its code (test code aside) names a file its layer may
//! use, and the crates of the second table appear only in the layers it
//! names. A failure lists every violation with its file, line and rule.
//!
//! The code is read as the compiler reads it, closely enough for paths:
//! comments, string and character literals are blanked first, and the items
//! under `#[cfg(test)]` (and the files of modules declared so) are left out.

mod code;
mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use code::{blank, paths_in, uses_crate, without_test_items};
use table::Table;

const DOC: &str = "docs/architecture.md";

/// Every `.rs` file under `dir`, as paths relative to it with `/`.
fn rust_files(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut left = vec![dir.to_path_buf()];
    while let Some(here) = left.pop() {
        for entry in std::fs::read_dir(&here).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                left.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(dir).unwrap();
                files.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    files.sort();
    files
}

/// The module path of a file of `src/`: `derivative/render.rs` is
/// `derivative::render`, `derivative/mod.rs` and `lib.rs` their directory.
fn module_of(file: &str) -> Vec<String> {
    let stem = file.trim_end_matches(".rs");
    let mut segments: Vec<String> = stem.split('/').map(str::to_owned).collect();
    if matches!(
        segments.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        segments.pop();
    }
    segments
}

/// The file a path leads into: that of its longest prefix that is a module.
fn file_of(segments: &[String], files: &[String]) -> String {
    for len in (1..=segments.len()).rev() {
        let module = segments[..len].join("/");
        for candidate in [format!("{module}.rs"), format!("{module}/mod.rs")] {
            if files.contains(&candidate) {
                return candidate;
            }
        }
    }
    "lib.rs".to_owned()
}

/// The files of the modules a file declares under `#[cfg(test)]`.
fn child_files(parent: &str, names: &[String], files: &[String]) -> Vec<String> {
    let module = module_of(parent);
    names
        .iter()
        .filter_map(|name| {
            let mut segments = module.clone();
            segments.push(name.clone());
            let module = segments.join("/");
            [format!("{module}.rs"), format!("{module}/mod.rs")]
                .into_iter()
                .find(|candidate| files.contains(candidate))
        })
        .collect()
}

/// Every violation of `table` in the files of `src` (path, text).
fn violations(table: &Table, sources: &BTreeMap<String, String>) -> Vec<String> {
    let files: Vec<String> = sources.keys().cloned().collect();
    let mut problems = Vec::new();
    let mut code = BTreeMap::new();
    let mut test_files: Vec<String> = Vec::new();
    for (file, text) in sources {
        let (text, test_modules) = without_test_items(&blank(text));
        test_files.extend(child_files(file, &test_modules, &files));
        code.insert(file.clone(), text);
    }
    // A module inside test code is test code, and so is a `tests` directory.
    let test_modules: Vec<Vec<String>> = test_files.iter().map(|t| module_of(t)).collect();
    let is_test = |file: &str| {
        let module = module_of(file);
        test_modules.iter().any(|t| module.starts_with(t))
            || file.split('/').rev().skip(1).any(|dir| dir == "tests")
    };
    for (file, text) in &code {
        let from = match table.layer_of(file)[..] {
            [one] => one,
            [] => {
                problems.push(format!("src/{file}: in no layer of the table"));
                continue;
            }
            ref many => {
                let names: Vec<&str> = many
                    .iter()
                    .map(|&i| table.layers[i].name.as_str())
                    .collect();
                problems.push(format!("src/{file}: in more than one layer: {names:?}"));
                continue;
            }
        };
        if is_test(file) {
            continue;
        }
        let layer = &table.layers[from];
        for path in paths_in(text, &module_of(file)) {
            let target = file_of(&path.segments, &files);
            let Some(&to) = table.layer_of(&target).first() else {
                continue; // reported as a file in no layer
            };
            if !table.allows(from, to, &target) {
                problems.push(format!(
                    "src/{file}:{}: crate::{} is src/{target} ({}); {} may use: {}",
                    path.line,
                    path.segments.join("::"),
                    table.layers[to].name,
                    layer.name,
                    layer.rule
                ));
            }
        }
        for rule in &table.crates {
            if rule.only_in.contains(&layer.name) {
                continue;
            }
            for (number, line) in text.lines().enumerate() {
                for name in rule.crates.iter().filter(|c| uses_crate(line, c)) {
                    problems.push(format!(
                        "src/{file}:{}: `{name}` outside {}",
                        number + 1,
                        rule.only_in.join(", ")
                    ));
                }
            }
        }
    }
    problems
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sources() -> BTreeMap<String, String> {
    let src = repo().join("src");
    rust_files(&src)
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(src.join(&file)).unwrap();
            (file, text)
        })
        .collect()
}

fn the_table(files: &[String]) -> Table {
    let doc = std::fs::read_to_string(repo().join(DOC)).unwrap();
    Table::parse(&doc, files).unwrap_or_else(|errors| panic!("{DOC}:\n{}", errors.join("\n")))
}

#[test]
fn every_file_uses_only_what_its_layer_may() {
    let sources = sources();
    let files: Vec<String> = sources.keys().cloned().collect();
    let table = the_table(&files);
    let problems = violations(&table, &sources);
    assert!(
        problems.is_empty(),
        "{} against the layer table of {DOC}:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_check_finds_what_the_table_forbids() {
    // The real table and file list, with files of these texts.
    let mut sources = sources();
    let files: Vec<String> = sources.keys().cloned().collect();
    let table = the_table(&files);
    for text in sources.values_mut() {
        text.clear();
    }
    let cases = [
        (
            "video/decode.rs",
            "use crate::image::engine::Pixels;",
            Some(1),
        ),
        ("video/decode.rs", "use crate::pixels::Pixels;", None),
        (
            "video/decode.rs",
            "use crate::protocol::range::ByteRange;",
            None,
        ),
        (
            "video/decode.rs",
            "use crate::protocol::{range::ByteRange, key::ObjectKey};",
            Some(1),
        ),
        (
            "mp4/boxes.rs",
            "fn f() {\n    let x = crate::source::dir::READ_CHUNK_BYTES;\n}",
            Some(2),
        ),
        ("derivative/store.rs", "use aws_sdk_s3::Client;", Some(1)),
        (
            "derivative/store.rs",
            "use crate::source::s3::Bucket;",
            None,
        ),
        (
            "derivative/flight.rs",
            "use super::super::service::MediaService;",
            Some(1),
        ),
        ("derivative/flight.rs", "use super::render::Renderer;", None),
        (
            "protocol/range.rs",
            "// crate::service::MediaService\nconst A: &str = \"crate::service\";",
            None,
        ),
        (
            "protocol/range.rs",
            "#[cfg(test)]\nmod tests {\n    use crate::service::MediaService;\n}",
            None,
        ),
        (
            "protocol/range.rs",
            "#[cfg(test)]\nuse crate::service::MediaService;\nuse crate::body::ResponseBody;",
            Some(3),
        ),
        (
            "protocol/range.rs",
            "const C: char = '\"'; use crate::body::ResponseBody;",
            Some(1),
        ),
        (
            "protocol/range.rs",
            "fn f<'a>(x: &'a str) -> &'a str { x }\nuse crate::body::ResponseBody;",
            Some(2),
        ),
        (
            "protocol/range.rs",
            "const R: &str = r#\"crate::body\"#;",
            None,
        ),
        (
            "protocol/range.rs",
            "use crate::protocol::key::ObjectKey;",
            None,
        ),
        ("lib.rs", "use aws_config::BehaviorVersion;", None),
        ("index.rs", "use crate::source::listing::Listing;", None),
        ("index.rs", "use crate::source::dir::DirSource;", Some(1)),
    ];
    for (file, text, line) in cases {
        let mut one = sources.clone();
        one.insert(file.to_owned(), text.to_owned());
        let problems = violations(&table, &one);
        let expected: Vec<String> = line
            .map(|l| format!("src/{file}:{l}:"))
            .into_iter()
            .collect();
        let found: Vec<String> = problems
            .iter()
            .map(|p| p.split_inclusive(':').take(2).collect())
            .collect();
        assert_eq!(found, expected, "{file}: {text}\n{problems:?}");
    }
}

#[test]
fn reads_use_trees_as_the_compiler_does() {
    let module = |m: &str| m.split("::").map(str::to_owned).collect::<Vec<_>>();
    let cases: [(&str, &str, &[&str]); 6] = [
        (
            "derivative::render",
            "use crate::a::{b::C, d, e::{self, F as G}};",
            &["a::b::C", "a::d", "a::e", "a::e::F"],
        ),
        (
            "derivative::render",
            "use super::{flight::Worker, store};",
            &["derivative::flight::Worker", "derivative::store"],
        ),
        (
            "mp4::tests::hostile",
            "use super::super::boxes::*;",
            &["mp4::boxes"],
        ),
        (
            "x",
            "let v = crate::m::f::<u8>(1) + crate::n::K;",
            &["m::f", "n::K"],
        ),
        ("x", "pub(super) fn f() -> $crate::no {}", &[]),
        (
            "x",
            "use crate::{\n    a::B,\n    c::D,\n};",
            &["a::B", "c::D"],
        ),
    ];
    for (module_path, text, expected) in cases {
        let found: Vec<String> = paths_in(&blank(text), &module(module_path))
            .into_iter()
            .map(|p| p.segments.join("::"))
            .collect();
        assert_eq!(found, expected, "{text}");
    }
}
