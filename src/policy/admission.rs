//! The NextApp CRD's CEL admission rules evaluated client-side, as the API server would, to prove that
//! the validator is at least as strict as admission and to keep the two in step.
//!
//! Shared with `build.rs`; pure, no I/O.

use super::{Problem, Severity};
use crate::api::{NextApp, reasons};

/// Evaluates the CEL admission rules (`x-kubernetes-validations`) of the NextApp CRD knext ships
/// ([`crate::api::crd::nextapp_crd`], derived from the same types) client-side with kube-cel, as the API
/// server would on create. [`validate`](super::validate) is stricter than these rules, so this finds nothing for a
/// validated app unless the two drifted apart; `knext validate` and build.rs run it to prove they agree.
pub fn admission(app: &NextApp) -> Vec<Problem> {
    let failed = |path: &str, message: String| Problem {
        severity: Severity::Error,
        reason: if path == "spec.image" {
            reasons::INVALID_IMAGE
        } else {
            reasons::INVALID_SPEC
        },
        path: path.to_owned(),
        message,
    };
    let object = match serde_json::to_value(app) {
        Ok(v) => v,
        Err(e) => return vec![failed("", format!("cannot evaluate the admission rules: {e}"))],
    };
    let result = ADMISSION.with(|(validator, compiled)| validator.validate_compiled(compiled, &object, None));
    match result {
        Ok(()) => Vec::new(),
        Err(errors) => errors
            .into_vec()
            .into_iter()
            .map(|e| {
                let path = e.field_path.trim_start_matches('.');
                failed(
                    path,
                    format!(
                        "rejected by the NextApp CRD's admission rule `{}`: {}",
                        e.rule, e.message
                    ),
                )
            })
            .collect(),
    }
}

