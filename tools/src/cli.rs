//! `zabflow cli`: a shell for ZooKeeper-compatible servers, zabflow's and Apache
//! ZooKeeper's alike, with the commands, flags and output formats of ZooKeeper's `zkCli.sh`.
//!
//! **Modes.** With `-c "cmd; cmd"` it runs the commands (separated by `;` or newlines) and
//! exits; otherwise it reads commands from stdin, one or more a line, showing a prompt
//! `[zk: HOST:PORT(CONNECTED) N] ` when stdin is a terminal. Either way the exit status is
//! 1 when any command failed (its message went to stderr), so scripts can rely on it; `quit`
//! stops early. Unlike `zkCli.sh`, `create` prints `Created /path` on stdout, where scripts
//! can read the sequential name.
//!
//! **Watch events** are printed as they arrive, from [`Client::events`]. A console mutex
//! keeps each command's output and each event whole, and events leave the queue only under
//! it: a command holds it while it runs and prints, and prints the events queued before and
//! after, so an event a command itself triggered follows that command's output; between
//! commands a second thread prints them within [`EVENT_POLL`]. Session
//! state changes (`type:None`) are printed in stdin mode only, to keep `-c` output clean.
//!
//! Module map: [`parser`] turns text into commands, [`command`] runs them on a [`Client`],
//! [`output`] holds the text formats.

mod command;
mod output;
mod parser;

use std::io::{BufRead, IsTerminal as _, Read as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use clap::Args;
use zabflow_net::client::{Client, ClientConfig};
use zabflow_net::jute::KeeperState;

use crate::error::ToolError;
use crate::print_stdout;
use parser::Command;

/// Longest input line read from stdin, in bytes; longer lines are refused, not buffered.
const LINE_BYTES_MAX: usize = 1 << 20;

/// How often the event thread looks for events while no command runs: the most an event
/// waits to be printed.
const EVENT_POLL: Duration = Duration::from_millis(10);

/// Arguments of `zabflow cli`.
#[derive(Debug, Args)]
pub struct CliArgs {
    /// The servers, as a ZooKeeper connect string (no chroot).
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT...]", default_value = "localhost:2181")]
    pub server: String,
    /// The session timeout asked of the server, and how long connecting may take.
    #[arg(long, value_name = "N", default_value_t = 30_000)]
    pub timeout_ms: u32,
    /// Run these commands (separated by `;` or newlines) instead of reading stdin.
    #[arg(short = 'c', long = "command", value_name = "CMDS")]
    pub command: Option<String>,
}

/// Connects, runs the script or the stdin loop, closes the session.
///
/// # Errors
/// [`ToolError::Cli`] when no server accepts a session, when stdin cannot be read, or when
/// any command failed.
pub fn run(args: CliArgs) -> Result<(), ToolError> {
    let mut config = ClientConfig::new(&args.server)
        .map_err(|error| ToolError::Cli(format!("bad --server {}: {error}", args.server)))?
        .with_session_timeout(Duration::from_millis(u64::from(args.timeout_ms)));
    config.connect_timeout_ms = u64::from(args.timeout_ms);
    let stdin_mode = args.command.is_none();
    let terminal = stdin_mode && std::io::stdin().is_terminal();
    if terminal {
        print_stdout(&format!("Connecting to {}\n", args.server))?;
    }
    let client = Client::connect(config)
        .map_err(|error| ToolError::Cli(format!("cannot connect to {}: {error}", args.server)))?;
    // The I/O thread reports the session connected first thing: waiting for that makes the
    // first prompt say CONNECTED, and stdin mode prints the event before it, as zkCli does.
    let connect_wait = Duration::from_millis(u64::from(args.timeout_ms));
    if let Ok(event) = client.events().recv_timeout(connect_wait) {
        print_event(&event, stdin_mode);
    }
    let console = Mutex::new(());
    let stop = AtomicBool::new(false);
    let mut shell = Shell {
        client: &client,
        server: &args.server,
        console: &console,
        stdin_mode,
        run: 0,
        failed: 0,
    };
    let result = std::thread::scope(|scope| {
        scope.spawn(|| print_events(&client, &console, &stop, stdin_mode));
        let result = match &args.command {
            Some(script) => shell.run_text(script).map(drop),
            None => shell.run_stdin(terminal),
        };
        // The session may already be closed (`close`); closing again is a no-op.
        let _ = client.close();
        stop.store(true, Ordering::Release);
        result
    });
    result?;
    match shell.failed {
        0 => Ok(()),
        failed => Err(ToolError::Cli(format!("{failed} of {} commands failed", shell.run))),
    }
}

/// Whether the shell goes on after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

/// One line read from stdin.
enum Line {
    Text(String),
    TooLong,
    End,
}

/// The shell's state: the session and the count of commands run and failed.
struct Shell<'a> {
    client: &'a Client,
    server: &'a str,
    console: &'a Mutex<()>,
    stdin_mode: bool,
    run: u64,
    failed: u64,
}

