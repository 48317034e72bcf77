//! `servesim interactive`: asks for the model, the hardware, the tensor parallelism and
//! the batch (fuzzy selection from the catalogs), then runs and prints the equivalent
//! `servesim estimate` and `servesim memory` commands. Refuses when stdin or stdout is
//! not a terminal.

use super::{Cli, Command};
use crate::deployment::{DEFAULT_HARDWARE, DEFAULT_MODEL};
use crate::hardware::HardwareCatalog;
use crate::model::ModelCatalog;
use crate::paths::DataPaths;
use anyhow::{bail, Result};
use clap::Parser;
use inquire::{CustomType, InquireError, Select};
use std::io::IsTerminal;

/// The answers, as the flags of the equivalent commands.
struct Answers {
    model: String,
    hardware: String,
    tp: u32,
    batch_size: u32,
    input_len: u32,
    output_len: u32,
}

/// Run `servesim interactive`.
pub fn run(paths: &DataPaths) -> Result<()> {
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        bail!(crate::Error::input(
            "<stdin>",
            None,
            "`servesim interactive` asks questions and needs a terminal, and stdin or stdout \
             is not one; in scripts, run `servesim estimate` and `servesim memory` with flags \
             (see their --help)"
        ));
    }
    let answers = match ask(paths) {
        Ok(a) => a,
        Err(InquireError::OperationCanceled | InquireError::OperationInterrupted) => {
            eprintln!("cancelled");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let a = &answers;
    let deployment = [
        "--model".to_owned(),
        a.model.clone(),
        "--hardware".to_owned(),
        a.hardware.clone(),
        "--tensor-parallel-size".to_owned(),
        a.tp.to_string(),
    ];
    let batch = [
        "--batch-size".to_owned(),
        a.batch_size.to_string(),
        "--input-len".to_owned(),
        a.input_len.to_string(),
        "--output-len".to_owned(),
        a.output_len.to_string(),
    ];
    let estimate: Vec<String> = ["estimate".to_owned()]
        .into_iter()
        .chain(deployment.iter().cloned())
        .chain(batch)
        .collect();
    let memory: Vec<String> = ["memory".to_owned()]
        .into_iter()
        .chain(deployment)
        .chain([
            "--max-model-len".to_owned(),
            (a.input_len + a.output_len).to_string(),
        ])
        .collect();
    for argv in [estimate, memory] {
        println!("\n$ servesim {}", argv.join(" "));
        let cli = Cli::try_parse_from(["servesim".to_owned()].into_iter().chain(argv))?;
        match cli.command {
            Command::Estimate(args) => super::estimate::run(*args, paths)?,
            Command::Memory(args) => super::memory::run(*args, paths)?,
            _ => unreachable!("only estimate and memory are built here"),
        }
    }
    Ok(())
}

/// Ask every question; defaults are the CLI's.
fn ask(paths: &DataPaths) -> Result<Answers, InquireError> {
    let fail = |e: crate::Error| InquireError::Custom(Box::new(e));
    let models: Vec<String> = ModelCatalog::for_paths(paths)
        .map_err(fail)?
        .entries()
        .iter()
        .map(|e| e.id.clone())
        .collect();
    let at = |list: &[String], want: &str| list.iter().position(|m| m == want).unwrap_or(0);
    let model = Select::new("Model (type to filter):", models.clone())
        .with_starting_cursor(at(&models, DEFAULT_MODEL))
        .with_page_size(12)
        .prompt()?;
    let catalog = HardwareCatalog::load(&paths.hardware_dir()).map_err(fail)?;
    let devices: Vec<String> = catalog.entries().iter().map(|g| g.name.clone()).collect();
    let default_gpu = catalog
        .resolve(DEFAULT_HARDWARE)
        .map(|g| g.name)
        .unwrap_or_default();
    let hardware = Select::new("Hardware (type to filter):", devices.clone())
        .with_starting_cursor(at(&devices, &default_gpu))
        .with_page_size(12)
        .prompt()?;
    let tp = Select::new("Tensor parallel size:", vec![1u32, 2, 4, 8]).prompt()?;
    let positive = |what: &'static str, default: u32| {
        CustomType::<u32>::new(what)
            .with_default(default)
            .with_validator(|v: &u32| {
                Ok(if *v >= 1 {
                    inquire::validator::Validation::Valid
                } else {
                    inquire::validator::Validation::Invalid("at least 1".into())
                })
            })
            .prompt()
    };
    Ok(Answers {
        model,
        hardware,
        tp,
        batch_size: positive("Requests in the batch:", 1)?,
        input_len: positive("Prompt tokens per request:", 1024)?,
        output_len: positive("Output tokens per request:", 128)?,
    })
}
