//! Readers of the CSV formats: native, Azure LLM 2023 and Mooncake.
//!
//! One reader, reused buffers: the header decides which column holds what, and each row
//! is parsed and checked as it is read.
//!
//! Lines are read here and split by [`Fields`] rather than by the `csv` crate, because
//! error messages must name the exact line: `csv` positions a record at the end of the
//! previous one, so blank lines before it and CRLF endings shift its line number by one.
//! The price is that a quoted field cannot span lines, which no trace format needs.

use super::{parse, Request, RowAt, RowChecker, TraceFormat, MOONCAKE_HASH_BLOCK_TOKENS};
use crate::error::{Error, Result};
use crate::units::{SimTime, NANOS_PER_SEC};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// Column positions, from the header.
#[derive(Debug, Default)]
struct Cols {
    arrival: usize,
    input: usize,
    output: usize,
    id: Option<usize>,
    session: Option<usize>,
    hashes: Option<usize>,
    block: Option<usize>,
    /// Fields in the header.
    len: usize,
}

/// The format's names for (arrival, input, output, hashes, request id, session, block).
fn names(format: TraceFormat) -> [&'static str; 7] {
    match format {
        TraceFormat::Azure2023 => [
            "TIMESTAMP",
            "ContextTokens",
            "GeneratedTokens",
            "",
            "",
            "",
            "",
        ],
        TraceFormat::Mooncake => [
            "timestamp_ms",
            "input_tokens",
            "output_tokens",
            "hash_ids",
            "",
            "",
            "",
        ],
        _ => [
            "arrival_time_s",
            "input_tokens",
            "output_tokens",
            "prefix_hash_ids",
            "request_id",
            "session_id",
            "hash_block_tokens",
        ],
    }
}

/// The fields of one CSV line, in one reused buffer.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    buf: String,
    /// Start and end of each field in `buf`.
    spans: Vec<(usize, usize)>,
}

impl Fields {
    /// Split `line` (no line terminator) at commas. A field may be double-quoted (`""`
    /// inside is a quote, commas are kept); unquoted fields are trimmed of spaces and tabs.
    pub(crate) fn split(&mut self, line: &str) -> Result<(), String> {
        self.buf.clear();
        self.spans.clear();
        if !line.contains('"') {
            // The common case, the same fields without the quote state machine: the
            // line is copied once and its fields are spans of it.
            self.buf.push_str(line);
            let bytes = self.buf.as_bytes();
            let mut start = 0;
            for end in memchr::memchr_iter(b',', bytes).chain([bytes.len()]) {
                let (mut a, mut b) = (start, end);
                while a < b && matches!(bytes[a], b' ' | b'\t') {
                    a += 1;
                }
                while b > a && matches!(bytes[b - 1], b' ' | b'\t') {
                    b -= 1;
                }
                self.spans.push((a, b));
                start = end + 1;
            }
            return Ok(());
        }
        let mut chars = line.chars().peekable();
        loop {
            while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
            let start = self.buf.len();
            if chars.next_if_eq(&'"').is_some() {
                loop {
                    match chars.next() {
                        None => {
                            return Err(format!(
                                "field {}: unterminated quote (a quoted field cannot span lines)",
                                self.spans.len() + 1
                            ))
                        }
                        Some('"') if chars.next_if_eq(&'"').is_some() => self.buf.push('"'),
                        Some('"') => break,
                        Some(c) => self.buf.push(c),
                    }
                }
                while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
                match chars.next() {
                    None => {
                        self.spans.push((start, self.buf.len()));
                        return Ok(());
                    }
                    Some(',') => self.spans.push((start, self.buf.len())),
                    Some(c) => {
                        return Err(format!(
                            "field {}: unexpected `{c}` after a closing quote",
                            self.spans.len() + 1
                        ))
                    }
                }
            } else {
                let mut last = None;
                for c in chars.by_ref() {
                    if c == ',' {
                        last = Some(c);
                        break;
                    }
                    self.buf.push(c);
                }
                let kept = self.buf[start..].trim_end_matches([' ', '\t']).len();
                self.buf.truncate(start + kept);
                self.spans.push((start, self.buf.len()));
                if last.is_none() {
                    return Ok(());
                }
            }
        }
    }

