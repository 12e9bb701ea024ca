//! Kubernetes name and value rules: DNS-1123 labels and subdomains, DNS-1035 labels, environment
//! variable names, label values and Secret/ConfigMap keys.
//!
//! Pure functions with no I/O, shared by the NextApp validator, `build.rs` and the CLI. Every
//! checker is a hand-written byte scanner (no regex engine, so no backtracking), checks the
//! length cap before scanning, and returns a lowercase message that quotes the value (truncated
//! when it is huge) and states the rule.

/// Longest value echoed verbatim in a message; longer values are cut and marked with `…`.
const QUOTE_MAX: usize = 80;

/// Quotes `s` for an error message (Rust debug escaping), truncated to a bounded size so that a
/// hostile multi-megabyte value cannot blow up logs or Kubernetes condition messages.
pub(super) fn quote(s: &str) -> String {
    if s.len() <= QUOTE_MAX {
        return format!("{s:?}");
    }
    let mut end = QUOTE_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let head = s.get(..end).unwrap_or_default();
    format!("{head:?}… ({} bytes)", s.len())
}

const fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Describes a byte for a message: printable ASCII as `'c'`, anything else as its code.
fn describe_char(s: &str, at: usize) -> String {
    match s.get(at..).and_then(|rest| rest.chars().next()) {
        Some(c) if c.is_ascii_graphic() => format!("'{c}'"),
        Some(c) => format!("{:?} (U+{:04X})", c, u32::from(c)),
        None => String::from("an invalid byte"),
    }
}

/// Why one label fails `[a-z0-9]([-a-z0-9]*[a-z0-9])?` (or, with `letter_first`, the DNS-1035
/// `[a-z]([-a-z0-9]*[a-z0-9])?`); `None` when it matches. `offset` positions reported characters
/// within the whole value.
fn label_problem(label: &str, offset: usize, letter_first: bool) -> Option<String> {
    let bytes = label.as_bytes();
    let (first, last) = match (bytes.first(), bytes.last()) {
        (Some(&f), Some(&l)) => (f, l),
        _ => return Some(String::from("it has an empty label")),
    };
    for (i, &b) in bytes.iter().enumerate() {
        if !(is_lower_alnum(b) || b == b'-') {
            let what = describe_char(label, i);
            return Some(if b.is_ascii_uppercase() {
                format!(
                    "it contains the uppercase character {what} at position {}",
                    offset + i
                )
            } else {
                format!("it contains the character {what} at position {}", offset + i)
            });
        }
    }
    if letter_first && !first.is_ascii_lowercase() {
        return Some(String::from("it must start with a lowercase letter"));
    }
    if first == b'-' {
        return Some(String::from("it must not start with '-'"));
    }
    if last == b'-' {
        return Some(String::from("it must not end with '-'"));
    }
    None
}

/// Checks a DNS-1123 label (RFC 1123): at most 63 characters of lowercase letters, digits and
/// `-`, starting and ending with a letter or digit. Used for most Kubernetes object names.
pub fn check_dns1123_label(s: &str) -> Result<(), String> {
    const RULE: &str = "a DNS-1123 label is 1 to 63 lowercase letters, digits or '-', starting and ending \
                        with a letter or digit (e.g. \"my-app\")";
    if s.len() > 63 {
        return Err(format!("{} is {} characters long; {RULE}", quote(s), s.len()));
    }
    if s.is_empty() {
        return Err(format!("the name is empty; {RULE}"));
    }
    match label_problem(s, 0, false) {
        Some(problem) => Err(format!(
            "{} is not a valid DNS-1123 label: {problem}; {RULE}",
            quote(s)
        )),
        None => Ok(()),
    }
}

/// Checks a DNS-1123 subdomain: at most 253 characters, one or more DNS-1123 labels joined by `.`
/// (each label lowercase letters, digits and `-`, starting and ending with a letter or digit).
pub fn check_dns1123_subdomain(s: &str) -> Result<(), String> {
    const RULE: &str = "a DNS-1123 subdomain is at most 253 characters of lowercase letters, digits, '-' and \
                        '.', where every '.'-separated part starts and ends with a letter or digit \
                        (e.g. \"example.com\")";
    if s.len() > 253 {
        return Err(format!("{} is {} characters long; {RULE}", quote(s), s.len()));
    }
    if s.is_empty() {
        return Err(format!("the name is empty; {RULE}"));
    }
    let mut offset = 0;
    for label in s.split('.') {
        if let Some(problem) = label_problem(label, offset, false) {
            return Err(format!(
                "{} is not a valid DNS-1123 subdomain: {problem}; {RULE}",
                quote(s)
            ));
        }
        offset += label.len() + 1;
    }
    Ok(())
}

