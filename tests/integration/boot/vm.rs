//! A node image booted under qemu (software emulation, TCG): the kernel and initramfs are taken
//! from the image's own boot partition and started with the image's own `cmdline.txt`, the way
//! the Raspberry Pi firmware does, with only the console and interface naming changed for a PC.
//! The guest's SSH port is forwarded to a port on 127.0.0.1 and nowhere else
//! (`-nic user,restrict=on`: the guest reaches no network).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::run_ok;

/// Tokens the qemu boot adds to the node's own command line, and why:
/// - `console=ttyS0,115200`: the PC's serial port instead of the Pi's (`console=` tokens of the
///   image are dropped: `serial0` and `tty1` do not exist here);
/// - `net.ifnames=0`: the first Ethernet interface is `eth0`, as on a Pi;
/// - `panic=-1`: a kernel panic reboots at once, which ends qemu (`-no-reboot`) instead of hanging.
pub const EXTRA_TOKENS: &[&str] = &["console=ttyS0,115200", "net.ifnames=0", "panic=-1"];

/// The kernel command line for a boot of an image whose `cmdline.txt` is `cmdline`.
pub fn kernel_cmdline(cmdline: &str) -> String {
    let mut tokens: Vec<&str> = cmdline
        .split_whitespace()
        .filter(|t| !t.starts_with("console="))
        .collect();
    tokens.extend_from_slice(EXTRA_TOKENS);
    tokens.join(" ")
}

/// Files the boot reads from the image's boot partition at `boot_offset`.
pub struct BootFiles {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
}

