//! The whole pipeline on arbitrary input: no panic; either diagnostics (with an exit code) or output
//! that parses back as YAML.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let source = knext::pipeline::Source {
        name: "fuzz.yaml".into(),
        text: text.to_owned(),
    };
    let outcome = knext::pipeline::run(&[source], &knext::render::RenderOptions::default());
    if outcome.exit_code() == 0 {
        for app in &outcome.apps {
            for (_, doc) in app.documents() {
                serde_yaml::from_str::<serde_yaml::Value>(doc).expect("rendered YAML parses");
            }
        }
    } else {
        assert!(!outcome.diagnostics.is_empty());
    }
});
