fn main() -> std::process::ExitCode {
    sesame::cli::run()
}
