//! Rust source read closely enough for paths: comments and the insides of
//! literals blanked, `#[cfg(test)]` items left out, `use` trees expanded.

/// Source text with comments and the insides of string and character
/// literals turned into spaces, line breaks kept, so positions and line
/// numbers stay those of the file.
pub(super) fn blank(text: &str) -> String {
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
pub(super) fn without_test_items(text: &str) -> (String, Vec<String>) {
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
pub(super) struct CodePath {
    pub(super) segments: Vec<String>,
    pub(super) line: usize,
}

/// The `crate::` and `super::` paths of blanked, test-free code of the
/// module `module` (its path from the crate root), `use` groups expanded.
pub(super) fn paths_in(text: &str, module: &[String]) -> Vec<CodePath> {
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

/// Whether a line of code names the crate `name` (`aws_smithy_*` any of
/// those) as the start of a path.
pub(super) fn uses_crate(line: &str, name: &str) -> bool {
    let words = line.split(|c: char| !is_ident(c) && c != ':');
    words
        .filter_map(|w| w.split("::").next())
        .any(|first| match name.strip_suffix('*') {
            Some(prefix) => first.starts_with(prefix),
            None => first == name,
        })
}
