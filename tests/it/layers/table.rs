//! The two tables of the section "Layers and what they may use", read from
//! the markdown: the layers with their files and what each may use, and
//! the crates only some layers may use.

use super::DOC;

const SECTION: &str = "## Layers and what they may use";

/// What a row's "may use" cell names.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Allowed {
    Layer(String),
    /// A file of `src/`, by a pattern (`*` within a name, `**` any depth).
    Files(String),
    /// Every layer in the rows above.
    Above,
    Everything,
}

#[derive(Debug)]
pub(super) struct Layer {
    pub(super) name: String,
    pub(super) files: Vec<String>,
    pub(super) may_use: Vec<Allowed>,
    /// The cell as written, for the messages.
    pub(super) rule: String,
}

/// Crates (`*` at the end of a name) only the named layers may use.
#[derive(Debug)]
pub(super) struct CrateRule {
    pub(super) crates: Vec<String>,
    pub(super) only_in: Vec<String>,
}

#[derive(Debug)]
pub(super) struct Table {
    pub(super) layers: Vec<Layer>,
    pub(super) crates: Vec<CrateRule>,
}

impl Table {
    /// Reads the section's two tables; anything they say that names no
    /// layer or no file is an error, so that the document stays true.
    pub(super) fn parse(doc: &str, files: &[String]) -> Result<Table, Vec<String>> {
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

    pub(super) fn layer_of(&self, file: &str) -> Vec<usize> {
        (self.layers.iter().enumerate())
            .filter(|(_, layer)| layer.files.iter().any(|p| glob(p, file)))
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether a file of layer `from` may use `target` (of layer `to`).
    pub(super) fn allows(&self, from: usize, to: usize, target: &str) -> bool {
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
