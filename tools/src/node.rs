//! `zabflow node`: one coordination server in the foreground.
//!
//! Reads a ZooKeeper `zoo.cfg` (unknown settings are warned about on stderr), serves
//! clients until SIGTERM or SIGINT, then drains the pipeline and syncs the txn log before
//! exiting 0. Every significant event is one line on stderr.

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
    let (mut config, warnings) = ServerConfig::load(&args.config)?;
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
