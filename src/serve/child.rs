//! The Next.js server process. `knext serve` is usually PID 1 of the container (and a child subreaper
//! otherwise), so besides its own child it reaps every orphan the kernel hands it, as an init process
//! must (they would stay zombies otherwise), and it learns its child's exit from that same reaping.

use std::process::Stdio;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// The running child.
#[derive(Debug)]
pub struct AppServer {
    pid: Pid,
    exited: watch::Receiver<Option<u8>>,
}

impl AppServer {
    /// Starts `command` with `PORT=port`, `HOSTNAME=127.0.0.1`, and without the variables in `withheld`.
    /// Must run inside the tokio runtime.
    pub fn spawn(command: &[String], port: u16, withheld: &[&str]) -> std::io::Result<Self> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no command"))?;
        // Orphans of the app (a process its child left behind) come to knext serve even when it is
        // not PID 1, and are reaped below.
        #[cfg(target_os = "linux")]
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::warn!(error = %e, "cannot become a child subreaper; orphans go to PID 1");
        }
        // Listen for SIGCHLD before the child exists, so its exit cannot be missed.
        let mut sigchld = signal(SignalKind::child())?;
        let mut cmd = std::process::Command::new(program);
        cmd.args(args)
            .env("PORT", port.to_string())
            .env("HOSTNAME", "127.0.0.1")
            .stdin(Stdio::null());
        for name in withheld {
            cmd.env_remove(name);
        }
        let child = cmd.spawn()?;
        let pid = Pid::from_raw(i32::try_from(child.id()).map_err(std::io::Error::other)?);
        // Dropping std's handle neither kills nor waits: the reaper below collects the status.
        drop(child);
        let (tx, exited) = watch::channel(None);
        tokio::spawn(async move {
            loop {
                reap(pid, &tx);
                if sigchld.recv().await.is_none() {
                    return;
                }
            }
        });
        Ok(Self { pid, exited })
    }

    /// Sends `signal` to the child (a child that is gone is not an error).
    pub fn signal(&self, signal: Signal) {
        let _ = kill(self.pid, signal);
    }

    /// The child's exit code: its own, or 128 + the signal that killed it.
    pub async fn wait(&self) -> u8 {
        let mut exited = self.exited.clone();
        match exited.wait_for(Option::is_some).await {
            Ok(code) => code.unwrap_or(1),
            Err(_) => 1,
        }
    }
}

/// Collects every exited child; records `pid`'s exit code.
fn reap(pid: Pid, exited: &watch::Sender<Option<u8>>) {
    loop {
        let code = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => u8::try_from(code).unwrap_or(1),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => u8::try_from(128 + sig as i32).unwrap_or(1),
            // An orphan reaped, or a stop/continue report: look again.
            Ok(
                WaitStatus::Exited(..)
                | WaitStatus::Signaled(..)
                | WaitStatus::Stopped(..)
                | WaitStatus::Continued(_),
            ) => continue,
            // Nothing more to collect now (or no children at all).
            _ => return,
        };
        let _ = exited.send(Some(code));
    }
}
