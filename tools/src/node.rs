//! `zabflow node`: one coordination server in the foreground.
//!
//! Reads a ZooKeeper `zoo.cfg` (unknown settings are warned about on stderr), serves
//! clients until SIGTERM or SIGINT, then drains the pipeline and syncs the txn log before
//! exiting 0. Every significant event is one line on stderr.
//!
//! ZooKeeper's JVM system properties are taken the way a ZooKeeper user gives them: `-D`
//! words of `SERVER_JVMFLAGS`, then of `JVMFLAGS` (the variables `zkServer.sh` reads), then
//! `-Dname=value` arguments, a later one winning; zoo.cfg lines win over all of them.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;
use zabflow_coord::config::ServerConfig;
use zabflow_coord::server::{log_event, Server};

use crate::error::ToolError;

/// Arguments of `zabflow node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The server's zoo.cfg.
    #[arg(long, value_name = "ZOO_CFG")]
    pub config: PathBuf,
    /// The server id (overrides dataDir/myid).
    #[arg(long)]
    pub id: Option<u64>,
    /// A ZooKeeper JVM system property, e.g. `-Dreadonlymode.enabled=true` (repeatable;
    /// unknown ones are warned about and ignored).
    #[arg(short = 'D', value_name = "NAME=VALUE")]
    pub system_properties: Vec<String>,
}

/// The environment variables scanned for `-D` words, in the order they apply.
const JVM_FLAGS_VARIABLES: [&str; 2] = ["SERVER_JVMFLAGS", "JVMFLAGS"];

/// The system properties of `JVM_FLAGS_VARIABLES` (read through `variable`) and then of the
/// `-D` arguments, as (name, value) in the order they apply.
fn system_properties(
    arguments: &[String],
    variable: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let mut texts: Vec<String> = Vec::new();
    for name in JVM_FLAGS_VARIABLES {
        let flags = variable(name).unwrap_or_default();
        texts.extend(
            flags.split_whitespace().filter_map(|word| word.strip_prefix("-D").map(str::to_owned)),
        );
    }
    texts.extend(arguments.iter().cloned());
    texts.iter().map(|text| zabflow_coord::config::split_system_property(text)).collect()
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signal: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

fn install_signal_handlers() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: `on_signal` only stores to an atomic, which is async-signal-safe, and the
        // handler address stays valid for the life of the process.
        unsafe {
            libc::signal(signal, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// Runs the server until a signal asks it to stop.
///
/// # Errors
/// A bad config, a failed recovery or bind, or a txn log failure while serving.
pub fn run(args: NodeArgs) -> Result<(), ToolError> {
    let properties = system_properties(&args.system_properties, |name| std::env::var(name).ok());
    let (mut config, warnings) = ServerConfig::load_with_properties(&args.config, &properties)?;
    for warning in warnings {
        log_event(&warning);
    }
    if args.id.is_some() {
        config.my_id = args.id;
    }
    install_signal_handlers();
    log_event(&format!(
        "starting: config {}, dataDir {}, id {}",
        args.config.display(),
        config.data_dir.display(),
        config.my_id.unwrap_or(0)
    ));
    let mut server = Server::open(config)?;
    server.run(&STOP)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jvm_flags_then_arguments() {
        let variable = |name: &str| match name {
            "SERVER_JVMFLAGS" => Some("-Xmx1g -Dreadonlymode.enabled=false -Da=1".to_owned()),
            "JVMFLAGS" => Some(" -Dreadonlymode.enabled=true  -verbose".to_owned()),
            _ => None,
        };
        let arguments = vec!["b=x=y".to_owned()];
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
        };
        assert_eq!(
            system_properties(&arguments, variable),
            pairs(&[
                ("readonlymode.enabled", "false"),
                ("a", "1"),
                ("readonlymode.enabled", "true"),
                ("b", "x=y"),
            ])
        );
    }
}