thread_local! {
    /// The shipped CRD's rules, compiled once per thread (compiling them is most of the cost).
    static ADMISSION: (kube::core::cel::Validator, kube::core::cel::CompiledSchema) = {
        let schema = crate::api::crd::nextapp_openapi_schema();
        (kube::core::cel::Validator::new(), kube::core::cel::compile_schema(&schema))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{RESERVED_ENV, SECRET_ENV, secrets, validate};

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn app(spec: &str) -> NextApp {
        let spec: crate::api::NextAppSpec = serde_yaml::from_str(spec).expect("test spec parses");
        let mut app = NextApp::new("web", spec);
        app.metadata.namespace = Some("apps".into());
        app
    }

    #[test]
    fn each_admission_rule_rejects_its_violation_and_accepts_valid_apps() {
        let ok = format!("image: ghcr.io/a/web:1.0@{DIGEST}\n");
        let cases: &[(&str, String, Option<&str>)] = &[
            ("pinned", ok.clone(), None),
            (
                "full valid",
                format!(
                    "{ok}env: {{A_1: x}}\ntraffic: {{revisionName: r-1, canaryPercent: 5}}\ndatabase: {{secretRef: {{name: db}}, roSecretRef: {{name: ro}}}}\n"
                ),
                None,
            ),
            ("tag only", "image: nginx:1.27\n".into(), Some("spec.image")),
            ("latest", "image: nginx:latest\n".into(), Some("spec.image")),
            (
                "short digest",
                "image: nginx@sha256:abc\n".into(),
                Some("spec.image"),
            ),
            ("env name", format!("{ok}env: {{'a.b': x}}\n"), Some("spec.env")),
            (
                "env reserved",
                format!("{ok}env: {{PORT: '1'}}\n"),
                Some("spec.env"),
            ),
            (
                "env secret",
                format!("{ok}env: {{DATABASE_URL: x}}\n"),
                Some("spec.env"),
            ),
            (
                "canary without revision",
                format!("{ok}traffic: {{canaryPercent: 5}}\n"),
                Some("spec.traffic"),
            ),
            (
                "ro without rw",
                format!("{ok}database: {{roSecretRef: {{name: ro}}}}\n"),
                Some("spec.database"),
            ),
            (
                "signature with a subject",
                format!("{ok}security: {{signature: {{issuer: 'https://i.example', subject: s}}}}\n"),
                None,
            ),
            (
                "signature with a subject regexp",
                format!(
                    "{ok}security: {{signature: {{issuer: 'https://i.example', subjectRegExp: '^s$'}}}}\n"
                ),
                None,
            ),
            (
                "signature without a subject",
                format!("{ok}security: {{signature: {{issuer: 'https://i.example'}}}}\n"),
                Some("spec.security.signature"),
            ),
            (
                "signature with both subjects",
                format!(
                    "{ok}security: {{signature: {{issuer: 'https://i.example', subject: s, subjectRegExp: s}}}}\n"
                ),
                Some("spec.security.signature"),
            ),
        ];
        for (case, spec, want) in cases {
            let paths: Vec<String> = admission(&app(spec)).into_iter().map(|p| p.path).collect();
            match want {
                None => assert!(paths.is_empty(), "{case}: {paths:?}"),
                Some(w) => assert_eq!(paths, [*w], "{case}"),
            }
        }
        assert_eq!(
            admission(&app("image: nginx:latest\n"))[0].reason,
            reasons::INVALID_IMAGE
        );
    }

    #[test]
    fn the_crd_rules_reject_every_reserved_and_secret_env_name_the_validator_rejects() {
        // The CEL rule strings repeat RESERVED_ENV and SECRET_ENV; this keeps the lists in step.
        let ok = format!("image: ghcr.io/a/web@{DIGEST}\n");
        for name in RESERVED_ENV.iter().chain(SECRET_ENV.iter().map(|(n, _)| n)) {
            let problems = admission(&app(&format!("{ok}env: {{{name}: x}}\n")));
            // The rule that lists the name rejects it (CACHE_INVALIDATE_TOKEN fails the suffix rule too).
            assert!(
                problems.iter().any(|p| p.message.contains(&format!("'{name}'"))),
                "{name}: {problems:?}"
            );
        }
    }

    #[test]
    fn the_crd_rule_rejects_every_secret_name_the_validator_rejects_and_exempts_public_ones() {
        // The CEL rule spells the suffixes out; this keeps it in step with `secrets::SECRET_NAME_SUFFIXES`.
        let ok = format!("image: ghcr.io/a/web@{DIGEST}\n");
        for suffix in secrets::SECRET_NAME_SUFFIXES {
            let bare = &suffix[1..];
            for name in [
                format!("APP{suffix}"),
                bare.to_owned(),
                format!("app{}", suffix.to_lowercase()),
            ] {
                let spec = format!("{ok}env: {{{name}: x}}\n");
                assert!(validate(&app(&spec)).is_err(), "{name}");
                let problems = admission(&app(&spec));
                assert_eq!(problems.len(), 1, "{name}: {problems:?}");
                assert_eq!(problems[0].path, "spec.env", "{name}");
            }
            // NEXT_PUBLIC_ names are exempt from the name rule (a warning in the validator).
            let public = format!("{ok}env: {{NEXT_PUBLIC_APP{suffix}: x}}\n");
            assert!(validate(&app(&public)).is_ok(), "{suffix}");
            assert_eq!(admission(&app(&public)), [], "{suffix}");
        }
        for name in ["TOKEN_TTL", "BYPASS", "PASSWORD_MIN_LENGTH", "SECRETARY"] {
            assert_eq!(
                admission(&app(&format!("{ok}env: {{{name}: x}}\n"))),
                [],
                "{name}"
            );
        }
    }

    /// Whether the CRD's CEL rules admit an app whose image is `reference` (everything else valid).
    fn admits_image(reference: &str) -> bool {
        let mut app = app(&format!("image: ghcr.io/a/web@{DIGEST}\n"));
        app.spec.image = reference.to_owned();
        let problems = admission(&app);
        assert!(problems.iter().all(|p| p.path == "spec.image"), "{problems:?}");
        problems.is_empty()
    }

    thread_local! {
        /// The shipped CRD's `spec.image` node alone, compiled once (for many evaluations).
        static IMAGE_NODE: (kube::core::cel::Validator, kube::core::cel::CompiledSchema) = {
            let schema = crate::api::crd::nextapp_openapi_schema();
            let node = &schema["properties"]["spec"]["properties"]["image"];
            assert_eq!(node["x-kubernetes-validations"][0]["rule"], crate::api::IMAGE_RULE);
            (kube::core::cel::Validator::new(), kube::core::cel::compile_schema(node))
        };
    }

    /// [`admits_image`] on the `spec.image` node of the shipped CRD only: the same rule, less work.
    fn image_rule_admits(reference: &str) -> bool {
        IMAGE_NODE.with(|(validator, compiled)| {
            validator
                .validate_compiled(compiled, &serde_json::Value::from(reference), None)
                .is_ok()
        })
    }

    /// References built from the grammar's pieces, right and wrong: registries (hosts, ports, IPv6,
    /// uppercase, `localhost`, bad ones), path components with every separator, tags, digests (good,
    /// uppercase, short, all-zero, other algorithms, none), then at times a character inserted anywhere
    /// (whitespace, control, non-ASCII, `@`, `:`, `/`, uppercase).
    fn references() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let registry = prop_oneof![
            3 => Just(String::new()),
            3 => "[a-z0-9]{1,6}(\\.[a-z0-9]{1,6}){1,2}(:[0-9]{1,5})?/",
            1 => "[a-z0-9]{1,6}(\\.[a-z0-9-]{1,6}){1,2}(:[0-9]{1,5})?/",
            1 => "[A-Za-z0-9-]{1,8}(:[0-9]{0,4})?/",
            1 => Just("localhost/".to_owned()),
            1 => Just("localhost:5000/".to_owned()),
            1 => "\\[[0-9a-fA-F:]{0,6}\\](:[0-9]{1,4})?/",
            1 => "[a-z0-9._-]{1,10}/",
        ];
        let component = prop_oneof![
            6 => "[a-z0-9]{1,4}((\\.|_|__|-{1,2})[a-z0-9]{1,4}){0,2}",
            1 => "[a-zA-Z0-9._-]{1,6}",
        ];
        let path = proptest::collection::vec(component, 1..4).prop_map(|c| c.join("/"));
        let tag = prop_oneof![
            Just(String::new()),
            ":[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}",
            ":[A-Za-z0-9_.-]{0,4}",
            Just(format!(":{}", "t".repeat(129))),
        ];
        let digest = prop_oneof![
            8 => "@sha256:[0-9a-f]{64}",
            1 => "@sha256:[0-9a-fA-F]{64}",
            1 => Just(format!("@sha256:{}", "0".repeat(64))),
            1 => "@sha256:[0-9a-f]{60,70}",
            1 => "@sha512:[0-9a-f]{64}",
            1 => Just(String::new()),
        ];
        let long_name = prop_oneof![9 => Just(None), 1 => (200usize..300).prop_map(Some)];
        let insert = prop_oneof![
            8 => Just(None),
            1 => (any::<proptest::sample::Index>(), "[ \t\n\r\x00\x7f\u{a0}\u{2028}é@:/A]")
                .prop_map(Some),
        ];
        (registry, path, tag, digest, long_name, insert).prop_map(
            |(registry, path, tag, digest, long_name, insert)| {
                let path = match long_name {
                    Some(n) => format!("{path}/{}", "a".repeat(n)),
                    None => path,
                };
                let mut reference = format!("{registry}{path}{tag}{digest}");
                if let Some((at, c)) = insert {
                    let mut at = at.index(reference.len() + 1);
                    while !reference.is_char_boundary(at) {
                        at -= 1;
                    }
                    reference.insert_str(at, &c);
                }
                reference
            },
        )
    }

    #[test]
    fn admission_accepts_exactly_the_images_the_parser_accepts() {
        use proptest::test_runner::{Config, TestRunner};
        let accepted = std::cell::Cell::new(0u32);
        let mut runner = TestRunner::new(Config {
            cases: 2000,
            ..Config::default()
        });
        runner
            .run(&references(), |reference| {
                let parser = crate::policy::image::check_pinned(&reference).is_ok();
                let cel = image_rule_admits(&reference);
                proptest::prop_assert_eq!(cel, parser, "{:?}: CEL {}, parser {}", reference, cel, parser);
                accepted.set(accepted.get() + u32::from(parser));
                Ok(())
            })
            .unwrap();
        // Both sides of the boundary are exercised.
        assert!(
            (200..1800).contains(&accepted.get()),
            "{} of 2000 accepted",
            accepted.get()
        );
        // The cases the old rule (`^[^@ ]+@sha256:[a-f0-9]{64}$`) let through.
        let hex = "0123456789abcdef".repeat(4);
        for reference in [
            format!("ghcr.io/a/we\tb@sha256:{hex}"),
            format!("ghcr.io/a/web\n@sha256:{hex}"),
            format!("ghcr.io/a/web@sha256:{}", "0".repeat(64)),
            format!("ghcr.io/A/web@sha256:{hex}"),
            format!("ghcr..io/a/web@sha256:{hex}"),
            format!("a.b_c/web@sha256:{hex}"),
            format!("ghcr.io/{}@sha256:{hex}", "a".repeat(300)),
        ] {
            assert!(
                crate::policy::image::check_pinned(&reference).is_err(),
                "{reference:?}"
            );
            assert!(!admits_image(&reference), "{reference:?}");
        }
    }

    #[test]
    fn every_admission_rule_of_the_crd_compiles() {
        let schema = crate::api::crd::nextapp_openapi_schema();
        let compiled = kube::core::cel::compile_schema(&schema);
        assert!(!compiled.has_errors(), "{:?}", compiled.compilation_errors());
        assert_eq!(schema.to_string().matches("\"rule\"").count(), 8);
    }

    /// Every schema node carrying rules, with its rules.
    fn rule_nodes(node: &serde_json::Value, out: &mut Vec<(serde_json::Value, Vec<String>)>) {
        if let Some(rules) = node.get("x-kubernetes-validations").and_then(|r| r.as_array()) {
            let rules = rules
                .iter()
                .filter_map(|r| r["rule"].as_str().map(str::to_owned))
                .collect();
            out.push((node.clone(), rules));
        }
        if let Some(props) = node.get("properties").and_then(|p| p.as_object()) {
            props.values().for_each(|p| rule_nodes(p, out));
        }
        for key in ["items", "additionalProperties"] {
            if let Some(sub) = node.get(key).filter(|s| s.is_object()) {
                rule_nodes(sub, out);
            }
        }
    }

    #[test]
    fn every_admission_rule_stays_within_the_api_servers_cost_budget() {
        // NB: kube-cel's scope analysis is not used: it flags the variables bound by `all(k, ...)`
        // and `exists(k, ...)` as out of scope, although the API server (and the tests above) accept them.
        use kube::core::cel::{compile_schema, estimate_rule_cost};
        let schema = crate::api::crd::nextapp_openapi_schema();
        let mut nodes = Vec::new();
        rule_nodes(&schema, &mut nodes);
        let mut warnings = Vec::new();
        for (node, rules) in &nodes {
            let compiled = compile_schema(node);
            for rule in rules {
                warnings.extend(estimate_rule_cost(rule, &compiled));
            }
        }
        assert_eq!(nodes.iter().map(|(_, r)| r.len()).sum::<usize>(), 8);
        assert!(warnings.is_empty(), "{warnings:#?}");
        // The estimator does flag an over-budget rule (a quadratic walk of an unbounded list).
        let unbounded = compile_schema(&serde_json::json!({"type": "array", "items": {"type": "string"}}));
        assert!(!estimate_rule_cost("self.all(x, self.all(y, x == y))", &unbounded).is_empty());
    }

    #[test]
    fn admission_never_rejects_what_the_validator_accepts() {
        // Every valid fixture, example and validator-table app that validates must pass admission too.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut checked = 0;
        for dir in ["snapshots/inputs/valid", "examples"] {
            for source in crate::pipeline::read_path(&root.join(dir)).unwrap() {
                for doc in crate::yaml::parse::split_documents(&source.text)
                    .iter()
                    .filter(|d| !d.is_blank())
                {
                    let app = crate::api::parse_nextapp(doc).unwrap();
                    assert!(validate(&app).is_ok());
                    assert_eq!(
                        admission(&app),
                        [],
                        "{}",
                        app.metadata.name.as_deref().unwrap_or_default()
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 8);
    }
}
