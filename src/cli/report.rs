//! `servesim report DIR [DIR...]`: the charts and `report.html` of run folders.

use crate::report::html::write_report;
use crate::report::run_data::RunData;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `servesim report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Run folders written by `servesim simulate` (each with summary.json; charts use
    /// timeseries.csv, distributions.csv and throughput.csv where present).
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,

    /// Where charts/ and report.html go. Default: the run folder itself for one folder,
    /// output/report for several.
    #[arg(long, short = 'o', value_name = "DIR")]
    output_dir: Option<PathBuf>,
}

/// Run `servesim report`.
pub fn run(args: ReportArgs) -> Result<()> {
    let runs = args
        .dirs
        .iter()
        .map(|d| RunData::load(d))
        .collect::<crate::Result<Vec<_>>>()?;
    let out = args
        .output_dir
        .unwrap_or_else(|| match args.dirs.as_slice() {
            [one] => one.clone(),
            _ => PathBuf::from("output").join("report"),
        });
    std::fs::create_dir_all(&out).map_err(|e| crate::Error::io(&out, e))?;
    let page = write_report(&runs, &out)?;
    println!("wrote {}", page.display());
    Ok(())
}
