//! ZooKeeper's own shell, `org.apache.zookeeper.ZooKeeperMain` from the Debian package's jars,
//! against `zabflow node`.
//!
//! The shell session test feeds one command script to the shell on stdin, once against
//! zabflow and once against real ZooKeeper 3.8, asserts the lines that matter on zabflow's
//! transcript, and requires both transcripts to be equal once zxids, session ids, times and
//! the server address are masked: the shell cannot tell the two servers apart. The shell runs
//! with `slf4j-nop` instead of the log4j binding, so its output holds only what it prints.
//! ZooKeeper (and a JRE) are installed with `apt-get` when missing; failing to is a failure.

mod coord;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::thread;

use coord::Node;
use zabflow_tests::real_zookeeper;

/// Runs the shell against `server` (`host:port`) with `arguments` after `-server`, feeding
/// `input` on stdin; returns stdout and stderr together.
fn zookeeper_main(server: &str, arguments: &[&str], input: &str) -> String {
    let installation = real_zookeeper::ensure_installed()
        .unwrap_or_else(|error| panic!("ZooKeeper's jars are needed: {error}"));
    let jar_dir = &installation.jar_dir;
    let classpath = format!(
        "{}:{}",
        jar_dir.join("zookeeper.jar").display(),
        jar_dir.join("slf4j-nop.jar").display()
    );
    let mut child = Command::new("java")
        .args(["-cp", &classpath, "org.apache.zookeeper.ZooKeeperMain", "-server", server])
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start java");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("feed the shell");
    let output = child.wait_with_output().expect("the shell's output");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The transcript with what legitimately differs between servers masked: hex numbers
/// (zxids, session ids), the `ctime`/`mtime` dates and the address it connected to.
fn masked(transcript: &str) -> String {
    let lines = transcript.lines().map(|line| {
        if line.starts_with("Connecting to ") {
            return "Connecting to SERVER".to_owned();
        }
        if let Some((key @ ("ctime" | "mtime"), _)) = line.split_once(" = ") {
            return format!("{key} = TIME");
        }
        match line.split_once(" = 0x") {
            Some((key, _)) => format!("{key} = 0xHEX"),
            None => line.to_owned(),
        }
    });
    lines.collect::<Vec<_>>().join("\n")
}

const SHELL_SESSION: &str = "\
create /zkcli hello
create /zkcli/child c1
create -e /zkcli/eph e
create -s /zkcli/seq- s
create -c /zkcli-container
create /zkcli-container/inside x
get /zkcli
ls /zkcli
ls -s /zkcli
ls -R /zkcli
set /zkcli world
get -s /zkcli
stat /zkcli
stat /zkcli/eph
set -v 7 /zkcli stale
getAcl /zkcli
setAcl /zkcli/child world:anyone:r
getAcl /zkcli/child
set /zkcli/child denied
addauth digest alice:secret
create /zkcli/secret s auth::cdrwa
getAcl /zkcli/secret
create /zkcli/child again
delete /zkcli
get /zkcli/missing
delete /zkcli/child
deleteall /zkcli
ls /zkcli
stat /zkcli
quit
";

#[test]
fn shell_session_matches_real_zookeeper() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), "");
    let zabflow = format!("127.0.0.1:{}", node.port);
    let reference = real_zookeeper::shared_standalone()
        .unwrap_or_else(|error| panic!("real ZooKeeper is needed for this test: {error}"));
    let (ours, theirs) = thread::scope(|scope| {
        let ours = scope.spawn(|| zookeeper_main(&zabflow, &[], SHELL_SESSION));
        let theirs = scope.spawn(|| zookeeper_main(&reference, &[], SHELL_SESSION));
        (ours.join().unwrap(), theirs.join().unwrap())
    });
    let expected_lines = [
        "Created /zkcli",
        "Created /zkcli/seq-0000000002",
        "Created /zkcli-container",
        "hello",
        "[child, eph, seq-0000000002]",
        "/zkcli/seq-0000000002",
        "world",
        "dataVersion = 1",
        "numChildren = 3",
        "ephemeralOwner = 0x0",
        "version No is not valid : /zkcli",
        "'world,'anyone",
        ": cdrwa",
        ": r",
        "Insufficient permission : /zkcli/child",
        "'digest,'alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=",
        "Node already exists: /zkcli/child",
        "Node not empty: /zkcli",
        "Node does not exist: /zkcli/missing",
        "Node does not exist: /zkcli",
    ];
    for line in expected_lines {
        assert!(ours.lines().any(|ours| ours == line), "no line {line:?} in:\n{ours}");
    }
    assert_eq!(masked(&ours), masked(&theirs), "zabflow:\n{ours}\nZooKeeper:\n{theirs}");
}

#[test]
fn single_commands() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), "");
    let server = format!("127.0.0.1:{}", node.port);
    let run = |arguments: &[&str]| zookeeper_main(&server, arguments, "");
    let created = run(&["create", "/one", "first"]);
    assert!(created.contains("Created /one"), "{created}");
    assert!(run(&["set", "/one", "second"]).lines().all(|line| !line.contains("Exception")));
    let read = run(&["get", "-s", "/one"]);
    assert!(read.lines().any(|line| line == "second"), "{read}");
    assert!(read.contains("dataVersion = 1"), "{read}");
    let listed = run(&["ls", "/"]);
    assert!(listed.lines().any(|line| line == "[one, zookeeper]"), "{listed}");
    let deleted = run(&["delete", "/one"]);
    assert!(!deleted.contains("Node does not exist"), "{deleted}");
    let stat = run(&["stat", "/one"]);
    assert!(stat.contains("Node does not exist: /one"), "{stat}");
}
