//! Child processes that do not outlive their parent, stopped gently then
//! firmly. `entente up` runs PostgreSQL and the servers this way; the tests
//! run their peers this way.

use std::{
    os::unix::process::CommandExt,
    process::{Child, Command},
    time::{Duration, Instant},
};

/// Has `command`'s process receive `signal` when its parent dies (SIGKILL,
/// a crash), so nothing outlives it. The kernel sends it when the *thread*
/// that forked the child exits: fork from a thread that lives as long as
/// the process.
pub fn die_with_parent(command: &mut Command, signal: libc::c_int) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: runs between fork and exec in the child; prctl, getppid and
    // _exit are async-signal-safe and touch no shared state.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Stops a child: `signal` (SIGTERM, or SIGINT for PostgreSQL's fast
/// shutdown) first, SIGKILL after `grace`; reaps it either way.
pub fn stop(child: &mut Child, signal: libc::c_int, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_ignores_the_signal_is_killed_after_the_grace() {
        let mut command = Command::new("sh");
        command.args(["-c", "trap '' TERM; sleep 30"]);
        die_with_parent(&mut command, libc::SIGKILL);
        let mut child = command.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        stop(&mut child, libc::SIGTERM, Duration::from_millis(300));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(child.try_wait().unwrap().is_some(), "reaped");
    }

    #[test]
    fn a_child_that_obeys_stops_at_once() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let started = Instant::now();
        stop(&mut child, libc::SIGTERM, Duration::from_secs(10));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
