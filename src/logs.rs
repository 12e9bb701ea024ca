//! Logs of knext's long-running processes (`knext operator`, `knext serve`): JSON lines on stderr,
//! filtered by `RUST_LOG` (default `info`).

/// Installs the JSON subscriber (a second call changes nothing).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_current_span(false)
        .try_init();
}