    /// Number of fields.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// Field `i`, if the line has it.
    pub(crate) fn get(&self, i: usize) -> Option<&str> {
        let &(start, end) = self.spans.get(i)?;
        Some(&self.buf[start..end])
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

/// Lines of a file, one reused buffer, with their 1-based numbers; blank lines skipped.
pub(crate) struct Lines {
    path: PathBuf,
    rdr: BufReader<File>,
    buf: String,
    line: u64,
}

impl Lines {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Ok(Lines {
            path: path.to_owned(),
            rdr: BufReader::new(file),
            buf: String::new(),
            line: 0,
        })
    }

    /// The next non-blank line (terminator and a leading BOM removed) and its number.
    pub(crate) fn next_line(&mut self) -> Result<Option<(u64, &str)>> {
        loop {
            self.buf.clear();
            self.line += 1;
            match self.rdr.read_line(&mut self.buf) {
                Ok(0) => return Ok(None),
                Ok(_) => {
                    if self.buf.trim().is_empty() {
                        continue;
                    }
                    let text = self.buf.trim_end_matches(['\n', '\r']);
                    let text = if self.line == 1 {
                        text.trim_start_matches('\u{feff}')
                    } else {
                        text
                    };
                    return Ok(Some((self.line, text)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Err(Error::input_at(
                        &self.path,
                        self.line,
                        None,
                        "invalid UTF-8",
                    ))
                }
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
    }
}

/// A streaming reader of one CSV trace.
pub(crate) struct CsvTrace {
    lines: Lines,
    rec: Fields,
    line: u64,
    path: PathBuf,
    format: TraceFormat,
    cols: Cols,
    /// Position of the next row among the data rows (the default request id).
    index: u64,
    /// Azure: wall-clock nanoseconds of the first row.
    origin: Option<i128>,
    default_block: u32,
    checker: RowChecker,
    done: bool,
}

impl CsvTrace {
    /// Open `path` as `format` (one of the CSV formats) and read its header.
    pub(crate) fn open(path: &Path, format: TraceFormat, default_block: u32) -> Result<Self> {
        let mut lines = Lines::open(path)?;
        let mut header = Fields::default();
        match lines.next_line()? {
            None => {
                return Err(Error::input_at(
                    path,
                    1,
                    None,
                    format!("empty file: expected a {} header", format.name()),
                ))
            }
            Some((line, text)) => header
                .split(text)
                .map_err(|m| Error::input_at(path, line, None, m))?,
        }
        let cols = find_columns(path, format, &header)?;
        Ok(CsvTrace {
            lines,
            rec: Fields::default(),
            line: 0,
            path: path.to_owned(),
            format,
            cols,
            index: 0,
            origin: None,
            default_block,
            checker: RowChecker::new(path),
            done: false,
        })
    }

    fn row(&mut self) -> Result<Request> {
        let line = self.line;
        let [arrival_f, input_f, output_f, hashes_f, id_f, session_f, block_f] = names(self.format);
        let path = &self.path;
        let err = |field: &str, msg: String| Error::input_at(path, line, Some(field), msg);
        if self.rec.len() > self.cols.len {
            return Err(Error::input_at(
                path,
                line,
                None,
                format!(
                    "the row has {} fields but the header has {}",
                    self.rec.len(),
                    self.cols.len
                ),
            ));
        }
        let n = self.rec.len();
        let header_len = self.cols.len;
        let get = |idx: usize, field: &str| {
            self.rec.get(idx).ok_or_else(|| {
                err(
                    field,
                    format!("missing: the row has {n} fields but the header has {header_len}"),
                )
            })
        };

        let raw_arrival = get(self.cols.arrival, arrival_f)?;
        let arrival_ns = match self.format {
            TraceFormat::Azure2023 => {
                let t = parse::wall_clock_nanos(raw_arrival).map_err(|m| err(arrival_f, m))?;
                let origin = *self.origin.get_or_insert(t);
                let off = t - origin;
                if off < 0 {
                    return Err(err(
                        arrival_f,
                        format!(
                            "`{raw_arrival}` is earlier than the first row's timestamp; \
                             arrivals must be non-decreasing: sort the file by arrival time"
                        ),
                    ));
                }
                u64::try_from(off).map_err(|_| {
                    err(
                        arrival_f,
                        format!("`{raw_arrival}` is too far after the first row's timestamp"),
                    )
                })?
            }
            TraceFormat::Mooncake => {
                parse::time_nanos(raw_arrival, 1_000_000).map_err(|m| err(arrival_f, m))?
            }
            _ => parse::time_nanos(raw_arrival, NANOS_PER_SEC).map_err(|m| err(arrival_f, m))?,
        };
        let input_tokens =
            parse::tokens(get(self.cols.input, input_f)?).map_err(|m| err(input_f, m))?;
        let output_tokens =
            parse::tokens(get(self.cols.output, output_f)?).map_err(|m| err(output_f, m))?;
        let id = match self.cols.id {
            Some(c) => parse::unsigned(get(c, id_f)?).map_err(|m| err(id_f, m))?,
            None => self.index,
        };
        let session_id = match self.cols.session {
            Some(c) => match get(c, session_f)? {
                "" => None,
                s => Some(parse::unsigned(s).map_err(|m| err(session_f, m))?),
            },
            None => None,
        };
        let mut prefix_hash_ids = Vec::new();
        if let Some(c) = self.cols.hashes {
            parse::id_list(get(c, hashes_f)?, &mut prefix_hash_ids)
                .map_err(|m| err(hashes_f, m))?;
        }
        let hash_block_tokens = match (self.format, self.cols.block) {
            (TraceFormat::Mooncake, _) => MOONCAKE_HASH_BLOCK_TOKENS,
            (_, Some(c)) => match get(c, block_f)? {
                "" => self.default_block,
                s => match parse::tokens(s).map_err(|m| err(block_f, m))? {
                    0 => return Err(err(block_f, "must be at least 1, got 0".into())),
                    b => b,
                },
            },
            (_, None) => self.default_block,
        };
        self.index += 1;
        let req = Request {
            id,
            arrival: SimTime::from_nanos(arrival_ns),
            input_tokens,
            output_tokens,
            session_id,
            prefix_hash_ids,
            hash_block_tokens,
        };
        self.checker.check(
            &req,
            RowAt::Line(line),
            [arrival_f, input_f, output_f, hashes_f],
        )?;
        Ok(req)
    }
}

impl Iterator for CsvTrace {
    type Item = Result<Request>;

    fn next(&mut self) -> Option<Result<Request>> {
        if self.done {
            return None;
        }
        let item = match self.lines.next_line() {
            Ok(None) => None,
            Ok(Some((line, text))) => {
                self.line = line;
                match self.rec.split(text) {
                    Ok(()) => Some(self.row()),
                    Err(m) => Some(Err(Error::input_at(&self.path, line, None, m))),
                }
            }
            Err(e) => Some(Err(e)),
        };
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// The header's column positions for `format`; missing required columns and duplicates
/// are errors at line 1.
fn find_columns(path: &Path, format: TraceFormat, header: &Fields) -> Result<Cols> {
    let lower: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
    let find = |name: &str| -> Result<Option<usize>> {
        let want = name.to_ascii_lowercase();
        let mut hits = lower.iter().enumerate().filter(|(_, h)| **h == want);
        let first = hits.next().map(|(i, _)| i);
        if hits.next().is_some() {
            return Err(Error::input_at(
                path,
                1,
                Some(name),
                "column appears more than once in the header",
            ));
        }
        Ok(first)
    };
    let required = |name: &str| -> Result<usize> {
        find(name)?.ok_or_else(|| {
            Error::input_at(
                path,
                1,
                Some(name),
                format!(
                    "required column missing from the {} header `{}`",
                    format.name(),
                    header.iter().collect::<Vec<_>>().join(",")
                ),
            )
        })
    };
    let [arrival_f, input_f, output_f, hashes_f, id_f, session_f, block_f] = names(format);
    let mut cols = Cols {
        arrival: required(arrival_f)?,
        input: required(input_f)?,
        output: required(output_f)?,
        len: header.len(),
        ..Cols::default()
    };
    match format {
        TraceFormat::Azure2023 => {}
        TraceFormat::Mooncake => cols.hashes = find(hashes_f)?,
        _ => {
            cols.hashes = find(hashes_f)?;
            cols.id = find(id_f)?;
            cols.session = find(session_f)?;
            cols.block = find(block_f)?;
        }
    }
    Ok(cols)
}

#[cfg(test)]
mod tests {
    use super::Fields;
    use proptest::prelude::*;

    fn split(line: &str) -> Result<Vec<String>, String> {
        let mut f = Fields::default();
        f.split(line)?;
        Ok(f.iter().map(str::to_owned).collect())
    }

    /// The unquoted fast path splits exactly as the quote-aware loop does.
    #[test]
    fn unquoted_lines_split_as_the_general_loop_does() {
        use proptest::prelude::*;
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&"[a-z0-9 \\t,.\\-]{0,40}", |line| {
                let fast = split(&line).unwrap();
                // A trailing quoted empty field forces the general loop on the same fields.
                let general = split(&format!("{line},\"\"")).unwrap();
                prop_assert_eq!(&fast[..], &general[..general.len() - 1]);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn splitting() {
        assert_eq!(split("a,b , c").unwrap(), ["a", "b", "c"]);
        assert_eq!(split("").unwrap(), [""]);
        assert_eq!(split("1,").unwrap(), ["1", ""]);
        assert_eq!(
            split(r#""x, y" ,"say ""hi""",3"#).unwrap(),
            ["x, y", r#"say "hi""#, "3"]
        );
        assert_eq!(split(r#"a,"""#).unwrap(), ["a", ""]);
        assert_eq!(
            split(r#"a,"b"#).unwrap_err(),
            "field 2: unterminated quote (a quoted field cannot span lines)"
        );
        assert_eq!(
            split(r#""b"c,d"#).unwrap_err(),
            "field 1: unexpected `c` after a closing quote"
        );
    }

    proptest! {
        /// Quoting any fields and joining them splits back into the same fields.
        #[test]
        fn quoted_round_trip(fields in proptest::collection::vec("[a-z0-9 ,\"]{0,8}", 1..6)) {
            let line = fields
                .iter()
                .map(|f| format!("\"{}\"", f.replace('"', "\"\"")))
                .collect::<Vec<_>>()
                .join(",");
            prop_assert_eq!(split(&line).unwrap(), fields);
        }
    }
}
