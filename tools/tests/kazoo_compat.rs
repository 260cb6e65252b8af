//! kazoo, the Python ZooKeeper client, against `zabflow node` (standalone and a 3-node
//! ensemble) and against real Apache ZooKeeper 3.8, with the same scripts.
//!
//! Each test runs one script group (`kazoo_compat/*.py`, after `prelude.py`) against all
//! three at once. A script asserts what it observes and prints one line per check; the test
//! fails with the script's output when either server fails a check. Passing against real
//! ZooKeeper is what makes each expectation ZooKeeper's, not ours. Each server is started
//! once per test binary, and each group works under its own root path, so the groups run in
//! parallel. Nothing is skipped: kazoo is installed into a venv under `target/` and ZooKeeper
//! with `apt-get` when missing, and a failure to do either fails the test.

mod coord;

use std::sync::{Mutex, OnceLock};
use std::thread;

use coord::{Ensemble, Node};
use zabflow_tests::kazoo::Kazoo;
use zabflow_tests::real_zookeeper;
use zabflow_tests::tls_material::{self, TlsMaterial};

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

/// The shared 3-node `zabflow` ensemble of this test binary, killed when the process exits.
fn zabflow_ensemble_hosts() -> String {
    static ENSEMBLE: Mutex<Option<(Ensemble, tempfile::TempDir)>> = Mutex::new(None);
    static HOSTS: OnceLock<String> = OnceLock::new();
    extern "C" fn stop_ensemble() {
        let taken = ENSEMBLE.lock().map(|mut ensemble| ensemble.take());
        drop(taken);
    }
    HOSTS
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temp dir");
            let ensemble = Ensemble::start(dir.path(), 3, "4lw.commands.whitelist=*");
            let hosts = ensemble.hosts();
            *ENSEMBLE.lock().unwrap() = Some((ensemble, dir));
            // SAFETY: registering a plain `extern "C"` function with atexit has no preconditions.
            unsafe { libc::atexit(stop_ensemble) };
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
    // Every client of a script talks to the same member of the ensemble: clients of
    // different servers may see different prefixes of the history (ZooKeeper's sequential
    // consistency), and the scripts compare what one client writes with what another reads.
    // Which member depends on the group, so some scripts run on the leader and some on
    // followers (their writes are forwarded).
    let ensemble = zabflow_ensemble_hosts();
    let members: Vec<&str> = ensemble.split(',').collect();
    let member = members[group.bytes().map(usize::from).sum::<usize>() % members.len()];
    let servers = [
        ("zabflow", zabflow_hosts()),
        ("zabflow 3-node ensemble", member.to_owned()),
        ("ZooKeeper 3.8", real_zookeeper_hosts()),
    ];
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

/// The failover script against a fresh ensemble: `hosts` and client port → server pid.
fn run_failover(name: &str, hosts: &str, pids: &[(u16, u32)]) -> String {
    let kazoo = Kazoo::ensure().unwrap_or_else(|error| panic!("kazoo is needed: {error}"));
    let pids: Vec<String> = pids.iter().map(|(port, pid)| format!("{port}: {pid}")).collect();
    let source = format!(
        "{PRELUDE}\nROOT = \"/failover\"\nPIDS = {{{}}}\n{}",
        pids.join(", "),
        include_str!("kazoo_compat/failover.py")
    );
    let output = kazoo
        .run_script(hosts, &source)
        .unwrap_or_else(|error| panic!("failover against {name} failed:\n{error}"));
    assert!(output.ends_with("done\n"), "failover against {name} stopped early:\n{output}");
    output
}

#[test]
fn a_client_moves_to_another_server_and_keeps_its_session() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let ensemble = Ensemble::start(dir.path(), 3, "4lw.commands.whitelist=*");
    let pids: Vec<(u16, u32)> =
        ensemble.nodes.iter().map(|node| (node.port, node.child.id())).collect();
    run_failover("zabflow 3-node ensemble", &ensemble.hosts(), &pids);
    drop(ensemble);
    let zookeeper = real_zookeeper::RealZooKeeper::start_ensemble(3)
        .unwrap_or_else(|error| panic!("a real ZooKeeper ensemble is needed: {error}"));
    let pids: Vec<(u16, u32)> = (0..3)
        .map(|i| (zookeeper.client_address(i).port(), zookeeper.pid(i).expect("running")))
        .collect();
    run_failover("ZooKeeper 3.8 3-node ensemble", &zookeeper.connect_string(), &pids);
}

