//! End-to-end runs of the `zabflow` binary: a tiny ring benchmark into a temporary directory,
//! `report show` and `report compare` on the results, and the error path; then the
//! `zabflow cli` shell against a `zabflow node`: every command in `-c` scripts with its
//! output and exit status, and watch events printed as they come in stdin mode.

mod coord;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coord::Node;

fn zabflow(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_zabflow")).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "zabflow {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Checks that every tag of an SVG document is closed in order.
fn assert_well_formed_svg(svg: &str) {
    assert!(svg.trim_start().starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    let mut open: Vec<&str> = Vec::new();
    for tag in svg.split('<').skip(1).map(|rest| rest.split('>').next().unwrap()) {
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        let name = tag.split_whitespace().next().unwrap_or_default();
        match name.strip_prefix('/') {
            Some(closed) => assert_eq!(open.pop(), Some(closed), "unbalanced </{closed}>"),
            None => open.push(name),
        }
    }
    assert!(open.is_empty(), "unclosed tags {open:?}");
}

#[test]
fn ring_reports_are_written_shown_and_compared() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    for out in [&first, &second] {
        let output = zabflow(&["bench", "ring", "--duration", "20ms", "--out", path(out)]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("rtrb-chunked/crossbeam"), "{stdout}");
        assert!(out.join("summary.json").is_file() && out.join("mpsc-64B.hgrm").is_file());
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(first.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["scenario"], "ring");
    assert_eq!(summary["series"].as_array().unwrap().len(), 8);
    assert!(summary["ratios"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "rtrb-chunked/crossbeam"));

    let shown = zabflow(&["report", "show", path(&first)]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("rtrb-single/16B"));

    let svg_path = dir.path().join("compare.svg");
    let compared =
        zabflow(&["report", "compare", path(&first), path(&second), "--out", path(&svg_path)]);
    let table = String::from_utf8_lossy(&compared.stdout);
    assert!(table.contains("B/A") && table.contains("crossbeam/64B"), "{table}");
    assert_well_formed_svg(&std::fs::read_to_string(&svg_path).unwrap());
}

#[test]
fn default_suite_writes_one_directory_per_scenario() {
    let dir = tempfile::tempdir().unwrap();
    zabflow(&["bench", "--quick", "--out", path(dir.path())]);
    assert!(dir.path().join("ring").join("summary.json").is_file());
}

#[test]
fn errors_exit_non_zero_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_zabflow"))
        .args(["report", "show", "/nonexistent/zabflow-report"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("zabflow: error:") && stderr.contains("summary.json"), "{stderr}");
    let bad = Command::new(env!("CARGO_BIN_EXE_zabflow"))
        .args(["bench", "ring", "--batch", "0", "--duration", "10ms"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("batch"));
}

/// A node for the shell tests, with TTL nodes enabled.
fn shell_node() -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), "extendedTypesEnabled=true");
    (dir, node)
}

fn server(node: &Node) -> String {
    format!("127.0.0.1:{}", node.port)
}

/// What one `zabflow cli -c` run printed, and whether it succeeded.
#[derive(Debug)]
struct Shell {
    stdout: String,
    stderr: String,
    success: bool,
}

fn shell(node: &Node, script: &str) -> Shell {
    let output = Command::new(env!("CARGO_BIN_EXE_zabflow"))
        .args(["cli", "--server", &server(node), "-c", script])
        .output()
        .unwrap();
    Shell {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        success: output.status.success(),
    }
}

/// Runs a script that must succeed silently on stderr; returns its stdout.
fn shell_ok(node: &Node, script: &str) -> String {
    let run = shell(node, script);
    assert!(run.success && run.stderr.is_empty(), "{script}: {run:?}");
    run.stdout
}

/// Runs a script whose commands print `errors` (in order) and fail it.
fn shell_failing(node: &Node, script: &str, errors: &[&str]) -> String {
    let run = shell(node, script);
    assert!(!run.success, "{script} succeeded: {run:?}");
    let mut lines: Vec<&str> = run.stderr.lines().collect();
    let summary = lines.pop().unwrap_or_default();
    assert_eq!(lines, errors, "{script}: {run:?}");
    let failed = format!("zabflow: error: cli: {} of ", errors.len());
    assert!(summary.starts_with(&failed) && summary.ends_with(" commands failed"), "{summary}");
    run.stdout
}

/// The value of `name = value` in stat output.
fn stat_field<'a>(stat: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name} = ");
    let line = stat.lines().find(|line| line.starts_with(&prefix));
    line.unwrap_or_else(|| panic!("no {name} in {stat}")).strip_prefix(&prefix).unwrap()
}

