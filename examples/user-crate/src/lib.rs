//! The rendered manifests, also available to Rust code (for example to serve or test them).

/// The root kustomization of the rendered apps.
pub const KUSTOMIZATION: &str = include_str!("../generated/kustomization.yaml");

#[cfg(test)]
mod tests {
    #[test]
    fn lists_every_app() {
        assert!(super::KUSTOMIZATION.contains("- team-checkout/checkout\n"));
        assert!(super::KUSTOMIZATION.contains("- team-checkout/payments-webhook\n"));
    }
}