/// Reads the kernel, initramfs and `cmdline.txt` from the image's FAT partition with mtools
/// (read again before every boot: first-boot scripts rewrite `cmdline.txt`).
pub fn boot_files(
    disk: &Path,
    boot_offset: u64,
    kernel: &str,
    initrd: &str,
    dir: &Path,
) -> BootFiles {
    let spec = format!("{}@@{boot_offset}", disk.display());
    let k = dir.join("kernel");
    let i = dir.join("initrd");
    for (name, dest) in [(kernel, &k), (initrd, &i)] {
        let _ = std::fs::remove_file(dest);
        run_ok(
            "mcopy",
            &[
                "-n",
                "-i",
                &spec,
                &format!("::{name}"),
                dest.to_str().unwrap(),
            ],
        );
    }
    let cmdline = run_ok("mtype", &["-i", &spec, "::cmdline.txt"]);
    BootFiles {
        kernel: k,
        initrd: i,
        cmdline: cmdline.trim().to_owned(),
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A running qemu; killed when dropped.
pub struct Vm {
    child: Child,
    /// Serial console log.
    pub console: PathBuf,
}

impl Vm {
    /// Boots `disk` (raw, written in place) with `files`; the console goes to `console`.
    pub fn start(disk: &Path, files: &BootFiles, console: &Path, port: u16) -> Self {
        let append = kernel_cmdline(&files.cmdline);
        let child = Command::new("qemu-system-x86_64")
            .args([
                "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "1536",
            ])
            .args(["-display", "none", "-monitor", "none", "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-kernel")
            .arg(&files.kernel)
            .arg("-initrd")
            .arg(&files.initrd)
            .arg("-append")
            .arg(&append)
            .arg("-drive")
            .arg(format!("file={},format=raw,if=virtio", disk.display()))
            .args(["-device", "virtio-rng-pci"])
            .arg("-nic")
            .arg(format!(
                "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22"
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting qemu-system-x86_64 (ci/test.sh installs it)");
        Self {
            child,
            console: console.to_owned(),
        }
    }

    /// The exit status, once qemu has ended (the guest rebooted or powered off).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("waiting for qemu")
    }

    /// Waits up to `limit` for qemu to end.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        None
    }

    /// The last `n` lines of the serial console, for failure messages.
    pub fn console_tail(&self, n: usize) -> String {
        console_tail(&self.console, n)
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `n` lines of a console log.
pub fn console_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// How to reach a booted node: the hand-off directory (a copy of the build's output directory),
/// the node name, the forwarded port and the login key.
pub struct Ssh<'a> {
    pub dir: &'a Path,
    pub node: &'a str,
    pub port: u16,
    pub key: &'a Path,
}

impl Ssh<'_> {
    /// `ssh -F ssh_config NODE CMD`, run in the hand-off directory, with only the address and
    /// port overridden (qemu's forward): host key checking is the generated file's own.
    pub fn command(&self, extra: &[&str], remote: &str) -> Command {
        let mut c = Command::new("ssh");
        c.current_dir(self.dir)
            .args(["-F", "ssh_config"])
            .args(["-o", "HostName=127.0.0.1"])
            .arg("-o")
            .arg(format!("Port={}", self.port))
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=20"])
            .args(["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"])
            .args(["-o", "IdentitiesOnly=yes", "-i"])
            .arg(self.key)
            .args(extra)
            .arg(self.node)
            .arg(remote)
            .stdin(Stdio::null());
        // The client would send its own locale (SendEnv LANG LC_*) and mask the node's.
        for (k, _) in std::env::vars() {
            if k == "LANG" || k == "LANGUAGE" || k.starts_with("LC_") {
                c.env_remove(k);
            }
        }
        c
    }

    /// Runs `remote` on the node.
    pub fn run(&self, remote: &str) -> Output {
        self.command(&[], remote).output().expect("running ssh")
    }

    /// Runs `remote` on the node and returns its stdout; panics with both streams on failure.
    pub fn ok(&self, remote: &str) -> String {
        let out = self.run(remote);
        assert!(
            out.status.success(),
            "on {}: `{remote}` failed ({}):\n{}\n{}",
            self.node,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Ssh<'_> {
    /// Waits until the first boot has settled: systemd reached its final state and cloud-init
    /// (where installed) finished. SSH answers before that, and a boot stage may restart sshd,
    /// so a dropped connection is retried for a while.
    pub fn settle(&self) {
        let script = "systemctl is-system-running --wait >/dev/null 2>&1; \
                      if command -v cloud-init >/dev/null; then cloud-init status --wait >/dev/null 2>&1; fi; \
                      echo settled";
        for _ in 0..24 {
            let out = self.run(script);
            if String::from_utf8_lossy(&out.stdout).contains("settled") {
                return;
            }
            std::thread::sleep(Duration::from_secs(5));
        }
        panic!(
            "{}: the boot did not settle (no SSH session lasted)",
            self.node
        );
    }
}

/// What waiting for SSH ended with.
pub enum Reached {
    /// The node answered with the expected host key and accepted the key.
    Ready,
    /// qemu ended first (the guest rebooted: a first-boot script does that).
    Exited(ExitStatus),
}

/// Waits for the node to accept an SSH login (strict host key checking), up to `limit`.
/// A host key that does not match `known_hosts` fails at once: it never becomes right by waiting.
pub fn wait_for_ssh(vm: &mut Vm, ssh: &Ssh<'_>, limit: Duration) -> Reached {
    let start = Instant::now();
    loop {
        if let Some(status) = vm.exited() {
            return Reached::Exited(status);
        }
        let out = ssh.run("true");
        if out.status.success() {
            ssh.settle();
            return Reached::Ready;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("HOST IDENTIFICATION HAS CHANGED")
                && !err.contains("Host key verification failed"),
            "{}: the node's host key is not the one in known_hosts:\n{err}\nconsole:\n{}",
            ssh.node,
            vm.console_tail(60)
        );
        assert!(
            start.elapsed() < limit,
            "{}: no SSH login within {limit:?} (last error: {err})\nconsole:\n{}",
            ssh.node,
            vm.console_tail(80)
        );
        std::thread::sleep(Duration::from_secs(5));
    }
}