const STAT_NAMES: [&str; 11] = [
    "cZxid",
    "ctime",
    "mZxid",
    "mtime",
    "pZxid",
    "cversion",
    "dataVersion",
    "aclVersion",
    "ephemeralOwner",
    "dataLength",
    "numChildren",
];

fn assert_stat_lines(stat: &str) {
    let names: Vec<&str> = stat.lines().map(|line| line.split(" = ").next().unwrap()).collect();
    assert_eq!(names, STAT_NAMES, "{stat}");
    assert!(stat_field(stat, "cZxid").starts_with("0x"));
    let ctime = stat_field(stat, "ctime");
    assert!(ctime.len() == 28 && ctime[20..].starts_with("UTC "), "{ctime}");
}

#[test]
fn cli_reads_and_writes_znodes_in_zkcli_formats() {
    let (_dir, node) = shell_node();
    let created = shell_ok(
        &node,
        "create /app hello; create /app/b; create /app/a 'two words'\n get /app; ls /app; \
         get /app/a; get /app/b",
    );
    assert_eq!(
        created,
        "Created /app\nCreated /app/b\nCreated /app/a\nhello\n[a, b]\ntwo words\nnull\n"
    );

    let got = shell_ok(&node, "get -s /app");
    let stat = got.strip_prefix("hello\n").unwrap();
    assert_stat_lines(stat);
    assert_eq!(stat_field(stat, "dataLength"), "5");
    assert_eq!(stat_field(stat, "numChildren"), "2");
    assert_eq!(stat_field(stat, "ephemeralOwner"), "0x0");

    let set = shell_ok(&node, "set -s /app world");
    assert_stat_lines(&set);
    assert_eq!(stat_field(&set, "dataVersion"), "1");
    assert_eq!(shell_ok(&node, "set -v 1 /app again; set /app/a -1; get /app/a"), "-1\n");
    let listed = shell_ok(&node, "ls -s /app");
    assert_eq!(listed.lines().next(), Some("[a, b]"));
    assert_stat_lines(listed.strip_prefix("[a, b]\n").unwrap());
    assert_eq!(stat_field(&shell_ok(&node, "stat /app"), "dataVersion"), "2");
    assert_eq!(shell_ok(&node, "ls -R /app"), "/app\n/app/a\n/app/b\n");
    assert_eq!(shell_ok(&node, "ls /"), "[app, zookeeper]\n");

    shell_failing(
        &node,
        "set -v 7 /app x; stat /nope; get /nope; ls /nope; create /app; delete /app; \
         delete -v 3 /app/a",
        &[
            "version No is not valid : /app",
            "Node does not exist: /nope",
            "Node does not exist: /nope",
            "Node does not exist: /nope",
            "Node already exists: /app",
            "Node not empty: /app",
            "version No is not valid : /app/a",
        ],
    );
    assert_eq!(
        shell_ok(&node, "delete -v 1 /app/a; ls /app; deleteall /app; ls /"),
        "[b]\n[zookeeper]\n"
    );
    shell_failing(&node, "deleteall /app", &["Node does not exist: /app"]);
}

#[test]
fn cli_creates_every_kind_of_node_and_queries_the_session() {
    let (_dir, node) = shell_node();
    let created = shell_ok(
        &node,
        "create /q; create -s /q/item- a; create -s /q/item- b; create -e /q/eph; \
         create -e -s /q/e-; getEphemerals /q; getEphemerals; getAllChildrenNumber /q; \
         getAllChildrenNumber /; sync /q; stat /q/eph",
    );
    let mut lines = created.lines();
    let head: Vec<&str> = lines.by_ref().take(10).collect();
    assert_eq!(
        head,
        [
            "Created /q",
            "Created /q/item-0000000000",
            "Created /q/item-0000000001",
            "Created /q/eph",
            "Created /q/e-0000000003",
            "[/q/e-0000000003, /q/eph]",
            "[/q/e-0000000003, /q/eph]",
            "4",
            "8",
            "Sync is OK",
        ],
        "{created}"
    );
    let stat: String = lines.map(|line| format!("{line}\n")).collect();
    assert_stat_lines(&stat);
    assert_ne!(stat_field(&stat, "ephemeralOwner"), "0x0");
    // The ephemerals went with the session of the script that made them.
    assert_eq!(shell_ok(&node, "ls /q"), "[item-0000000000, item-0000000001]\n");

    let special = shell_ok(&node, "create -c /box; create -t 60000 /ttl x; create -s -t 60000 /t-");
    assert!(special.starts_with("Created /box\nCreated /ttl\nCreated /t-00000000"), "{special}");
    shell_failing(
        &node,
        "create -e /e2; create /e2/child; create /missing/x; create nope; create -t 0 /t; \
         create -c -e /c; create /q/item- -s x",
        &[
            "Ephemerals cannot have children: /e2/child",
            "Node does not exist: /missing/x",
            "Path must start with / character",
            "ttl must be positive and cannot be larger than: 1099511627775",
            "-c cannot be combined with -s or -e: containers are neither ephemeral nor sequential",
        ],
    );
    assert!(shell_ok(&node, "ls /q").contains("item-0000000004"));
}

