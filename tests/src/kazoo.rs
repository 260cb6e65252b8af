//! `Kazoo`: the Python ZooKeeper client kazoo, in a virtualenv under the workspace's `target/`,
//! for compatibility tests that drive a server with a client we did not write.
//!
//! The venv is created once (`python3 -m venv`, then `pip install kazoo`) and reused by every
//! later run; a `flock` on a lock file next to it keeps concurrent test processes from
//! building it twice. A script runs with the connect string in the environment variable
//! [`HOSTS_VARIABLE`]; its stdout is returned, and a failing script is an error that quotes
//! its stderr. Nothing is skipped: no `python3`, no venv module or no network for pip is an
//! error that says what is missing.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::real_zookeeper::{HarnessError, HarnessResult};

/// The environment variable a script reads its connect string from.
pub const HOSTS_VARIABLE: &str = "ZK_HOSTS";
/// The kazoo release the venv installs.
pub const KAZOO_REQUIREMENT: &str = "kazoo==2.11.0";

/// A ready kazoo venv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kazoo {
    python: PathBuf,
}

/// The workspace's `target/` directory (or `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target")
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run(command: &mut Command, what: &str) -> HarnessResult<Output> {
    let output = command.output().map_err(|error| HarnessError(format!("{what}: {error}")))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(HarnessError(format!("{what} failed: {}", describe(&output))))
    }
}

impl Kazoo {
    /// The venv, created and filled on first use.
    ///
    /// # Errors
    /// When `python3 -m venv` or `pip install kazoo` fails; the message says which and why.
    pub fn ensure() -> HarnessResult<Kazoo> {
        static KAZOO: OnceLock<HarnessResult<Kazoo>> = OnceLock::new();
        KAZOO.get_or_init(Self::build).clone()
    }

    fn build() -> HarnessResult<Kazoo> {
        let venv = target_dir().join("kazoo-venv");
        let python = venv.join("bin").join("python");
        fs::create_dir_all(target_dir())
            .map_err(|error| HarnessError(format!("cannot create target/: {error}")))?;
        let lock = fs::File::create(target_dir().join("kazoo-venv.lock"))
            .map_err(|error| HarnessError(format!("cannot create the venv lock: {error}")))?;
        // SAFETY: flock on a descriptor we own; it is released when `lock` is dropped.
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        let kazoo = Kazoo { python: python.clone() };
        if kazoo.has_kazoo() {
            return Ok(kazoo);
        }
        let hint = "needs python3 with the venv module (`apt-get install -y python3-venv`)";
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv), &format!("venv ({hint})"))?;
        let mut pip = Command::new(&python);
        pip.args(["-m", "pip", "install", "-q", "--disable-pip-version-check", KAZOO_REQUIREMENT]);
        run(&mut pip, "pip install kazoo (needs access to PyPI)")?;
        if kazoo.has_kazoo() {
            Ok(kazoo)
        } else {
            Err(HarnessError("kazoo installed but cannot be imported".to_owned()))
        }
    }

    fn has_kazoo(&self) -> bool {
        let mut command = Command::new(&self.python);
        command.args(["-c", "import kazoo"]);
        self.python.exists() && command.output().is_ok_and(|output| output.status.success())
    }

    /// The venv's Python interpreter.
    #[must_use]
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// Runs `script` with `ZK_HOSTS=connect_string` and returns its stdout.
    ///
    /// # Errors
    /// When the script cannot start or exits non-zero; the message quotes its output.
    pub fn run_script(&self, connect_string: &str, script: &str) -> HarnessResult<String> {
        let mut command = Command::new(&self.python);
        command.arg("-c").arg(script).env(HOSTS_VARIABLE, connect_string);
        let output = run(&mut command, "kazoo script")?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Starts `script` with `ZK_HOSTS=connect_string`, its stdin and stdout piped (for a
    /// script that asks the test to act, e.g. to stop servers, and waits for the answer) and
    /// its stderr going to `stderr`.
    ///
    /// # Errors
    /// When the interpreter cannot start.
    pub fn spawn_script(
        &self,
        connect_string: &str,
        script: &str,
        stderr: std::fs::File,
    ) -> HarnessResult<std::process::Child> {
        Command::new(&self.python)
            .arg("-c")
            .arg(script)
            .env(HOSTS_VARIABLE, connect_string)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|error| HarnessError(format!("kazoo script: {error}")))
    }
}
