//! The Next.js cache handler knext ships: `templates/cache-handler.cjs.j2` rendered with the Redis
//! layout constants of [`crate::api::cache`], so the handler in the app and `knext serve` in front of
//! it cannot disagree on where entries, tag sets and events live.
//!
//! Pure: the same knext version renders the same bytes. `cargo build` writes the result to
//! `generated/next/cache-handler.cjs`; `knext cache-handler` prints it.

use crate::api::cache;

/// The template, compiled in.
pub const TEMPLATE: &str = include_str!("../../templates/cache-handler.cjs.j2");
/// Where `cargo build` writes the rendered handler, under `generated/`.
pub const GENERATED_PATH: &str = "next/cache-handler.cjs";

/// Renders the cache handler module.
pub fn cache_handler() -> Result<String, String> {
    let env = super::template_environment(super::TemplateSyntax::Jinja)?;
    env.render_str(
        TEMPLATE,
        minijinja::context! {
            knext_version => env!("CARGO_PKG_VERSION"),
            default_prefix => cache::DEFAULT_PREFIX,
            entry_segment => cache::ENTRY_SEGMENT,
            tag_segment => cache::TAG_SEGMENT,
            events_key => cache::EVENTS_KEY,
            events_cap => cache::EVENTS_CAP,
            source => "cache-handler",
        },
    )
    .map_err(|e| format!("templates/cache-handler.cjs.j2: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_shared_layout_and_nothing_is_left_unrendered() {
        let js = cache_handler().unwrap();
        for needle in [
            "const DEFAULT_PREFIX = \"kn-next\";",
            "const ENTRY_SEGMENT = \"cache\";",
            "const TAG_SEGMENT = \"tag\";",
            "const EVENTS_KEY = \"cache-events\";",
            "const EVENTS_CAP = 200;",
            "const SOURCE = \"cache-handler\";",
        ] {
            assert!(js.contains(needle), "missing {needle}");
        }
        assert!(
            !js.contains("{{") && !js.contains("{%"),
            "template syntax left in the output"
        );
        assert!(js.ends_with('\n'));
        assert_eq!(js, cache_handler().unwrap(), "deterministic");
    }
}