#[test]
fn cli_manages_acls_and_auth() {
    let (_dir, node) = shell_node();
    let digest = zabflow_coord::acl::generate_digest("alice:secret");
    assert_eq!(
        shell_ok(&node, "create /open; getAcl /open"),
        "Created /open\n'world,'anyone\n: cdrwa\n"
    );
    let owned = shell_ok(
        &node,
        "addauth digest alice:secret; create /secure data auth::cdrwa; getAcl /secure; whoami",
    );
    let expected = format!("Created /secure\n'digest,'{digest}\n: cdrwa\nAuth scheme: User\n");
    assert!(owned.starts_with(&expected), "{owned}");
    // whoAmI names a digest identity by its user only, as ZooKeeper's getUserName does.
    assert!(owned.contains("digest: alice\n"), "{owned}");
    shell_failing(
        &node,
        "get /secure; set /secure x; getAcl /secure",
        &[
            "Insufficient permission : /secure",
            "Insufficient permission : /secure",
            "Insufficient permission : /secure",
        ],
    );
    assert_eq!(shell_ok(&node, "addauth digest alice:secret; get /secure"), "data\n");

    let set = shell_ok(&node, "setAcl -s -v 0 /open world:anyone:rw,ip:127.0.0.1:cdrwa");
    assert_stat_lines(&set);
    assert_eq!(stat_field(&set, "aclVersion"), "1");
    let acl = shell_ok(&node, "getAcl -s /open");
    assert!(acl.starts_with("'world,'anyone\n: rw\n'ip,'127.0.0.1\n: cdrwa\n"), "{acl}");
    assert_stat_lines(acl.splitn(5, '\n').nth(4).unwrap());

    shell_ok(
        &node,
        "create /tree; create /tree/a; create /tree/a/b; setAcl -R /tree world:anyone:r",
    );
    assert_eq!(shell_ok(&node, "getAcl /tree/a/b"), "'world,'anyone\n: r\n");
    shell_failing(
        &node,
        "setAcl -v 9 /open world:anyone:cdrwa; setAcl /open auth::cdrwa; \
         setAcl /open world:anyone; setAcl /open world:anyone:x",
        &[
            "version No is not valid : /open",
            "Acl is not valid : /open",
            "world:anyone does not have the form scheme:id:perm",
            "Unknown perm type: x",
        ],
    );
}

