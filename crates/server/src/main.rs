//! `yunying`: the single binary of the platform. See `yunying --help`.

fn main() -> std::process::ExitCode {
    yunying::cli::main()
}
