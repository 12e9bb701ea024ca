//! Builds the example user crate (examples/user-crate, whose build.rs calls `knext::build::Bundle`) with
//! real `cargo build` runs: a tag-only image fails the build and writes nothing; a pinned one writes
//! exactly the committed files; with CI set a stale tree fails and nothing is written; and knext's own
//! build script (knext is a build dependency) fails on `KNEXT_OPERATOR_IMAGE=…:latest`.
//!
//! The crate is copied to a temporary directory with its dependency on knext pointed at this checkout;
//! builds share `target/user-crate-test` so only the first one compiles knext's dependencies.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn example() -> PathBuf {
    Path::new(ROOT).join("examples/user-crate")
}

/// Copies the example crate (sources, apps, lock file, committed output) into a fresh directory.
fn scratch_crate() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&example(), dir.path());
    let manifest = dir.path().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let patched = text.replace(r#"path = "../..""#, &format!("path = {ROOT:?}"));
    assert_ne!(
        text, patched,
        "the example's knext dependency is not `path = \"../..\"`"
    );
    std::fs::write(&manifest, patched).unwrap();
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

fn cargo_build(dir: &Path, ci: bool) -> Output {
    cargo_build_with(dir, ci, None)
}

/// `cargo build` of the crate in `dir`; `operator_image` sets `KNEXT_OPERATOR_IMAGE` for knext's own
/// build script (knext is a build dependency, so its build.rs and pin gate run here too).
fn cargo_build_with(dir: &Path, ci: bool, operator_image: Option<&str>) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--locked", "--quiet"])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", Path::new(ROOT).join("target/user-crate-test"))
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("KNEXT_OPERATOR_IMAGE");
    if let Some(image) = operator_image {
        cmd.env("KNEXT_OPERATOR_IMAGE", image);
    }
    if ci {
        cmd.env("CI", "true");
    } else {
        cmd.env_remove("CI");
    }
    cmd.output().unwrap()
}

fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// One test, so the scratch builds run one after another on the shared target directory.
#[test]
fn the_example_user_crate_builds_with_the_pin_gate_and_the_ci_rule() {
    let committed = files_under(&example().join("generated"));
    assert!(committed.len() >= 9, "{committed:?}");

    // 1. Tag-only image: the build fails, names file:line:column and the fix, writes nothing.
    let krate = scratch_crate();
    let app = krate.path().join("apps/checkout.yaml");
    let text = std::fs::read_to_string(&app).unwrap();
    let tag_only = text
        .lines()
        .map(|l| match l.split_once("@sha256:") {
            Some((image, _)) if l.trim_start().starts_with("image:") => image.to_owned(),
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&app, tag_only).unwrap();
    std::fs::remove_dir_all(krate.path().join("generated")).unwrap();
    let out = cargo_build(krate.path(), false);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "the build passed with a tag-only image:\n{err}"
    );
    assert!(
        err.contains("apps/checkout.yaml:8:10: error [InvalidImage]: spec.image: image \"registry.example.com/team-checkout/checkout:2.3.1\" is tag-only"),
        "{err}"
    );
    assert!(err.contains("pin it by digest"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !krate.path().join("generated").exists(),
        "the failed build wrote files"
    );

    // 2. The committed, pinned apps: the build writes exactly the committed files.
    let krate = scratch_crate();
    std::fs::remove_dir_all(krate.path().join("generated")).unwrap();
    let out = cargo_build(krate.path(), false);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files_under(&krate.path().join("generated")), committed);

    // 3. CI: an up-to-date tree passes; a stale one fails and is left as it was.
    let out = cargo_build(krate.path(), true);
    assert!(out.status.success(), "{}", stderr(&out));
    let app = krate.path().join("apps/payments-webhook.yaml");
    let text = std::fs::read_to_string(&app).unwrap();
    std::fs::write(&app, text + "  env:\n    LOG_LEVEL: debug\n").unwrap();
    let out = cargo_build(krate.path(), true);
    let err = stderr(&out);
    assert!(!out.status.success(), "a stale tree passed in CI:\n{err}");
    assert!(
        err.contains("generated/ is stale: run cargo build and commit"),
        "{err}"
    );
    assert!(
        err.contains("team-checkout/payments-webhook/knative-service.yaml"),
        "{err}"
    );
    assert_eq!(files_under(&krate.path().join("generated")), committed);

    // 4. knext's own pin gate: an unpinned operator image fails knext's build script (and with it this
    //    build), naming the file, object, container, image and fix; knext's generated/ is untouched.
    let knext_install = Path::new(ROOT).join("generated/install.yaml");
    let before = std::fs::read(&knext_install).unwrap();
    let out = cargo_build_with(krate.path(), false, Some("ghcr.io/x/knext:latest"));
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "knext built with an unpinned operator image:\n{err}"
    );
    assert!(
        err.contains(
            "generated/install.yaml: Deployment knext-system/knext-operator: container \"operator\" \
             (spec.template.spec.containers[0].image): image \"ghcr.io/x/knext:latest\" uses the mutable \
             \"latest\" tag; pin it by digest"
        ),
        "{err}"
    );
    assert!(err.contains("(the operator image came from the KNEXT_OPERATOR_IMAGE environment variable)"));
    assert_eq!(std::fs::read(&knext_install).unwrap(), before);
}

