//! Signals (case 5): the first SIGINT/SIGTERM stops any phase; 130 for SIGINT, 143 for SIGTERM.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::Piimage;
use crate::support::run_ok;

/// Starts `validate` on a recipe whose password file is a FIFO nobody writes (so piimage waits
/// in `open`), sends `signal` once after a second and returns the exit code and how long the
/// process took to end after the signal.
fn signal_while_waiting_on_a_fifo(signal: &str) -> (Option<i32>, Duration) {
    let dir = crate::support::tmp();
    let d = dir.path();
    std::fs::write(d.join("base.img"), b"").unwrap();
    run_ok("mkfifo", &[d.join("pw").to_str().unwrap()]);
    std::fs::write(
        d.join("r.yaml"),
        "cluster: { name: lab }\nbase: { path: base.img }\nnodes: [{ name: n1 }]\nusers:\n  - name: alice\n    password: { file: pw }\n",
    )
    .unwrap();
    let (mut pi, _pi_dirs) = Piimage::new().command();
    let mut child = pi
        .args(["validate", "r.yaml"])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        child.try_wait().unwrap().is_none(),
        "piimage did not wait on the FIFO"
    );
    run_ok("kill", &[&format!("-{signal}"), &child.id().to_string()]);
    let sent = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), sent.elapsed());
        }
        if sent.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            let _ = child.wait();
            return (None, sent.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn issue15_the_first_sigterm_ends_a_wait_on_a_secret_fifo_with_143() {
    let (code, took) = signal_while_waiting_on_a_fifo("TERM");
    assert_eq!(code, Some(143), "after {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn issue15_the_first_sigint_ends_a_wait_on_a_secret_fifo_with_130() {
    let (code, took) = signal_while_waiting_on_a_fifo("INT");
    assert_eq!(code, Some(130), "after {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}
