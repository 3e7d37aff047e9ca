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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const DOC: &str = "docs/architecture.md";
const SECTION: &str = "## Layers and what they may use";

/// What a row's "may use" cell names.
#[derive(Debug, Clone, PartialEq)]
enum Allowed {
    Layer(String),
    /// A file of `src/`, by a pattern (`*` within a name, `**` any depth).
    Files(String),
    /// Every layer in the rows above.
    Above,
    Everything,
}

#[derive(Debug)]
struct Layer {
    name: String,
    files: Vec<String>,
    may_use: Vec<Allowed>,
    /// The cell as written, for the messages.
    rule: String,
}

/// Crates (`*` at the end of a name) only the named layers may use.
#[derive(Debug)]
struct CrateRule {
    crates: Vec<String>,
    only_in: Vec<String>,
}

#[derive(Debug)]
struct Table {
    layers: Vec<Layer>,
    crates: Vec<CrateRule>,
}

impl Table {
    /// Reads the section's two tables; anything they say that names no
    /// layer or no file is an error, so that the document stays true.
    fn parse(doc: &str, files: &[String]) -> Result<Table, Vec<String>> {
        let section = doc
            .split_once(SECTION)
            .map(|(_, rest)| rest.split("\n## ").next().unwrap_or(rest))
            .ok_or_else(|| vec![format!("{DOC} has no section {SECTION:?}")])?;
        let tables = markdown_tables(section);
        let mut errors = Vec::new();
        let (Some(layers), Some(crates)) = (
            tables.iter().find(|t| t.0 == ["layer", "files", "may use"]),
            tables.iter().find(|t| t.0 == ["crates", "only in"]),
        ) else {
            return Err(vec![format!(
                "{DOC}: {SECTION:?} needs a table | layer | files | may use | and a table | crates | only in |"
            )]);
        };
        let names: Vec<&str> = layers.1.iter().map(|row| row[0].as_str()).collect();
        let mut table = Table {
            layers: Vec::new(),
            crates: Vec::new(),
        };
        for row in &layers.1 {
            let patterns = code_spans(&row[1]);
            for pattern in &patterns {
                if !files_match(pattern, files) {
                    errors.push(format!(
                        "layer {:?}: `{pattern}` is no file of src/",
                        row[0]
                    ));
                }
            }
            let mut may_use = Vec::new();
            for item in list_items(&row[2]) {
                let allowed = match item.as_str() {
                    "nothing" => continue,
                    "every layer above" => Allowed::Above,
                    "everything" => Allowed::Everything,
                    spans if spans.starts_with('`') => {
                        let pattern = spans.trim_matches('`').to_owned();
                        if !files_match(&pattern, files) {
                            errors.push(format!(
                                "layer {:?} may use `{pattern}`, which is no file of src/",
                                row[0]
                            ));
                        }
                        Allowed::Files(pattern)
                    }
                    name if names.contains(&name) => Allowed::Layer(name.to_owned()),
                    other => {
                        errors.push(format!(
                            "layer {:?} may use {other:?}, which is no layer",
                            row[0]
                        ));
                        continue;
                    }
                };
                may_use.push(allowed);
            }
            table.layers.push(Layer {
                name: row[0].clone(),
                files: patterns,
                may_use,
                rule: row[2].clone(),
            });
        }
        for row in &crates.1 {
            let only_in = list_items(&row[1]);
            for name in &only_in {
                if !names.contains(&name.as_str()) {
                    errors.push(format!(
                        "crates {:?} only in {name:?}, which is no layer",
                        row[0]
                    ));
                }
            }
            table.crates.push(CrateRule {
                crates: code_spans(&row[0]),
                only_in,
            });
        }
        if errors.is_empty() {
            Ok(table)
        } else {
            Err(errors)
        }
    }

    fn layer_of(&self, file: &str) -> Vec<usize> {
        (self.layers.iter().enumerate())
            .filter(|(_, layer)| layer.files.iter().any(|p| glob(p, file)))
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether a file of layer `from` may use `target` (of layer `to`).
    fn allows(&self, from: usize, to: usize, target: &str) -> bool {
        from == to
            || self.layers[from]
                .may_use
                .iter()
                .any(|allowed| match allowed {
                    Allowed::Layer(name) => self.layers[to].name == *name,
                    Allowed::Files(pattern) => glob(pattern, target),
                    Allowed::Above => to < from,
                    Allowed::Everything => true,
                })
    }
}

fn files_match(pattern: &str, files: &[String]) -> bool {
    files.iter().any(|file| glob(pattern, file))
}

/// The tables of a piece of markdown: their header cells and rows.
fn markdown_tables(text: &str) -> Vec<(Vec<String>, Vec<Vec<String>>)> {
    let mut tables = Vec::new();
    let mut lines = text.lines().map(str::trim).peekable();
    while let Some(line) = lines.next() {
        if !line.starts_with('|') {
            continue;
        }
        let header = cells(line);
        if !lines.peek().is_some_and(|l| l.starts_with("| ---")) {
            continue;
        }
        lines.next();
        let mut rows = Vec::new();
        while let Some(row) = lines.next_if(|l| l.starts_with('|')) {
            rows.push(cells(row));
        }
        let rows = rows
            .into_iter()
            .filter(|r| r.len() == header.len())
            .collect();
        tables.push((header, rows));
    }
    tables
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_owned()).collect()
}

