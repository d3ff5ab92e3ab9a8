//! The `accel` binary: everything happens in [`accel::run`].

fn main() -> std::process::ExitCode {
    accel::run(std::env::args_os())
}