/// Checks a DNS-1035 label (RFC 1035): at most 63 characters of lowercase letters, digits and
/// `-`, starting with a letter and ending with a letter or digit. Used for Service names.
pub fn check_dns1035_label(s: &str) -> Result<(), String> {
    const RULE: &str = "a DNS-1035 label is 1 to 63 lowercase letters, digits or '-', starting with a letter \
                        and ending with a letter or digit (e.g. \"my-app\")";
    if s.len() > 63 {
        return Err(format!("{} is {} characters long; {RULE}", quote(s), s.len()));
    }
    if s.is_empty() {
        return Err(format!("the name is empty; {RULE}"));
    }
    match label_problem(s, 0, true) {
        Some(problem) => Err(format!(
            "{} is not a valid DNS-1035 label: {problem}; {RULE}",
            quote(s)
        )),
        None => Ok(()),
    }
}

/// Checks an environment variable name against the C identifier rule knext uses:
/// `[A-Za-z_][A-Za-z0-9_]*`, at most 256 characters.
pub fn check_env_var_name(s: &str) -> Result<(), String> {
    const RULE: &str = "an environment variable name is 1 to 256 letters, digits or '_' and must not start \
                        with a digit (e.g. \"DATABASE_URL\")";
    if s.len() > 256 {
        return Err(format!("{} is {} characters long; {RULE}", quote(s), s.len()));
    }
    let Some(&first) = s.as_bytes().first() else {
        return Err(format!("the environment variable name is empty; {RULE}"));
    };
    if first.is_ascii_digit() {
        return Err(format!("{} starts with a digit; {RULE}", quote(s)));
    }
    if let Some(i) = s.bytes().position(|b| !(b.is_ascii_alphanumeric() || b == b'_')) {
        return Err(format!(
            "{} contains the character {} at position {i}; {RULE}",
            quote(s),
            describe_char(s, i)
        ));
    }
    Ok(())
}

/// Checks a label value: empty, or at most 63 characters of letters, digits, `-`, `_` and `.`,
/// starting and ending with a letter or digit.
pub fn check_label_value(s: &str) -> Result<(), String> {
    const RULE: &str = "a label value is empty or 1 to 63 letters, digits, '-', '_' or '.', starting and \
                        ending with a letter or digit (e.g. \"v1.2\")";
    if s.len() > 63 {
        return Err(format!("{} is {} characters long; {RULE}", quote(s), s.len()));
    }
    let bytes = s.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return Ok(());
    };
    if let Some(i) = bytes
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
    {
        return Err(format!(
            "{} contains the character {} at position {i}; {RULE}",
            quote(s),
            describe_char(s, i)
        ));
    }
    if !first.is_ascii_alphanumeric() {
        return Err(format!("{} must start with a letter or digit; {RULE}", quote(s)));
    }
    if !last.is_ascii_alphanumeric() {
        return Err(format!("{} must end with a letter or digit; {RULE}", quote(s)));
    }
    Ok(())
}