/// The `code` spans of a cell.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// A cell's comma-separated items, without what stands in parentheses.
fn list_items(cell: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut depth = 0;
    for c in cell.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    plain
        .split(',')
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

/// `pattern` against a path of `src/`: `**` is any number of directories
/// and files, `*` any part of one name.
fn glob(pattern: &str, path: &str) -> bool {
    fn segments(pattern: &[&str], path: &[&str]) -> bool {
        match (pattern.first(), path.first()) {
            (None, None) => true,
            (Some(&"**"), _) => {
                segments(&pattern[1..], path) || (!path.is_empty() && segments(pattern, &path[1..]))
            }
            (Some(p), Some(name)) => name_glob(p, name) && segments(&pattern[1..], &path[1..]),
            _ => false,
        }
    }
    let pattern: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    segments(&pattern, &path)
}

fn name_glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.len() >= head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        }
    }
}

/// Source text with comments and the insides of string and character
/// literals turned into spaces, line breaks kept, so positions and line
/// numbers stay those of the file.
fn blank(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<char> = chars.clone();
    let blank_range = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut out[from..to.min(chars.len())] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            let end = (i..chars.len())
                .find(|&j| chars[j] == '\n')
                .unwrap_or(chars.len());
            blank_range(&mut out, i, end);
            i = end;
        } else if c == '/' && next == Some('*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < chars.len() && depth > 0 {
                if chars[j] == '/' && chars.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if chars[j] == '*' && chars.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank_range(&mut out, i, j);
            i = j;
        } else if c == 'r' || (c == 'b' && next == Some('r')) {
            // A raw string: r"..", r#".."#, br#".."#; else an identifier.
            let start = if c == 'b' { i + 2 } else { i + 1 };
            let hashes = (start..chars.len())
                .take_while(|&j| chars[j] == '#')
                .count();
            let quote = start + hashes;
            let ident_before = i > 0 && is_ident(chars[i - 1]);
            if !ident_before && chars.get(quote) == Some(&'"') {
                let closing: String = std::iter::once('"')
                    .chain(std::iter::repeat_n('#', hashes))
                    .collect();
                let rest: String = chars[quote + 1..].iter().collect();
                let len = rest
                    .find(&closing)
                    .map_or(rest.len(), |at| at + closing.len());
                let end = quote + 1 + rest[..len].chars().count();
                blank_range(&mut out, quote + 1, end);
                i = end;
            } else {
                i += 1;
            }
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            blank_range(&mut out, i + 1, j);
            i = j + 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}'), or a lifetime.
            let end = if next == Some('\\') {
                (i + 2..chars.len())
                    .find(|&j| chars[j] == '\'')
                    .map(|j| j + 1)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 3)
            } else {
                None
            };
            match end {
                Some(end) => {
                    blank_range(&mut out, i + 1, end - 1);
                    i = end;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    out.into_iter().collect()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `text` (blanked) without the items under `#[cfg(test)]`: each is turned
/// into spaces, up to its `;` or its closing brace. The names of the
/// modules so declared without a body are returned: their files are test
/// code too.
fn without_test_items(text: &str) -> (String, Vec<String>) {
    let chars: Vec<char> = text.chars().collect();
    let mut out = chars.clone();
    let mut test_modules = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let Some(item_start) = tokens_at(&chars, i, &["#", "[", "cfg", "(", "test", ")", "]"])
        else {
            i += 1;
            continue;
        };
        let end = item_end(&chars, item_start);
        let item: String = chars[item_start..end].iter().collect();
        let words: Vec<&str> = item
            .split(|c: char| !is_ident(c))
            .filter(|w| !w.is_empty())
            .collect();
        if item.ends_with(';') {
            if let Some(at) = words.iter().position(|w| *w == "mod") {
                test_modules.extend(words.get(at + 1).map(|name| (*name).to_owned()));
            }
        }
        for c in &mut out[i..end] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        i = end;
    }
    (out.into_iter().collect(), test_modules)
}

/// Where the tokens `expected` end, if they are at `at` (with any white
/// space between them).
fn tokens_at(chars: &[char], mut at: usize, expected: &[&str]) -> Option<usize> {
    for token in expected {
        while chars.get(at).is_some_and(|c| c.is_whitespace()) {
            at += 1;
        }
        let token: Vec<char> = token.chars().collect();
        if !chars[at..].starts_with(&token) {
            return None;
        }
        at += token.len();
        let cut_word = is_ident(token[0]) && chars.get(at).is_some_and(|c| is_ident(*c));
        if cut_word {
            return None;
        }
    }
    Some(at)
}

/// The end of the item at `at` (its further attributes included): after
/// its `;`, or after the brace that closes its body.
fn item_end(chars: &[char], at: usize) -> usize {
    let mut depth = 0i32;
    for (j, c) in chars.iter().enumerate().skip(at) {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ';' if depth == 0 => return j + 1,
            '{' if depth == 0 => {
                let mut braces = 0;
                for (k, c) in chars.iter().enumerate().skip(j) {
                    match c {
                        '{' => braces += 1,
                        '}' if braces == 1 => return k + 1,
                        '}' => braces -= 1,
                        _ => {}
                    }
                }
                return chars.len();
            }
            _ => {}
        }
    }
    chars.len()
}

