//! `agenthq`: parse the command line, dispatch, exit.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    agenthq::cli::main()
}
