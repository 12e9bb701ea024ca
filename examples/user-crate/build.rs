//! Renders every NextApp under apps/ into generated/ (GitOps layout) on `cargo build`. The build fails,
//! writing nothing, on an invalid app or an image that is not digest-pinned; with CI set it only checks
//! that generated/ is up to date.

fn main() -> Result<(), knext::build::Error> {
    knext::build::Bundle::new().apps_from_dir("apps")?.write("generated")?;
    Ok(())
}