/// Checks a Secret or ConfigMap data key: 1 to 253 characters of letters, digits, `-`, `_` and
/// `.`, and not `.` or `..`.
pub fn check_secret_key(s: &str) -> Result<(), String> {
    const RULE: &str = "a secret or config map key is 1 to 253 letters, digits, '-', '_' or '.', and is not \
                        \".\" or \"..\" (e.g. \"tls.crt\")";
    if s.len() > 253 {
        return Err(format!("{} is {} characters long; {RULE}", quote(s), s.len()));
    }
    if s.is_empty() {
        return Err(format!("the key is empty; {RULE}"));
    }
    if s == "." || s == ".." {
        return Err(format!("{} is a path component, not a key; {RULE}", quote(s)));
    }
    if let Some(i) = s
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
    {
        return Err(format!(
            "{} contains the character {} at position {i}; {RULE}",
            quote(s),
            describe_char(s, i)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Check = fn(&str) -> Result<(), String>;

    fn run_table(name: &str, check: Check, rows: &[(&str, bool)]) {
        for &(input, ok) in rows {
            let got = check(input);
            assert_eq!(got.is_ok(), ok, "{name}({input:?}) gave {got:?}");
            if let Err(message) = got {
                let first = message.chars().next().unwrap();
                assert!(!first.is_uppercase(), "message not lowercase: {message}");
                assert!(message.len() < 600, "message too long: {message}");
            }
        }
    }

    #[test]
    fn dns1123_labels_follow_the_kubernetes_pattern() {
        let long_ok = "a".repeat(63);
        let long_bad = "a".repeat(64);
        run_table(
            "check_dns1123_label",
            check_dns1123_label,
            &[
                ("a", true),
                ("0", true),
                ("my-app", true),
                ("123-abc", true),
                ("a--b", true),
                (long_ok.as_str(), true),
                (long_bad.as_str(), false),
                ("", false),
                ("-a", false),
                ("a-", false),
                ("-", false),
                ("My-app", false),
                ("my_app", false),
                ("my.app", false),
                ("my app", false),
                ("é", false),
                ("a\0", false),
            ],
        );
    }

    #[test]
    fn dns1123_subdomains_allow_dotted_labels_up_to_253() {
        let ok = ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".");
        assert_eq!(ok.len(), 253);
        let too_long = format!("{ok}e");
        run_table(
            "check_dns1123_subdomain",
            check_dns1123_subdomain,
            &[
                ("a", true),
                ("example.com", true),
                ("a.b-c.d1", true),
                ("1.2.3.4", true),
                (ok.as_str(), true),
                (too_long.as_str(), false),
                ("", false),
                (".a", false),
                ("a.", false),
                ("a..b", false),
                ("a.-b", false),
                ("a-.b", false),
                ("A.b", false),
                ("a_b.c", false),
            ],
        );
    }

    #[test]
    fn dns1035_labels_must_start_with_a_letter() {
        run_table(
            "check_dns1035_label",
            check_dns1035_label,
            &[
                ("a", true),
                ("my-app", true),
                ("a1", true),
                ("1a", false),
                ("-a", false),
                ("a-", false),
                ("", false),
                ("My", false),
                ("a.b", false),
            ],
        );
        let too_long = "a".repeat(64);
        assert!(check_dns1035_label(&too_long).is_err());
    }

    #[test]
    fn env_var_names_are_c_identifiers() {
        let long_ok = "A".repeat(256);
        let long_bad = "A".repeat(257);
        run_table(
            "check_env_var_name",
            check_env_var_name,
            &[
                ("A", true),
                ("_", true),
                ("DATABASE_URL", true),
                ("lower_case9", true),
                ("_9", true),
                (long_ok.as_str(), true),
                (long_bad.as_str(), false),
                ("", false),
                ("9A", false),
                ("A-B", false),
                ("A.B", false),
                ("A B", false),
                ("Ä", false),
                ("A=B", false),
            ],
        );
    }

    #[test]
    fn label_values_may_be_empty_and_contain_dots_dashes_and_underscores() {
        let long_ok = "v".repeat(63);
        let long_bad = "v".repeat(64);
        run_table(
            "check_label_value",
            check_label_value,
            &[
                ("", true),
                ("a", true),
                ("V1.2", true),
                ("a-b_c.d", true),
                ("a__--..b", true),
                (long_ok.as_str(), true),
                (long_bad.as_str(), false),
                ("-a", false),
                ("a-", false),
                (".a", false),
                ("a_", false),
                ("a/b", false),
                ("a b", false),
                ("ü", false),
            ],
        );
    }

    #[test]
    fn secret_keys_allow_dots_but_not_path_components() {
        let long_ok = "k".repeat(253);
        let long_bad = "k".repeat(254);
        run_table(
            "check_secret_key",
            check_secret_key,
            &[
                ("tls.crt", true),
                (".env", true),
                ("...", true),
                ("a-b_c.D", true),
                ("-", true),
                (long_ok.as_str(), true),
                (long_bad.as_str(), false),
                ("", false),
                (".", false),
                ("..", false),
                ("a/b", false),
                ("a b", false),
                ("key=value", false),
            ],
        );
    }

    #[test]
    fn messages_quote_the_value_and_state_the_rule() {
        let message = check_dns1123_label("My-App").unwrap_err();
        assert!(message.contains("\"My-App\""), "{message}");
        assert!(
            message.contains("uppercase character 'M' at position 0"),
            "{message}"
        );
        assert!(message.contains("63"), "{message}");
        let message = check_env_var_name("9LIVES").unwrap_err();
        assert!(message.contains("starts with a digit"), "{message}");
    }

    #[test]
    fn huge_values_are_rejected_by_length_and_truncated_in_messages() {
        let huge = "x".repeat(1_000_000);
        for check in [
            check_dns1123_label as Check,
            check_dns1123_subdomain,
            check_dns1035_label,
            check_env_var_name,
            check_label_value,
            check_secret_key,
        ] {
            let message = check(&huge).unwrap_err();
            assert!(
                message.len() < 600,
                "message not truncated: {} bytes",
                message.len()
            );
            assert!(message.contains("1000000"), "{message}");
        }
    }

    #[test]
    fn quote_cuts_on_a_character_boundary() {
        let value = "é".repeat(100);
        let quoted = quote(&value);
        assert!(quoted.ends_with("(200 bytes)"), "{quoted}");
        assert_eq!(quote("ok"), "\"ok\"");
    }

    proptest::proptest! {
        #[test]
        fn generated_labels_are_valid(label in "[a-z]([-a-z0-9]{0,61}[a-z0-9])?") {
            proptest::prop_assert!(check_dns1123_label(&label).is_ok());
            proptest::prop_assert!(check_dns1035_label(&label).is_ok());
            let dotted = [label.as_str(), label.as_str()].join(".");
            proptest::prop_assert!(check_dns1123_subdomain(&dotted).is_ok());
            proptest::prop_assert!(check_label_value(&label).is_ok());
            proptest::prop_assert!(check_secret_key(&label).is_ok());
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,300}") {
            let _ = check_dns1123_label(&s);
            let _ = check_dns1123_subdomain(&s);
            let _ = check_dns1035_label(&s);
            let _ = check_env_var_name(&s);
            let _ = check_label_value(&s);
            let _ = check_secret_key(&s);
        }
    }
}
