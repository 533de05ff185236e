//! Aligned text tables and small formatting helpers for the CLI's output.

use chrono::{DateTime, SecondsFormat, Utc};

/// A table: a header row and rows of cells, columns padded to their widest
/// cell; numeric columns can be right-aligned.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            right: vec![false; headers.len()],
            rows: Vec::new(),
        }
    }

    /// Right-aligns the given columns (numbers).
    pub fn right(mut self, columns: &[usize]) -> Self {
        for &column in columns {
            if let Some(flag) = self.right.get_mut(column) {
                *flag = true;
            }
        }
        self
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, header first.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (column, cell) in row.iter().enumerate().take(columns) {
                widths[column] = widths[column].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (column, (&width, &right)) in widths.iter().zip(&self.right).enumerate() {
                let cell = row.get(column).map(String::as_str).unwrap_or("");
                let pad = width.saturating_sub(cell.chars().count());
                if column > 0 {
                    line.push_str("  ");
                }
                if right {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if column + 1 < columns {
                        line.push_str(&" ".repeat(pad));
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints the table, or `empty` when it has no rows.
    pub fn print_or(&self, empty: &str) {
        if self.is_empty() {
            out!("{empty}");
        } else {
            print!("{}", self.render());
        }
    }
}

/// Key-value lines, keys padded to the longest.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in fields {
        out!(
            "{key:<width$}  {value}",
            key = format!("{key}:"),
            width = width + 1
        );
    }
}

/// An optional text, `-` when absent.
pub fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_owned()
}

/// A moment as RFC 3339 in UTC, to the second.
pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Milliseconds since the epoch as RFC 3339, or the number if out of range.
pub fn time_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(time)
        .unwrap_or_else(|| ms.to_string())
}

/// A load or multiplier, without noise digits.
pub fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// Shortens text to `max` characters, marking the cut with `…`.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
        clipped.push('…');
        clipped
    }
}

/// Prints a value as pretty JSON.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    out!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut table = Table::new(&["ID", "COUNT", "NAME"]).right(&[1]);
        table.row(vec!["a".into(), "1".into(), "first".into()]);
        table.row(vec!["bbbb".into(), "100".into(), "x".into()]);
        assert_eq!(
            table.render(),
            "ID    COUNT  NAME\na         1  first\nbbbb    100  x\n"
        );
    }

    #[test]
    fn numbers_drop_noise() {
        assert_eq!(number(1.0), "1");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(0.333333), "0.33");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