/// Copies this checkout's package sources (what `cargo build` reads) into `to`.
fn copy_checkout(to: &Path) {
    for file in ["Cargo.toml", "Cargo.lock", "build.rs", "rust-toolchain.toml"] {
        std::fs::copy(Path::new(ROOT).join(file), to.join(file)).unwrap();
    }
    // scripts/: the image pipeline's scripts, which `knext scaffold` embeds.
    for dir in ["src", "benches", "templates", "generated", "scripts"] {
        copy_dir(&Path::new(ROOT).join(dir), &to.join(dir));
    }
    // The examples without the user crate (its own build is the test above).
    std::fs::create_dir_all(to.join("examples")).unwrap();
    for entry in std::fs::read_dir(Path::new(ROOT).join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join("examples").join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// Two checkouts of knext built with one `CARGO_TARGET_DIR`: Cargo gives both the same build-script hash
/// (a workspace root's path is not part of it), so the second reuses the script the first compiled. That
/// script must read the checkout it runs for, not the one it was compiled in (it once baked
/// `CARGO_MANIFEST_DIR` in with `env!`, and the second checkout failed with "<first>/Cargo.toml: No such
/// file" once the first was gone).
#[test]
fn a_second_checkout_sharing_the_target_dir_builds_its_own_sources() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    // Both exist (and are older than the compiled script) before the first build, as two clones would.
    copy_checkout(first.path());
    copy_checkout(second.path());
    std::fs::write(
        second.path().join("examples/zz-second-checkout.yaml"),
        "apiVersion: apps.kn-next.dev/v1alpha1\nkind: NextApp\nmetadata:\n  name: only-in-second\n\
         spec:\n  image: registry.example.com/second:1.0\n",
    )
    .unwrap();
    let build = |dir: &Path| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // The unpinned operator image stops each build in its build script, before the library compiles.
        Command::new(cargo)
            .args(["build", "--locked", "--quiet", "--lib", "--no-default-features"])
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", Path::new(ROOT).join("target/user-crate-test"))
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env("KNEXT_OPERATOR_IMAGE", "ghcr.io/x/knext:latest")
            .env("CI", "true")
            .output()
            .unwrap()
    };
    let out = build(first.path());
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("uses the mutable \"latest\" tag"), "{err}");
    assert!(!err.contains("zz-second-checkout"), "{err}");
    let first_path = first.path().to_path_buf();
    drop(first);
    assert!(!first_path.exists());

    let out = build(second.path());
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(
            "examples/zz-second-checkout.yaml:6:10: error [InvalidImage]: spec.image: image \
             \"registry.example.com/second:1.0\" is tag-only"
        ),
        "the second checkout's build script did not read the second checkout:\n{err}"
    );
    assert!(!err.contains(&*first_path.to_string_lossy()), "{err}");
}
