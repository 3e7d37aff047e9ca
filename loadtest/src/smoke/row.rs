//! One row of the smoke table per check, and the table as text.

use std::fmt::Write as _;

/// What a check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The answer was right; the text says what came.
    Pass(String),
    /// The answer was wrong; the text says what was expected and what came.
    Fail(String),
    /// The check could not apply here (too small an object, say); not a
    /// failure, and the text says why.
    Skip(String),
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Pass(_) => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Skip(_) => "skip",
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Outcome::Pass(d) | Outcome::Fail(d) | Outcome::Skip(d) => d,
        }
    }

    pub fn is_fail(&self) -> bool {
        matches!(self, Outcome::Fail(_))
    }
}

/// `Fail(text)` when `Err(text)`, else `Pass(ok)`.
pub fn judged(result: Result<String, String>) -> Outcome {
    match result {
        Ok(detail) => Outcome::Pass(detail),
        Err(detail) => Outcome::Fail(detail),
    }
}

/// A named check and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub check: String,
    pub outcome: Outcome,
}

impl Row {
    pub fn new(check: impl Into<String>, outcome: Outcome) -> Self {
        Row {
            check: check.into(),
            outcome,
        }
    }
}

/// The rows as an aligned `check | result | detail` table.
pub fn table(rows: &[Row]) -> String {
    let width = rows
        .iter()
        .map(|r| r.check.len())
        .chain(["check".len()])
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    let _ = writeln!(text, "{:<width$} | result | detail", "check");
    let _ = writeln!(text, "{:-<width$}-|--------|-------", "");
    for row in rows {
        let _ = writeln!(
            text,
            "{:<width$} | {:<6} | {}",
            row.check,
            row.outcome.word(),
            row.outcome.detail()
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_line_up() {
        let rows = [
            Row::new("head", Outcome::Pass("200".into())),
            Row::new("range 0-1", Outcome::Fail("3 bytes".into())),
            Row::new("past 6 MiB", Outcome::Skip("small".into())),
        ];
        assert_eq!(
            table(&rows),
            "check      | result | detail\n\
             -----------|--------|-------\n\
             head       | pass   | 200\n\
             range 0-1  | fail   | 3 bytes\n\
             past 6 MiB | skip   | small\n"
        );
    }
}
