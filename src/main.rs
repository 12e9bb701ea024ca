//! The `knext` binary.

// NB: rendering allocates and frees millions of small strings across threads; mimalloc keeps that
// cheap (see BENCHMARKS.md for the measured difference against the system allocator).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    knext::cli::run()
}
