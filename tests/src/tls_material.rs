//! `TlsMaterial`: certificates and keystores for TLS tests, made fresh in a temp dir with
//! the `openssl` and `keytool` commands (OpenSSL and a JDK; both come with the packages the
//! real-ZooKeeper harness installs).
//!
//! ```text
//! ca.pem / ca.key                  test CA (X.509 v3, basicConstraints CA:TRUE)
//! server.pem / server.key          CN=localhost, signed by the CA
//! client.pem / client.key          CN=client, signed by the CA (X.509 v1, as kazoo's suite)
//! rogue-client.pem / .key          signed by another CA nobody trusts
//! keystore.jks                     server key + chain (JKS, made by keytool)
//! truststore.jks                   the CA as a trusted entry (JKS)
//! keystore.pem                     server key + certificate in one PEM file
//! keystore.p12                     the server key as PKCS12 (a type zabflow refuses)
//! ```
//!
//! Every store's password is [`STORE_PASSWORD`].

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::real_zookeeper::{HarnessError, HarnessResult};

/// The password of every keystore and trust store made here.
pub const STORE_PASSWORD: &str = "apassword";

/// Certificates and keystores in a temp dir, removed on drop.
#[derive(Debug)]
pub struct TlsMaterial {
    dir: tempfile::TempDir,
}

fn run(dir: &Path, program: &str, args: &[&str]) -> HarnessResult<()> {
    let output = Command::new(program).args(args).current_dir(dir).output().map_err(|error| {
        HarnessError(format!("cannot run {program} (install openssl and a JDK): {error}"))
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(HarnessError(format!(
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )))
}

/// A key and a certificate for `name` with subject `subject`, signed by CA `ca`.
fn signed(dir: &Path, name: &str, subject: &str, ca: &str) -> HarnessResult<()> {
    let (key, csr, pem) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
    run(
        dir,
        "openssl",
        &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", subject],
    )?;
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    run(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
        ],
    )
}

fn certificate_authority(dir: &Path, name: &str, subject: &str) -> HarnessResult<()> {
    let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
    run(
        dir,
        "openssl",
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &pem,
            "-days", "2", "-subj", subject,
        ],
    )
}

impl TlsMaterial {
    /// Makes every file listed in the module docs.
    ///
    /// # Errors
    /// `openssl` or `keytool` missing or failing; the message quotes its output.
    pub fn generate() -> HarnessResult<TlsMaterial> {
        let dir = tempfile::Builder::new()
            .prefix("tls-material-")
            .tempdir()
            .map_err(|error| HarnessError(format!("cannot create a temp dir: {error}")))?;
        let path = dir.path();
        certificate_authority(path, "ca", "/CN=zabflow test ca")?;
        certificate_authority(path, "rogue-ca", "/CN=rogue ca")?;
        signed(path, "server", "/CN=localhost", "ca")?;
        signed(path, "client", "/CN=client", "ca")?;
        signed(path, "rogue-client", "/CN=rogue", "rogue-ca")?;
        let password = format!("pass:{STORE_PASSWORD}");
        run(
            path,
            "openssl",
            &[
                "pkcs12",
                "-export",
                "-in",
                "server.pem",
                "-inkey",
                "server.key",
                "-certfile",
                "ca.pem",
                "-name",
                "server",
                "-out",
                "keystore.p12",
                "-passout",
                &password,
            ],
        )?;
        run(
            path,
            "keytool",
            &[
                "-importkeystore",
                "-srckeystore",
                "keystore.p12",
                "-srcstoretype",
                "PKCS12",
                "-srcstorepass",
                STORE_PASSWORD,
                "-destkeystore",
                "keystore.jks",
                "-deststoretype",
                "JKS",
                "-deststorepass",
                STORE_PASSWORD,
                "-destkeypass",
                STORE_PASSWORD,
                "-noprompt",
            ],
        )?;
        run(
            path,
            "keytool",
            &[
                "-importcert",
                "-noprompt",
                "-alias",
                "ca",
                "-file",
                "ca.pem",
                "-keystore",
                "truststore.jks",
                "-storetype",
                "JKS",
                "-storepass",
                STORE_PASSWORD,
            ],
        )?;
        let read = |name: &str| {
            std::fs::read_to_string(path.join(name))
                .map_err(|error| HarnessError(format!("cannot read {name}: {error}")))
        };
        let pem = format!("{}{}", read("server.key")?, read("server.pem")?);
        std::fs::write(path.join("keystore.pem"), pem)
            .map_err(|error| HarnessError(format!("cannot write keystore.pem: {error}")))?;
        Ok(TlsMaterial { dir })
    }

    /// The path of one of the files.
    #[must_use]
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `zoo.cfg` lines for the JKS keystore and trust store, with `secureClientPort=port`.
    #[must_use]
    pub fn zoo_cfg(&self, secure_port: u16) -> String {
        format!(
            "secureClientPort={secure_port}\n\
             serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n\
             ssl.keyStore.location={}\nssl.keyStore.password={STORE_PASSWORD}\n\
             ssl.trustStore.location={}\nssl.trustStore.password={STORE_PASSWORD}\n",
            self.path("keystore.jks").display(),
            self.path("truststore.jks").display(),
        )
    }
}
