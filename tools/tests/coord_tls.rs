//! `zabflow node` with `secureClientPort`: keystores it must refuse at start, and the
//! `ssl.clientAuth` modes and keystore types it serves with. Clients are Python's `ssl`
//! module (in the kazoo venv) doing the handshake and a four-letter word over TLS; kazoo's
//! own SSL client and the comparison with real ZooKeeper are in `kazoo_compat.rs`.

mod coord;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coord::Node;
use zabflow_tests::kazoo::Kazoo;
use zabflow_tests::tls_material::{TlsMaterial, STORE_PASSWORD};

fn material() -> TlsMaterial {
    TlsMaterial::generate().unwrap_or_else(|error| panic!("TLS test material is needed: {error}"))
}

fn free_port() -> u16 {
    zabflow_tests::ports::free_loopback_ports(1).expect("a port")[0]
}

/// Starts a node on `zoo.cfg` lines `tls` and expects it to exit non-zero at start; returns
/// its stderr.
fn start_fails(tls: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "tickTime=200\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n{tls}\n",
        dir.path().join("data").display(),
        free_port(),
    );
    std::fs::write(dir.path().join("zoo.cfg"), config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_zabflow"))
        .args(["node", "--config"])
        .arg(dir.path().join("zoo.cfg"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the node did not stop on a bad keystore");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "exited with {status}: {stderr}");
    stderr
}

fn stores(material: &TlsMaterial, key_store: &str, key_password: &str) -> String {
    format!(
        "secureClientPort={}\nssl.keyStore.location={}\nssl.keyStore.password={key_password}\n\
         ssl.trustStore.location={}\nssl.trustStore.password={STORE_PASSWORD}\n",
        free_port(),
        material.path(key_store).display(),
        material.path("truststore.jks").display(),
    )
}

#[test]
fn an_unusable_keystore_stops_the_node_at_start() {
    let material = material();
    let wrong = start_fails(&stores(&material, "keystore.jks", "not-the-password"));
    assert!(wrong.contains("keystore.jks: keystore was tampered with, or password was incorrect"));
    let missing = start_fails(&stores(&material, "missing.jks", STORE_PASSWORD));
    assert!(missing.contains("missing.jks: No such file"), "{missing}");
    let p12 = start_fails(&stores(&material, "keystore.p12", STORE_PASSWORD));
    assert!(p12.contains("unsupported keystore type Pkcs12"), "{p12}");
    std::fs::write(material.path("corrupt.jks"), b"\xfe\xed\xfe\xed\0\0\0\x02\0\0").unwrap();
    let corrupt = start_fails(&stores(&material, "corrupt.jks", STORE_PASSWORD));
    assert!(corrupt.contains("corrupt.jks: truncated"), "{corrupt}");
    let no_trust = format!(
        "secureClientPort={}\nssl.keyStore.location={}\nssl.keyStore.password={STORE_PASSWORD}\n",
        free_port(),
        material.path("keystore.jks").display()
    );
    let untrusting = start_fails(&no_trust);
    assert!(untrusting.contains("ssl.trustStore.location is not set"), "{untrusting}");
}

/// A Python `ssl` client: handshake with `secure_port` (with the client key `key`, if any),
/// then `ruok`; prints `imok` or the error's class.
const PROBE: &str = r#"
import os, socket, ssl, sys
port, key, tls_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.load_verify_locations(os.path.join(tls_dir, "ca.pem"))
if key != "-":
    context.load_cert_chain(os.path.join(tls_dir, key + ".pem"), os.path.join(tls_dir, key + ".key"))
try:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            tls.sendall(b"ruok")
            reply = b""
            while True:
                chunk = tls.recv(100)
                if not chunk:
                    break
                reply += chunk
            print(reply.decode() or "refused: closed without a reply")
except (ssl.SSLError, OSError) as error:
    print("refused", type(error).__name__)
"#;

fn probe(kazoo: &Kazoo, port: u16, key: &str, dir: &Path) -> String {
    let output = Command::new(kazoo.python())
        .args(["-c", PROBE, &port.to_string(), key])
        .arg(dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Starts a node serving TLS with `lines`; returns it and its secure port.
fn tls_node(dir: &Path, lines: &str) -> (Node, u16) {
    let secure_port = free_port();
    let extra = format!("4lw.commands.whitelist=*\nsecureClientPort={secure_port}\n{lines}");
    (Node::start(dir, &extra), secure_port)
}

#[test]
fn client_auth_modes_and_a_pem_keystore() {
    let kazoo = Kazoo::ensure().unwrap_or_else(|error| panic!("kazoo is needed: {error}"));
    let material = material();
    let tls_dir = material.path("");
    let pem = |key_store: &str, auth: &str| {
        format!(
            "ssl.keyStore.location={}\nssl.trustStore.location={}\nssl.clientAuth={auth}\n",
            material.path(key_store).display(),
            material.path("ca.pem").display(),
        )
    };
    let cases = [
        ("need", ["imok", "refused", "refused"]),
        ("want", ["imok", "imok", "refused"]),
        ("none", ["imok", "imok", "imok"]),
    ];
    for (auth, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (node, port) = tls_node(dir.path(), &pem("keystore.pem", auth));
        for (key, expected) in ["client", "-", "rogue-client"].iter().zip(expected) {
            let outcome = probe(&kazoo, port, key, &tls_dir);
            assert!(
                outcome.starts_with(expected),
                "clientAuth={auth}, client key {key}: {outcome}\n{}",
                node.log()
            );
        }
        assert_eq!(node.four_letter("ruok"), "imok", "the plain port is unaffected");
        if auth == "need" {
            assert!(node.log().contains("TLS handshake with"), "{}", node.log());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let tls12 = format!("{}ssl.protocol=TLSv1.2\n", pem("keystore.pem", "need"));
    let (node, port) = tls_node(dir.path(), &tls12);
    assert_eq!(probe(&kazoo, port, "client", &tls_dir), "imok", "{}", node.log());
}
