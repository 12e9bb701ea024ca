//! The fast YAML path never disagrees with serde_yaml: whenever it answers, serde_yaml gives the same
//! value (for a generic value and for the NextApp spec type).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Some(v) = knext::yaml::fast::from_str::<serde_yaml::Value>(text) {
        assert_eq!(
            serde_yaml::from_str::<serde_yaml::Value>(text).ok(),
            Some(v),
            "{text:?}"
        );
    }
    if let Some(v) = knext::yaml::fast::from_str::<knext::api::NextAppSpec>(text) {
        assert_eq!(
            serde_yaml::from_str::<knext::api::NextAppSpec>(text).ok(),
            Some(v),
            "{text:?}"
        );
    }
});
