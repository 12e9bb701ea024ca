//! `knext pause` and `knext copy-self`: the two halves of the image-prewarm DaemonSet's pod
//! ([`crate::render::imgcache`]).
//!
//! knext's own image is `FROM scratch` (a static `/knext`, no shell, no `cp`), so its init container
//! stages the binary with `knext copy-self /knext-pin/knext`; the app image's container then runs
//! `/knext-pin/knext pause`, which does nothing until the kubelet stops it. Neither needs tokio or a
//! feature: both are in every (unix) build of the binary. No unsafe code: signals are blocked and
//! waited for (`sigwait`), never handled.

use std::io;
use std::path::Path;

use nix::sys::signal::{SigSet, Signal};

/// Blocks SIGTERM and SIGINT and waits until one arrives; returns it.
///
/// NB: call it before any thread is started: threads inherit the signal mask, and a thread that does
/// not block the signals would take the default action (termination) instead. As PID 1 of a container
/// the process would otherwise ignore both (the kernel does not apply default actions to a namespace's
/// init), and the kubelet would have to kill it.
pub fn pause() -> nix::Result<Signal> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.thread_block()?;
    set.wait()
}

/// Copies the running executable (`/proc/self/exe` on Linux) to `dest` with mode 0555: written to a
/// temporary file beside it and renamed over it, so `dest` is never seen half-written and replacing a
/// binary that is running works.
pub fn copy_self(dest: &Path) -> io::Result<()> {
    let name = dest
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the destination names no file"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dest.with_file_name(tmp_name);
    let result = write_copy(&tmp).and_then(|()| std::fs::rename(&tmp, dest));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_copy(to: &Path) -> io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let mut source = std::fs::File::open(self_exe()?)?;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(crate::api::imgcache::PIN_MODE)
        .open(to)?;
    io::copy(&mut source, &mut out)?;
    // The umask applied at creation: set the mode exactly.
    out.set_permissions(std::fs::Permissions::from_mode(crate::api::imgcache::PIN_MODE))
}

/// The running executable: `/proc/self/exe` itself on Linux (it opens the very file, also after it was
/// replaced on disk), the path the OS reports elsewhere.
fn self_exe() -> io::Result<std::path::PathBuf> {
    if cfg!(target_os = "linux") {
        Ok("/proc/self/exe".into())
    } else {
        std::env::current_exe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_self_into_a_missing_directory_fails_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let err = copy_self(&dir.path().join("missing/knext")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert_eq!(
            copy_self(Path::new("/")).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
