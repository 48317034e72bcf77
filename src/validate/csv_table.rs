//! A small CSV reader for measurement tables: whole file in memory, exact 1-based line
//! numbers in errors, columns looked up by any of several names (case-insensitive).
//! Parsed by the `csv` crate; quoted fields may hold commas but not line breaks (an
//! unterminated quote is an error naming its line); blank lines are skipped.
//!
//! JSON lines with the same columns read into the same table ([`CsvTable::read_json_lines`]):
//! one object per line, the header is every key in order of first appearance (the keys
//! of one object sorted), and a key a line lacks (or `null`) is an empty field.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A parsed CSV file.
#[derive(Clone, Debug)]
pub(crate) struct CsvTable {
    pub(crate) path: PathBuf,
    /// Header fields, trimmed.
    pub(crate) header: Vec<String>,
    /// (1-based line, fields) of each non-blank data row.
    pub(crate) rows: Vec<(u64, Vec<String>)>,
}

/// The fields of one line (trimmed), by the `csv` crate; an error for a quoted field
/// left open (an odd number of `"`: quoted fields cannot span lines here).
fn split(builder: &csv::ReaderBuilder, path: &Path, n: u64, line: &str) -> Result<Vec<String>> {
    if line.matches('"').count() % 2 == 1 {
        return Err(Error::input_at(
            path,
            n,
            None,
            "unterminated quoted field or a stray `\"`: a quoted field closes on its own line",
        ));
    }
    let mut record = csv::StringRecord::new();
    match builder
        .from_reader(line.as_bytes())
        .read_record(&mut record)
    {
        Ok(_) => Ok(record.iter().map(str::to_owned).collect()),
        Err(e) => Err(Error::input_at(
            path,
            n,
            None,
            format!("malformed CSV: {e}"),
        )),
    }
}