/// The reconfig script against `hosts` (`mode` is "ensemble" or "standalone").
fn run_reconfig(name: &str, hosts: &str, mode: &str) {
    let kazoo = Kazoo::ensure().unwrap_or_else(|error| panic!("kazoo is needed: {error}"));
    let source = format!(
        "{PRELUDE}\nROOT = \"/reconfig\"\nRECONFIG_MODE = \"{mode}\"\n{}",
        include_str!("kazoo_compat/reconfig.py")
    );
    let output = kazoo
        .run_script(hosts, &source)
        .unwrap_or_else(|error| panic!("reconfig against {name} failed:\n{error}"));
    assert!(output.ends_with("done\n"), "reconfig against {name} stopped early:\n{output}");
}

#[test]
fn reconfig_is_refused_with_zookeepers_error_codes() {
    const RECONFIG: &str = "4lw.commands.whitelist=*\nreconfigEnabled=true";
    let dir = tempfile::tempdir().expect("a temp dir");
    let extra = format!("{RECONFIG}\nstandaloneEnabled=false");
    let ensemble = Ensemble::start(dir.path(), 3, &extra);
    run_reconfig("zabflow 3-node ensemble", &ensemble.hosts(), "ensemble");
    drop(ensemble);
    let node = Node::start(dir.path(), RECONFIG);
    run_reconfig("zabflow", &format!("127.0.0.1:{}", node.port), "standalone");
    drop(node);
    let enabled = || real_zookeeper::ZooKeeperOptions {
        extra_config: vec![("reconfigEnabled".into(), "true".into())],
        ..real_zookeeper::ZooKeeperOptions::default()
    };
    let zookeeper = real_zookeeper::RealZooKeeper::start_with(real_zookeeper::ZooKeeperOptions {
        nodes: 3,
        ..enabled()
    })
    .unwrap_or_else(|error| panic!("a real ZooKeeper ensemble is needed: {error}"));
    run_reconfig("ZooKeeper 3.8 3-node ensemble", &zookeeper.connect_string(), "ensemble");
    drop(zookeeper);
    let zookeeper = real_zookeeper::RealZooKeeper::start_with(enabled())
        .unwrap_or_else(|error| panic!("a real ZooKeeper is needed: {error}"));
    run_reconfig("ZooKeeper 3.8", &zookeeper.connect_string(), "standalone");
}

/// The read-only script against `hosts`: `stop` and `start` act on every member but the
/// first when the script asks.
fn run_read_only(name: &str, hosts: &str, stop: &mut dyn FnMut(), start: &mut dyn FnMut()) {
    use std::io::{BufRead as _, Write as _};
    let kazoo = Kazoo::ensure().unwrap_or_else(|error| panic!("kazoo is needed: {error}"));
    let source =
        format!("{PRELUDE}\nROOT = \"/read-only\"\n{}", include_str!("kazoo_compat/read_only.py"));
    let stderr = tempfile::tempfile().expect("a temp file");
    let mut child = kazoo
        .spawn_script(hosts, &source, stderr.try_clone().expect("a second handle"))
        .unwrap_or_else(|error| panic!("read-only against {name}: {error}"));
    let mut stdin = child.stdin.take().expect("piped");
    let stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
    let mut output = String::new();
    for line in stdout.lines() {
        let line = line.expect("the script's output");
        output.push_str(&line);
        output.push('\n');
        let act: Option<&mut dyn FnMut()> = match line.as_str() {
            "STOP OTHERS" => Some(&mut *stop),
            "START OTHERS" => Some(&mut *start),
            _ => None,
        };
        if let Some(act) = act {
            act();
            writeln!(stdin, "ok").expect("answer the script");
        }
    }
    let status = child.wait().expect("the script exits");
    let mut errors = String::new();
    let mut stderr = stderr;
    use std::io::{Read as _, Seek as _};
    stderr.rewind().expect("rewind");
    stderr.read_to_string(&mut errors).expect("the script's stderr");
    assert!(
        status.success() && output.ends_with("done\n"),
        "read-only against {name} failed ({status}):\n{output}\n{errors}"
    );
}

