//! knext's install bundle as this build of knext pinned it.
//!
//! `build.rs` renders the bundle (with [`crate::render::bundle`]) for the operator image of
//! `[package.metadata.knext] operator-image` in Cargo.toml, or of `KNEXT_OPERATOR_IMAGE` when that was
//! set at build time, refuses to build unless it is digest-pinned, commits it as
//! `generated/install.yaml`, and hands both the image and the text to the library here. `knext install`
//! renders the same bundle at run time for another image or namespace.

/// The operator image this knext was built with (digest-pinned: the build fails otherwise).
pub const DEFAULT_OPERATOR_IMAGE: &str = env!("KNEXT_DEFAULT_OPERATOR_IMAGE");

/// `generated/install.yaml` as `cargo build` wrote it for [`DEFAULT_OPERATOR_IMAGE`].
pub const BUILT_INSTALL_YAML: &str = include_str!(concat!(env!("OUT_DIR"), "/install.yaml"));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::bundle::InstallOptions;
    use crate::render::layout::REGENERATE_BUILD;

    #[test]
    fn the_default_image_is_pinned() {
        crate::policy::image::check_pinned(DEFAULT_OPERATOR_IMAGE).unwrap();
    }

    #[test]
    fn the_run_time_render_equals_what_the_build_wrote() {
        let text = crate::pipeline::install_yaml(
            &InstallOptions::new(DEFAULT_OPERATOR_IMAGE),
            "install.yaml",
            REGENERATE_BUILD,
        )
        .unwrap();
        assert_eq!(text, BUILT_INSTALL_YAML);
    }

    #[test]
    fn the_committed_install_yaml_is_what_this_build_wrote() {
        let committed =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/generated/install.yaml")).unwrap();
        assert_eq!(committed, BUILT_INSTALL_YAML);
    }
}
