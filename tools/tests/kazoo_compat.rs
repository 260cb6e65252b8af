//! kazoo, the Python ZooKeeper client, against `zabflow node` and against real Apache
//! ZooKeeper 3.8, with the same scripts.
//!
//! Each test runs one script group (`kazoo_compat/*.py`, after `prelude.py`) against both
//! servers at once. A script asserts what it observes and prints one line per check; the test
//! fails with the script's output when either server fails a check. Passing against real
//! ZooKeeper is what makes each expectation ZooKeeper's, not ours. Each server is started
//! once per test binary, and each group works under its own root path, so the groups run in
//! parallel. Nothing is skipped: kazoo is installed into a venv under `target/` and ZooKeeper
//! with `apt-get` when missing, and a failure to do either fails the test.

mod coord;

use std::sync::{Mutex, OnceLock};
use std::thread;

use coord::Node;
use zabflow_tests::kazoo::Kazoo;
use zabflow_tests::real_zookeeper;

const PRELUDE: &str = include_str!("kazoo_compat/prelude.py");

/// The shared `zabflow node` of this test binary, killed when the process exits.
fn zabflow_hosts() -> String {
    static NODE: Mutex<Option<(Node, tempfile::TempDir)>> = Mutex::new(None);
    static HOSTS: OnceLock<String> = OnceLock::new();
    extern "C" fn stop_node() {
        let taken = NODE.lock().map(|mut node| node.take());
        drop(taken);
    }
    HOSTS
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temp dir");
            // tickTime 200 ms allows session timeouts of 400..4000 ms; the scripts ask for
            // 4000, which real ZooKeeper's 2000 ms tick allows too (its minimum).
            let node = Node::start(dir.path(), "4lw.commands.whitelist=*");
            let hosts = format!("127.0.0.1:{}", node.port);
            *NODE.lock().unwrap() = Some((node, dir));
            // SAFETY: registering a plain `extern "C"` function with atexit has no preconditions.
            unsafe { libc::atexit(stop_node) };
            hosts
        })
        .clone()
}

fn real_zookeeper_hosts() -> String {
    real_zookeeper::shared_standalone()
        .unwrap_or_else(|error| panic!("real ZooKeeper is needed for this test: {error}"))
}

/// Runs script group `group` against zabflow and real ZooKeeper in parallel; panics with
/// every failing server's output.
fn run_group(group: &str, script: &str) {
    let kazoo = Kazoo::ensure().unwrap_or_else(|error| panic!("kazoo is needed: {error}"));
    let source = format!("{PRELUDE}\nROOT = \"/{group}\"\n{script}");
    let servers = [("zabflow", zabflow_hosts()), ("ZooKeeper 3.8", real_zookeeper_hosts())];
    let outcomes = thread::scope(|scope| {
        let runs = servers.iter().map(|(name, hosts)| {
            let (kazoo, source) = (&kazoo, &source);
            scope.spawn(move || (*name, kazoo.run_script(hosts, source)))
        });
        runs.collect::<Vec<_>>().into_iter().map(|run| run.join().unwrap()).collect::<Vec<_>>()
    });
    let failures = outcomes
        .iter()
        .filter_map(|(name, outcome)| outcome.as_ref().err().map(|error| (name, error)))
        .map(|(name, error)| format!("=== {group} against {name} failed:\n{error}"))
        .collect::<Vec<_>>();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for (name, outcome) in &outcomes {
        let output = outcome.as_ref().expect("checked above");
        assert!(output.ends_with("done\n"), "{group} against {name} stopped early:\n{output}");
    }
}

#[test]
fn crud_and_every_stat_field() {
    run_group("crud", include_str!("kazoo_compat/crud.py"));
}

#[test]
fn error_codes() {
    run_group("errors", include_str!("kazoo_compat/errors.py"));
}

#[test]
fn watches_one_shot_recipes_and_persistent() {
    run_group("watches", include_str!("kazoo_compat/watches.py"));
}

#[test]
fn ephemerals_and_session_expiry() {
    run_group("sessions", include_str!("kazoo_compat/sessions.py"));
}

#[test]
fn sequential_nodes() {
    run_group("sequential", include_str!("kazoo_compat/sequential.py"));
}

#[test]
fn transactions_commit_and_roll_back() {
    run_group("transactions", include_str!("kazoo_compat/transactions.py"));
}

#[test]
fn acls_digest_ip_and_world() {
    run_group("acls", include_str!("kazoo_compat/acls.py"));
}

#[test]
fn recipes() {
    run_group("recipes", include_str!("kazoo_compat/recipes.py"));
}

#[test]
fn tree_cache_server_version_and_watch_removal() {
    run_group("misc", include_str!("kazoo_compat/misc.py"));
}
