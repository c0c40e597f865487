//! The subcommands that do not serve: `convert`, `info`, `check`. Each prints to standard
//! output and error and turns its outcome into the exit status: 0 done, 1 failed (130 is
//! Ctrl-C during `convert`).

use std::process::ExitCode;

use arrayd::config::{CheckArgs, ConvertArgs, InfoArgs};
use arrayd::convert::{self, Options, Syntax};

pub(crate) fn convert(args: &ConvertArgs) -> ExitCode {
    let options = Options {
        input: args.input.clone(),
        output: args.output.clone(),
        dtype: args.dtype,
        syntax: Syntax {
            delimiter: args.delimiter,
            comments: args.comments.clone().into_bytes(),
        },
        skip_rows: args.skip_rows,
        usecols: args.usecols.clone(),
        threads: args.threads,
        progress: !args.no_progress,
    };
    let started = std::time::Instant::now();
    match convert::run(&options) {
        Ok(summary) => {
            eprintln!(
                "arrayd convert: wrote {} ({}, shape {}) from {} rows, {} bytes in {:.2} s",
                args.output.display(),
                options.dtype,
                arrayd::inspect::python_shape(&summary.shape),
                summary.rows,
                summary.bytes_read,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("arrayd convert: {}: {e}", args.input.display());
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn info(args: &InfoArgs) -> ExitCode {
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| match args.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => ".".into(),
        });
    status(arrayd::inspect::info(
        &args.path,
        &dir,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    ))
}

pub(crate) fn check(args: &CheckArgs) -> ExitCode {
    status(arrayd::inspect::check(
        &args.data_dir,
        &args.state_dir,
        args.json,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    ))
}

fn status(outcome: std::io::Result<bool>) -> ExitCode {
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("arrayd: {e}");
            ExitCode::FAILURE
        }
    }
}
