//! Writing the native CSV format, byte-exact: times are printed from integer
//! nanoseconds, never through floating point.

use super::Request;
use crate::units::{SimTime, NANOS_PER_SEC};
use std::io::{self, Write};

/// Seconds with exactly nine decimals (`12.000000001`), from integer nanoseconds.
pub fn format_secs(t: SimTime) -> String {
    let ns = t.as_nanos();
    format!("{}.{:09}", ns / NANOS_PER_SEC, ns % NANOS_PER_SEC)
}

/// Writes requests as native CSV.
///
/// The basic columns are `request_id,arrival_time_s,input_tokens,output_tokens`; with
/// `extended`, `session_id,prefix_hash_ids,hash_block_tokens` follow (empty session for
/// none, hash ids space-separated). Output depends only on the requests, so equal inputs
/// give byte-identical files.
#[derive(Debug)]
pub struct NativeWriter<W: Write> {
    out: W,
    extended: bool,
    header_done: bool,
}

impl<W: Write> NativeWriter<W> {
    /// A writer to `out`; `extended` adds the session and prefix-hash columns.
    pub fn new(out: W, extended: bool) -> Self {
        NativeWriter {
            out,
            extended,
            header_done: false,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_done {
            self.header_done = true;
            self.out
                .write_all(b"request_id,arrival_time_s,input_tokens,output_tokens")?;
            if self.extended {
                self.out
                    .write_all(b",session_id,prefix_hash_ids,hash_block_tokens")?;
            }
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Write one request (the header first, on the first call).
    pub fn write(&mut self, r: &Request) -> io::Result<()> {
        self.header()?;
        let ns = r.arrival.as_nanos();
        write!(
            self.out,
            "{},{}.{:09},{},{}",
            r.id,
            ns / NANOS_PER_SEC,
            ns % NANOS_PER_SEC,
            r.input_tokens,
            r.output_tokens
        )?;
        if self.extended {
            self.out.write_all(b",")?;
            if let Some(s) = r.session_id {
                write!(self.out, "{s}")?;
            }
            self.out.write_all(b",")?;
            for (i, h) in r.prefix_hash_ids.iter().enumerate() {
                if i > 0 {
                    self.out.write_all(b" ")?;
                }
                write!(self.out, "{h}")?;
            }
            write!(self.out, ",{}", r.hash_block_tokens)?;
        }
        self.out.write_all(b"\n")
    }

    /// Write the header if no request was written, flush, and return the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.header()?;
        self.out.flush()?;
        Ok(self.out)
    }
}