/// `readonlymode.enabled` given as ZooKeeper takes it, a JVM system property, with kazoo's
/// harness's local-session settings (ZooKeeper 3.8 creates read-only sessions only as
/// local sessions).
#[test]
fn read_only_mode_serves_reads_and_refuses_writes() {
    const LOCAL_SESSIONS: &str =
        "4lw.commands.whitelist=*\nlocalSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true";
    let dir = tempfile::tempdir().expect("a temp dir");
    let args = vec!["-Dreadonlymode.enabled=true".to_owned()];
    let ensemble =
        std::cell::RefCell::new(Ensemble::start_with(dir.path(), 3, LOCAL_SESSIONS, &args));
    let hosts = ensemble.borrow().hosts();
    run_read_only(
        "zabflow 3-node ensemble",
        &hosts,
        &mut || ensemble.borrow_mut().nodes[1..].iter_mut().for_each(Node::stop),
        &mut || {
            ensemble.borrow_mut().nodes[1..].iter_mut().for_each(Node::restart);
            ensemble.borrow().wait_serving(std::time::Duration::from_secs(30));
        },
    );
    drop(ensemble);
    let options = real_zookeeper::ZooKeeperOptions::read_only_ensemble();
    let zookeeper = std::cell::RefCell::new(
        real_zookeeper::RealZooKeeper::start_with(options)
            .unwrap_or_else(|error| panic!("a real ZooKeeper ensemble is needed: {error}")),
    );
    let hosts = zookeeper.borrow().connect_string();
    run_read_only(
        "ZooKeeper 3.8 3-node ensemble",
        &hosts,
        &mut || (1..3).for_each(|index| zookeeper.borrow_mut().stop(index)),
        &mut || {
            for index in 1..3 {
                zookeeper.borrow_mut().start(index).expect("the node serves again");
            }
        },
    );
}

/// The TLS script against a server's secure port `secure`, its plain port `plain`.
fn run_tls(name: &str, secure: &str, plain: &str, material: &TlsMaterial) -> Result<(), String> {
    let kazoo = Kazoo::ensure().unwrap_or_else(|error| panic!("kazoo is needed: {error}"));
    let source = format!(
        "{PRELUDE}\nROOT = \"/tls\"\nPLAIN_HOSTS = \"{plain}\"\nTLS_DIR = \"{}\"\n{}",
        material.path("").display(),
        include_str!("kazoo_compat/tls.py")
    );
    let output = kazoo
        .run_script(secure, &source)
        .map_err(|error| format!("=== tls against {name} failed:\n{error}"))?;
    if !output.ends_with("done\n") {
        return Err(format!("=== tls against {name} stopped early:\n{output}"));
    }
    Ok(())
}

#[test]
fn tls_client_port_serves_kazoos_ssl_client_and_refuses_bad_handshakes() {
    let material = TlsMaterial::generate()
        .unwrap_or_else(|error| panic!("TLS test material is needed: {error}"));
    let zabflow = || {
        let dir = tempfile::tempdir().expect("a temp dir");
        let secure_port = zabflow_tests::ports::free_loopback_ports(1).expect("a port")[0];
        let node = Node::start(dir.path(), &material.zoo_cfg(secure_port));
        let plain = format!("127.0.0.1:{}", node.port);
        let outcome = run_tls("zabflow", &format!("127.0.0.1:{secure_port}"), &plain, &material);
        outcome.map_err(|error| format!("{error}\nnode log:\n{}", node.log()))
    };
    let zookeeper = || {
        let password = tls_material::STORE_PASSWORD.to_owned();
        let stores = [
            ("ssl.keyStore.location", material.path("keystore.jks").display().to_string()),
            ("ssl.keyStore.password", password.clone()),
            ("ssl.trustStore.location", material.path("truststore.jks").display().to_string()),
            ("ssl.trustStore.password", password),
        ];
        let options = real_zookeeper::ZooKeeperOptions {
            secure: true,
            heap_mib: 256,
            extra_config: stores.map(|(key, value)| (key.to_owned(), value)).to_vec(),
            ..real_zookeeper::ZooKeeperOptions::default()
        };
        let zookeeper = real_zookeeper::RealZooKeeper::start_with(options)
            .unwrap_or_else(|error| panic!("real ZooKeeper is needed: {error}"));
        let secure = zookeeper.secure_client_address(0).expect("asked for TLS").to_string();
        run_tls("ZooKeeper 3.8", &secure, &zookeeper.connect_string(), &material)
    };
    let outcomes = thread::scope(|scope| {
        let runs = [scope.spawn(zabflow), scope.spawn(zookeeper)];
        runs.map(|run| run.join().unwrap())
    });
    let failures: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{}",
        failures.iter().map(|f| f.as_str()).collect::<Vec<_>>().join("\n")
    );
}
