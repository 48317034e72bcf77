//! `servesim merge`: join the folders of a sharded sweep.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `servesim merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Shard folders written by `servesim sweep --shard I/N`.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,

    /// Folder for the merged files (byte-identical to an unsharded run's).
    #[arg(long, value_name = "DIR")]
    pub output_dir: PathBuf,

    /// Do not draw SVG charts.
    #[arg(long)]
    pub no_charts: bool,
}

/// Run `servesim merge`.
pub fn run(args: MergeArgs) -> Result<()> {
    let dirs: Vec<&std::path::Path> = args.dirs.iter().map(PathBuf::as_path).collect();
    let (meta, rows) = crate::plan::table::merge(&dirs, &args.output_dir)?;
    if !args.no_charts {
        crate::plan::chart::sweep_charts(&args.output_dir, &rows)?;
    }
    println!(
        "{}: merged {} points from {} folders into {}",
        meta.name,
        rows.len(),
        dirs.len(),
        args.output_dir.display()
    );
    Ok(())
}