impl CsvTable {
    /// Read `path`: one record per line (the `csv` crate on each), blank lines skipped.
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut builder = csv::ReaderBuilder::new();
        builder
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All);
        let mut lines = text
            .trim_start_matches('\u{feff}')
            .lines()
            .enumerate()
            .map(|(i, l)| (i as u64 + 1, l))
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((n, head)) = lines.next() else {
            return Err(Error::input(
                path,
                None,
                "empty file: expected a CSV header",
            ));
        };
        let header = split(&builder, path, n, head)?;
        let mut rows = Vec::new();
        for (n, line) in lines {
            let fields = split(&builder, path, n, line)?;
            if fields.len() > header.len() {
                return Err(Error::input_at(
                    path,
                    n,
                    None,
                    format!(
                        "{} fields where the header has {} (a comma outside quotes, or a quote after a space?)",
                        fields.len(),
                        header.len()
                    ),
                ));
            }
            rows.push((n, fields));
        }
        Ok(CsvTable {
            path: path.to_owned(),
            header,
            rows,
        })
    }

    /// Read `path` as JSON lines: one flat object per non-blank line.
    pub(crate) fn read_json_lines(path: &Path) -> Result<Self> {
        use serde_json::Value;
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut header: Vec<String> = Vec::new();
        let mut objects = Vec::new();
        for (i, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
            let n = i as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            let obj = match serde_json::from_str::<Value>(line.trim()) {
                Ok(Value::Object(o)) => o,
                Ok(_) => return Err(Error::input_at(path, n, None, "expected a JSON object")),
                Err(e) => return Err(Error::input_at(path, n, None, format!("invalid JSON: {e}"))),
            };
            for k in obj.keys() {
                if !header.iter().any(|h| h == k) {
                    header.push(k.clone());
                }
            }
            objects.push((n, obj));
        }
        if objects.is_empty() {
            return Err(Error::input(path, None, "empty file: expected JSON lines"));
        }
        let rows = objects
            .into_iter()
            .map(|(n, obj)| {
                let cells = header
                    .iter()
                    .map(|h| match obj.get(h) {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => s.trim().to_owned(),
                        Some(v) => v.to_string(),
                    })
                    .collect();
                (n, cells)
            })
            .collect();
        Ok(CsvTable {
            path: path.to_owned(),
            header,
            rows,
        })
    }

    /// The index of the first column named any of `names`.
    pub(crate) fn col(&self, names: &[&str]) -> Option<usize> {
        names
            .iter()
            .find_map(|n| self.header.iter().position(|h| h.eq_ignore_ascii_case(n)))
    }

    /// Like [`col`](Self::col), but a missing column is an error listing the names.
    pub(crate) fn required(&self, names: &[&str]) -> Result<usize> {
        self.col(names).ok_or_else(|| {
            Error::input_at(
                &self.path,
                1,
                Some(names[0]),
                format!(
                    "missing column: expected one of {} in the header",
                    names
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    /// The raw text of column `col` in `row` (missing cells are an error).
    pub(crate) fn text<'a>(&self, row: &'a (u64, Vec<String>), col: usize) -> Result<&'a str> {
        row.1.get(col).map(String::as_str).ok_or_else(|| {
            Error::input_at(
                &self.path,
                row.0,
                Some(self.header[col].as_str()),
                format!(
                    "missing value: the row has {} fields, the header {}",
                    row.1.len(),
                    self.header.len()
                ),
            )
        })
    }

    /// Column `col` of `row` as a finite number.
    pub(crate) fn num(&self, row: &(u64, Vec<String>), col: usize) -> Result<f64> {
        let s = self.text(row, col)?;
        if s.is_empty() {
            return Err(self.bad(row, col, "empty field: expected a number".into()));
        }
        match s.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(self.bad(row, col, format!("not a finite number: `{s}`"))),
        }
    }

    /// Column `col` of `row` as a positive whole number that fits in `u32`.
    pub(crate) fn count(&self, row: &(u64, Vec<String>), col: usize) -> Result<u32> {
        let x = self.num(row, col)?;
        if x >= 1.0 && x.fract() == 0.0 && x <= f64::from(u32::MAX) {
            Ok(x as u32)
        } else {
            Err(self.bad(row, col, format!("must be a whole number ≥ 1, got {x}")))
        }
    }

    /// An error at `row`, field `col`.
    pub(crate) fn bad(&self, row: &(u64, Vec<String>), col: usize, msg: String) -> Error {
        Error::input_at(&self.path, row.0, Some(self.header[col].as_str()), msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quotes_and_reports_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("q.csv");
        std::fs::write(&p, "h1,h2,h3\r\na,\"b,c\" ,\"d\"\"e\"\r\n   \r\n").unwrap();
        let t = CsvTable::read(&p).unwrap();
        assert_eq!(t.header, ["h1", "h2", "h3"]);
        assert_eq!(
            t.rows,
            [(2, vec!["a".into(), "b,c".into(), r#"d"e"#.into()])]
        );
        for (bad, line) in [
            ("x,y\n1,\"2\n3,4\n", 2),
            ("x,y\n1,2\n3,\"4\n", 3),
            ("x,y\n1,2\"\n", 2),
            ("x,y\n1, \"2,3\"\n", 2),
        ] {
            std::fs::write(&p, bad).unwrap();
            let e = CsvTable::read(&p).unwrap_err().to_string();
            assert!(e.contains(&format!("q.csv:{line}: ")), "{bad:?}: {e}");
        }
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "x,y\n\n1,2\n3,oops\n").unwrap();
        let t = CsvTable::read(&p).unwrap();
        assert_eq!(t.rows.len(), 2);
        let y = t.required(&["Y"]).unwrap();
        assert_eq!(t.num(&t.rows[0], y).unwrap(), 2.0);
        let e = t.num(&t.rows[1], y).unwrap_err().to_string();
        assert!(
            e.ends_with("t.csv:4: field `y`: not a finite number: `oops`"),
            "{e}"
        );
        let e = t.required(&["z", "zz"]).unwrap_err().to_string();
        assert!(e.contains(":1: field `z`: missing column"), "{e}");
    }

    #[test]
    fn json_lines_read_as_a_table() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.jsonl");
        std::fs::write(
            &p,
            "{\"x\": 1, \"name\": \"a\"}\n\n{\"x\": 2.5, \"y\": null}\n{\"y\": true}\n",
        )
        .unwrap();
        let t = CsvTable::read_json_lines(&p).unwrap();
        assert_eq!(t.header, ["name", "x", "y"]);
        assert_eq!(t.rows[0], (1, vec!["a".into(), "1".into(), String::new()]));
        assert_eq!(t.rows[1].0, 3);
        assert_eq!(t.num(&t.rows[1], 1).unwrap(), 2.5);
        let e = t.num(&t.rows[2], 1).unwrap_err().to_string();
        assert!(
            e.ends_with("t.jsonl:4: field `x`: empty field: expected a number"),
            "{e}"
        );
        std::fs::write(&p, "{\"x\": 1}\n[1]\n").unwrap();
        let e = CsvTable::read_json_lines(&p).unwrap_err().to_string();
        assert!(e.ends_with("t.jsonl:2: expected a JSON object"), "{e}");
    }
}
