//! The `mlmeta` binary; everything is in the library.

fn main() -> std::process::ExitCode {
    mlmeta_cli::main().into()
}
