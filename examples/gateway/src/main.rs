//! The `idjag-gateway` binary. See the library docs.

fn main() -> std::process::ExitCode {
    idjag_gateway::cli::main()
}