impl Shell<'_> {
    /// Reads commands from stdin until end of input or `quit`.
    fn run_stdin(&mut self, terminal: bool) -> Result<(), ToolError> {
        let mut input = std::io::stdin().lock();
        loop {
            if terminal {
                let _console = lock(self.console);
                print_stdout(&self.prompt())?;
            }
            let line = read_line(&mut input)
                .map_err(|error| ToolError::Cli(format!("cannot read stdin: {error}")))?;
            let flow = match line {
                Line::End => return Ok(()),
                Line::TooLong => {
                    let _console = lock(self.console);
                    self.fail(&format!("line longer than {LINE_BYTES_MAX} bytes"));
                    Flow::Continue
                }
                Line::Text(text) => self.run_text(&text)?,
            };
            if flow == Flow::Quit {
                return Ok(());
            }
        }
    }

    /// `[zk: HOST:PORT(CONNECTED) N] `, as ZooKeeper's shell shows it.
    fn prompt(&self) -> String {
        let state = match self.client.state() {
            KeeperState::SyncConnected => "CONNECTED",
            KeeperState::ConnectedReadOnly => "CONNECTEDREADONLY",
            KeeperState::Disconnected => "CONNECTING",
            KeeperState::AuthFailed => "AUTH_FAILED",
            KeeperState::Expired | KeeperState::Closed => "CLOSED",
            _ => "NOT_CONNECTED",
        };
        format!("[zk: {}({state}) {}] ", self.server, self.run)
    }

    /// Runs the commands of `text` in order, stopping at `quit`.
    fn run_text(&mut self, text: &str) -> Result<Flow, ToolError> {
        let commands = match parser::split_script(text) {
            Ok(commands) => commands,
            Err(message) => {
                let _console = lock(self.console);
                self.run += 1;
                self.fail(&message);
                return Ok(Flow::Continue);
            }
        };
        for words in commands {
            if self.run_words(&words)? == Flow::Quit {
                return Ok(Flow::Quit);
            }
        }
        Ok(Flow::Continue)
    }

    /// Parses and runs one command, printing its output and then the events queued.
    fn run_words(&mut self, words: &[String]) -> Result<Flow, ToolError> {
        let _console = lock(self.console);
        self.print_queued_events();
        self.run += 1;
        let session_ended =
            matches!(self.client.state(), KeeperState::Closed | KeeperState::Expired);
        match parser::parse_command(words) {
            Err(message) => self.fail(&message),
            Ok(Command::Quit) => return Ok(Flow::Quit),
            Ok(Command::Close) => {
                if let Err(error) = self.client.close() {
                    self.fail(&output::error_message(&error, ""));
                }
            }
            Ok(Command::Help) => print_stdout(&command::help())?,
            Ok(_) if session_ended => self.fail("Not connected"),
            Ok(parsed) => match command::execute(self.client, &parsed) {
                Ok(text) => print_stdout(&text)?,
                Err(message) => self.fail(&message),
            },
        }
        self.print_queued_events();
        Ok(Flow::Continue)
    }

    /// Prints the events already queued; the caller holds the console.
    fn print_queued_events(&self) {
        while let Ok(event) = self.client.events().try_recv() {
            print_event(&event, self.stdin_mode);
        }
    }

    fn fail(&mut self, message: &str) {
        self.failed += 1;
        eprintln!("{message}");
    }
}

/// Reads one line of at most [`LINE_BYTES_MAX`] bytes; a longer one is skipped.
fn read_line(input: &mut impl BufRead) -> std::io::Result<Line> {
    let bound = u64::try_from(LINE_BYTES_MAX).unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    if input.by_ref().take(bound + 1).read_until(b'\n', &mut bytes)? == 0 {
        return Ok(Line::End);
    }
    if bytes.len() <= LINE_BYTES_MAX || bytes.ends_with(b"\n") {
        return Ok(Line::Text(String::from_utf8_lossy(&bytes).into_owned()));
    }
    loop {
        bytes.clear();
        let read = input.by_ref().take(bound).read_until(b'\n', &mut bytes)?;
        if read == 0 || bytes.ends_with(b"\n") {
            return Ok(Line::TooLong);
        }
    }
}

/// The event thread: prints events that arrive while no command runs, until `stop` is set
/// and the queue is empty.
///
/// It polls rather than blocking in `recv`, because an event must be taken off the queue
/// only by whoever holds the console: an event a command triggers is queued before the
/// command's reply, so the command, still holding the console, prints it right after its
/// own output. A thread that took it to print later could lose the race for the console to
/// the next command.
fn print_events(client: &Client, console: &Mutex<()>, stop: &AtomicBool, state_changes: bool) {
    loop {
        if !client.events().is_empty() {
            let _console = lock(console);
            while let Ok(event) = client.events().try_recv() {
                print_event(&event, state_changes);
            }
        } else if stop.load(Ordering::Acquire) {
            return;
        } else {
            std::thread::sleep(EVENT_POLL);
        }
    }
}

fn print_event(event: &zabflow_net::client::WatchedEvent, state_changes: bool) {
    if state_changes || !output::is_state_change(event) {
        // Events are best effort: a closed stdout is noticed by the next command.
        let _ = print_stdout(&output::format_event(event));
    }
}

fn lock(console: &Mutex<()>) -> MutexGuard<'_, ()> {
    console.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_skipped_whole() {
        let mut text = vec![b'x'; LINE_BYTES_MAX * 2 + 5];
        text.extend_from_slice(b"\nls /\n");
        let mut input = std::io::Cursor::new(text);
        assert!(matches!(read_line(&mut input).unwrap(), Line::TooLong));
        assert!(matches!(read_line(&mut input).unwrap(), Line::Text(line) if line == "ls /\n"));
        assert!(matches!(read_line(&mut input).unwrap(), Line::End));
    }
}