#[test]
fn cli_reports_bad_input_and_sets_its_exit_status() {
    let (_dir, node) = shell_node();
    shell_failing(
        &node,
        "frobnicate /a; ls -x /; get; delete -v",
        &[
            "Command not found: frobnicate (try help)",
            "Unrecognized option: -x",
            "Usage: get [-s] [-w] path",
            "Missing argument for option: v",
        ],
    );
    // A script that does not parse runs nothing.
    shell_failing(
        &node,
        "create /a; set /a 'open",
        &["unterminated quote ' in: create /a; set /a 'open"],
    );
    assert_eq!(shell_ok(&node, "ls /"), "[zookeeper]\n");
    let help = shell_ok(&node, "help");
    for line in ["\tls [-s] [-w] [-R] path", "\tcreate [-s] [-e] [-c] [-t ttl] path [data] [acl]"] {
        assert!(help.lines().any(|help_line| help_line == line), "{line} in {help}");
    }
    // `quit` ends the script: the failing command after it never runs.
    assert_eq!(shell_ok(&node, "ls /; quit; get /nope"), "[zookeeper]\n");
    let run = shell(&node, "close; ls /");
    assert!(!run.success && run.stderr.starts_with("Not connected\n"), "{run:?}");
    let run = shell(&node, "ls /; get /nope");
    assert_eq!(run.stdout, "[zookeeper]\n");
    assert!(run.stderr.ends_with("zabflow: error: cli: 1 of 2 commands failed\n"), "{run:?}");

    let refused = Command::new(env!("CARGO_BIN_EXE_zabflow"))
        .args(["cli", "--server", "127.0.0.1:1", "--timeout-ms", "500", "-c", "ls /"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.starts_with("zabflow: error: cli: cannot connect to 127.0.0.1:1"), "{stderr}");
}

#[test]
fn cli_script_prints_events_its_own_writes_trigger_after_their_output() {
    let (_dir, node) = shell_node();
    let event = |kind: &str| {
        format!("\nWATCHER::\n\nWatchedEvent state:SyncConnected type:{kind} path:/x\n")
    };
    for _ in 0..5 {
        let stdout = shell_ok(&node, "create /x old; get -w /x; set /x new; get /x; delete /x");
        assert_eq!(stdout, format!("Created /x\nold\n{}new\n", event("NodeDataChanged")));
    }
    // `stat -w` of a missing node fails but leaves an exists watch.
    let stdout = shell_failing(
        &node,
        "ls -w /; stat -w /x; create /x; delete /x",
        &["Node does not exist: /x"],
    );
    let expected = format!(
        "[zookeeper]\nCreated /x\n{}{}",
        event("NodeCreated"),
        event("NodeChildrenChanged").replace("path:/x", "path:/"),
    );
    assert_eq!(stdout, expected);
    let removed = shell(&node, "create /x; get -w /x; removewatches /x -d; removewatches /x -d");
    assert!(!removed.success, "{removed:?}");
    let error = "KeeperErrorCode = No such watcher for /x\n";
    assert!(removed.stderr.starts_with(error), "{removed:?}");
}

/// Collects a child's stdout as it comes, for waiting on lines.
struct Transcript(Arc<Mutex<String>>);

impl Transcript {
    fn follow(mut stdout: std::process::ChildStdout) -> Transcript {
        let text = Arc::new(Mutex::new(String::new()));
        let sink = text.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read @ 1..) = stdout.read(&mut buffer) {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..read]));
            }
        });
        Transcript(text)
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Waits until the transcript contains `needle` `count` times.
    fn wait_for(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.text().matches(needle).count() < count {
            assert!(Instant::now() < deadline, "no {count}x {needle:?} in:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn cli_stdin_mode_prints_watch_events_as_they_arrive() {
    let (_dir, node) = shell_node();
    shell_ok(&node, "create /w v0; create /r");
    let mut child = Command::new(env!("CARGO_BIN_EXE_zabflow"))
        .args(["cli", "--server", &server(&node)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let transcript = Transcript::follow(child.stdout.take().unwrap());
    stdin.write_all(b"get -w /w\nls -w /w; stat -w /absent\naddWatch /r\nsync /\n").unwrap();
    stdin.flush().unwrap();
    transcript.wait_for("Sync is OK\n", 1);
    let connected = "WatchedEvent state:SyncConnected type:None path:null\n";
    assert!(transcript.text().contains(connected), "{}", transcript.text());

    // Another session's writes fire this session's watches while it waits for input.
    shell_ok(&node, "set /w v1; create /w/kid; create /absent; create /r/a; create /r/a/b");
    let event = |kind: &str, path: &str| {
        format!("\nWATCHER::\n\nWatchedEvent state:SyncConnected type:{kind} path:{path}\n")
    };
    for (kind, path) in [
        ("NodeDataChanged", "/w"),
        ("NodeChildrenChanged", "/w"),
        ("NodeCreated", "/absent"),
        ("NodeCreated", "/r/a"),
        ("NodeCreated", "/r/a/b"),
    ] {
        transcript.wait_for(&event(kind, path), 1);
    }
    // Removed and one-shot watches stay silent.
    stdin.write_all(b"removewatches /r\nsync /\n").unwrap();
    stdin.flush().unwrap();
    transcript.wait_for("Sync is OK\n", 2);
    shell_ok(&node, "set /w v2; create /r/c");
    stdin.write_all(b"get /w\n").unwrap();
    stdin.flush().unwrap();
    transcript.wait_for("v2\n", 1);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(transcript.text().matches("WatchedEvent").count(), 6, "{}", transcript.text());
    // Not a terminal: no prompts.
    assert!(!transcript.text().contains("[zk:"), "{}", transcript.text());

    stdin.write_all(b"quit\nls /\n").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(!status.success(), "the failed stat counts: {stderr}");
    let expected = "Node does not exist: /absent\nzabflow: error: cli: 1 of 9 commands failed\n";
    assert_eq!(stderr, expected);
}