/// One path in the code: its segments from the crate root, and where it is.
#[derive(Debug, PartialEq)]
struct CodePath {
    segments: Vec<String>,
    line: usize,
}

/// The `crate::` and `super::` paths of blanked, test-free code of the
/// module `module` (its path from the crate root), `use` groups expanded.
fn paths_in(text: &str, module: &[String]) -> Vec<CodePath> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_word =
            i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == '$' || chars[i - 1] == ':');
        if !starts_word {
            i += 1;
            continue;
        }
        let word: String = chars[i..].iter().take_while(|c| is_ident(**c)).collect();
        let after = i + word.chars().count();
        let base = match word.as_str() {
            "crate" => Some((Vec::new(), after)),
            "super" => {
                // super::super::...: up one module for each.
                let mut base = module.to_vec();
                let mut at = i;
                loop {
                    let here: String = chars[at..].iter().take(7).collect();
                    if here != "super::" {
                        break;
                    }
                    base.pop();
                    at += 7;
                }
                Some((base, at - 2))
            }
            _ => None,
        };
        match base {
            Some((base, at)) if chars[at..].starts_with(&[':', ':']) => {
                let end = tree(&chars, at + 2, base, &mut found);
                i = end.max(i + 1);
            }
            _ => i = after.max(i + 1),
        }
    }
    found
}

/// Reads one use tree (or a path in code) at `at` after `prefix::`.
fn tree(
    chars: &[char],
    mut at: usize,
    mut prefix: Vec<String>,
    found: &mut Vec<CodePath>,
) -> usize {
    let line = |at: usize| chars[..at].iter().filter(|c| **c == '\n').count() + 1;
    loop {
        while at < chars.len() && chars[at].is_whitespace() {
            at += 1;
        }
        match chars.get(at) {
            Some('{') => {
                at += 1;
                loop {
                    while at < chars.len() && (chars[at].is_whitespace() || chars[at] == ',') {
                        at += 1;
                    }
                    if at >= chars.len() || chars[at] == '}' {
                        return at + 1;
                    }
                    at = skip_alias(chars, tree(chars, at, prefix.clone(), found));
                }
            }
            Some('*') => {
                found.push(CodePath {
                    segments: prefix,
                    line: line(at),
                });
                return at + 1;
            }
            _ => {}
        }
        let word: String = chars[at..].iter().take_while(|c| is_ident(**c)).collect();
        if word.is_empty() || word == "self" {
            found.push(CodePath {
                segments: prefix,
                line: line(at),
            });
            return at + word.len();
        }
        let start = at;
        at += word.chars().count();
        prefix.push(word);
        let mut next = at;
        while next < chars.len() && chars[next].is_whitespace() {
            next += 1;
        }
        if chars[next..].starts_with(&[':', ':'])
            && chars
                .get(next + 2)
                .is_some_and(|c| *c == '{' || *c == '*' || is_ident(*c) || c.is_whitespace())
        {
            at = next + 2;
            continue;
        }
        found.push(CodePath {
            segments: prefix,
            line: line(start),
        });
        return at;
    }
}

/// Past an `as NAME` at `at`, if there is one.
fn skip_alias(chars: &[char], at: usize) -> usize {
    let word_at = |at: usize| -> (String, usize) {
        let start = (at..chars.len())
            .find(|&j| !chars[j].is_whitespace())
            .unwrap_or(chars.len());
        let word: String = chars[start..]
            .iter()
            .take_while(|c| is_ident(**c))
            .collect();
        let end = start + word.chars().count();
        (word, end)
    };
    match word_at(at) {
        (word, end) if word == "as" => word_at(end).1,
        _ => at,
    }
}

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

/// Whether a line of code names the crate `name` (`aws_smithy_*` any of
/// those) as the start of a path.
fn uses_crate(line: &str, name: &str) -> bool {
    let words = line.split(|c: char| !is_ident(c) && c != ':');
    words
        .filter_map(|w| w.split("::").next())
        .any(|first| match name.strip_suffix('*') {
            Some(prefix) => first.starts_with(prefix),
            None => first == name,
        })
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
