//! `KeyStore`: the server's certificate chain and private key, and the certificates it
//! trusts, read from the files ZooKeeper's `ssl.keyStore.*` / `ssl.trustStore.*` keys name.
//!
//! Types, as ZooKeeper's `X509Util` knows them (`ssl.keyStore.type`, or guessed from the
//! file name: `.jks`, `.pem`, `.p12`/`.pfx`, `.bcfks`):
//!
//! - **JKS**, Sun's keystore format, read here (no maintained crate reads it):
//!
//! ```text
//! jks        = magic:u32=0xFEEDFEED version:u32(1|2) count:u32 entry{count} digest:20
//! entry      = tag:u32 alias:utf timestamp_ms:u64 (private-key | trusted-cert)
//! private-key= tag=1 key_len:u32 EncryptedPrivateKeyInfo{key_len} chain_len:u32 cert{chain_len}
//! trusted-cert = tag=2 cert
//! cert       = [type:utf ("X.509"), version 2 only] len:u32 der{len}
//! utf        = len:u16 byte{len}                          ; Java's modified UTF-8
//! digest     = SHA-1(password as UTF-16BE, "Mighty Aphrodite", every byte before it)
//! EncryptedPrivateKeyInfo = SEQUENCE { SEQUENCE { OID 1.3.6.1.4.1.42.2.17.1.1, NULL },
//!                                      OCTET STRING (salt:20 ciphertext check:20) }
//! keystream  = d1 d2 …, d1 = SHA-1(password16 salt), d(i+1) = SHA-1(password16 d(i))
//! plaintext  = ciphertext XOR keystream                   ; a PKCS#8 PrivateKeyInfo
//! check      = SHA-1(password16 plaintext)
//! ```
//!
//! - **PEM**: the private key (PKCS#8, PKCS#1 or SEC1, unencrypted) and the chain in one
//!   file; a trust store is a file of certificates.
//! - **PKCS12** and **BCFKS** are refused with an "unsupported keystore type" error: no
//!   light crate reads them with ring.
//!
//! A keystore that cannot be used (missing file, wrong password, corrupt content, no key)
//! is an [`Error::Tls`] naming the file, so `zabflow node` stops at start with it.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha1::{Digest as _, Sha1};

use crate::der::{self, Der, TAG_NULL, TAG_OCTET_STRING, TAG_OID};
use crate::error::{Error, Result};

const JKS_MAGIC: u32 = 0xFEED_FEED;
const JCEKS_MAGIC: u32 = 0xCECE_CECE;
const JKS_TAG_PRIVATE_KEY: u32 = 1;
const JKS_TAG_TRUSTED_CERT: u32 = 2;
const JKS_INTEGRITY_SALT: &[u8] = b"Mighty Aphrodite";
/// OID 1.3.6.1.4.1.42.2.17.1.1, Sun's `KeyProtector` algorithm, DER contents.
const SUN_KEY_PROTECTOR_OID: [u8; 10] =
    [0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];
const SHA1_BYTES: usize = 20;
/// Most entries a keystore may hold; a count beyond it is corruption.
const KEYSTORE_ENTRIES_MAX: u32 = 1 << 16;
/// Largest keystore file read (real ones are a few KiB).
const KEYSTORE_BYTES_MAX: u64 = 16 << 20;

/// A keystore or trust store file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    Jks,
    Pem,
    Pkcs12,
    Bcfks,
}

impl StoreType {
    /// `ssl.keyStore.type`'s value, case-insensitive.
    #[must_use]
    pub fn from_name(name: &str) -> Option<StoreType> {
        match name.to_ascii_uppercase().as_str() {
            "JKS" => Some(StoreType::Jks),
            "PEM" => Some(StoreType::Pem),
            "PKCS12" => Some(StoreType::Pkcs12),
            "BCFKS" => Some(StoreType::Bcfks),
            _ => None,
        }
    }

    /// ZooKeeper's guess from the file name (`KeyStoreFileType.fromFilename`).
    #[must_use]
    pub fn from_file_name(path: &Path) -> Option<StoreType> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "jks" => Some(StoreType::Jks),
            "pem" => Some(StoreType::Pem),
            "p12" | "pfx" => Some(StoreType::Pkcs12),
            "bcfks" => Some(StoreType::Bcfks),
            _ => None,
        }
    }
}

/// Where a keystore or trust store is and how to open it (`ssl.keyStore.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    pub location: PathBuf,
    pub password: Option<String>,
    pub store_type: Option<StoreType>,
}

/// The server's identity: its chain (end entity first) and its private key.
#[derive(Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// One entry of a JKS keystore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JksEntry {
    /// A private key (PKCS#8 DER, decrypted; `None` when no password was given) and its chain.
    PrivateKey {
        alias: String,
        pkcs8: Option<Vec<u8>>,
        chain: Vec<Vec<u8>>,
    },
    TrustedCert {
        alias: String,
        cert: Vec<u8>,
    },
}

impl StoreConfig {
    fn store_type(&self) -> Result<StoreType> {
        self.store_type.or_else(|| StoreType::from_file_name(&self.location)).ok_or_else(|| {
            self.error("cannot tell the keystore type from the file name; set its .type")
        })
    }

    fn error(&self, why: impl std::fmt::Display) -> Error {
        Error::Tls(format!("{}: {why}", self.location.display()))
    }

    fn read(&self) -> Result<Vec<u8>> {
        let size = std::fs::metadata(&self.location).map_err(|e| self.error(e))?.len();
        if size > KEYSTORE_BYTES_MAX {
            return Err(self.error(format!("{size} bytes; not a keystore")));
        }
        std::fs::read(&self.location).map_err(|error| self.error(error))
    }

    fn unsupported(&self, store_type: StoreType) -> Error {
        self.error(format!(
            "unsupported keystore type {store_type:?}: zabflow reads JKS and PEM keystores"
        ))
    }

    /// Loads the server's chain and key.
    ///
    /// # Errors
    /// [`Error::Tls`]: unreadable, wrong password, corrupt, no private key, unsupported type.
    pub fn load_identity(&self) -> Result<Identity> {
        let bytes = self.read()?;
        match self.store_type()? {
            StoreType::Jks => {
                let password = self.password.as_deref().unwrap_or("");
                let entries = parse_jks(&bytes, Some(password)).map_err(|e| self.error(e))?;
                let key_entry = entries.into_iter().find_map(|entry| match entry {
                    JksEntry::PrivateKey { pkcs8: Some(pkcs8), chain, .. } => Some((pkcs8, chain)),
                    _ => None,
                });
                let (pkcs8, chain) =
                    key_entry.ok_or_else(|| self.error("the keystore holds no private key"))?;
                if chain.is_empty() {
                    return Err(self.error("the private key has no certificate chain"));
                }
                let pkcs8 = with_ec_public_key(pkcs8, &chain[0]).map_err(|e| self.error(e))?;
                let chain = chain.into_iter().map(CertificateDer::from).collect();
                Ok(Identity { chain, key: PrivatePkcs8KeyDer::from(pkcs8).into() })
            }
            StoreType::Pem => self.pem_identity(&bytes),
            other => Err(self.unsupported(other)),
        }
    }

    fn pem_identity(&self, bytes: &[u8]) -> Result<Identity> {
        if bytes.windows(b"ENCRYPTED PRIVATE KEY".len()).any(|w| w == b"ENCRYPTED PRIVATE KEY") {
            return Err(self.error("encrypted PEM private keys are not supported"));
        }
        let key = PrivateKeyDer::from_pem_slice(bytes)
            .map_err(|error| self.error(format!("no private key: {error}")))?;
        let chain = pem_certificates(bytes).map_err(|e| self.error(e))?;
        if chain.is_empty() {
            return Err(self.error("no certificate"));
        }
        Ok(Identity { chain, key })
    }

    /// Loads the certificates to trust: a JKS store's trusted entries (and each key
    /// entry's own certificate, as Java's trust manager takes them), or a PEM file's.
    ///
    /// # Errors
    /// [`Error::Tls`]: unreadable, wrong password, corrupt, empty, unsupported type.
    pub fn load_trusted(&self) -> Result<Vec<CertificateDer<'static>>> {
        let bytes = self.read()?;
        let certs = match self.store_type()? {
            StoreType::Jks => {
                // Java checks a trust store's digest only when a password is given.
                let entries =
                    parse_jks(&bytes, self.password.as_deref()).map_err(|e| self.error(e))?;
                let certs = entries.into_iter().filter_map(|entry| match entry {
                    JksEntry::TrustedCert { cert, .. } => Some(cert),
                    JksEntry::PrivateKey { chain, .. } => chain.into_iter().next(),
                });
                certs.map(CertificateDer::from).collect()
            }
            StoreType::Pem => pem_certificates(&bytes).map_err(|e| self.error(e))?,
            other => return Err(self.unsupported(other)),
        };
        if certs.is_empty() {
            return Err(self.error("the trust store holds no certificate"));
        }
        Ok(certs)
    }
}

fn pem_certificates(bytes: &[u8]) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|error| format!("bad PEM certificate: {error}"))
}

/// A big-endian reader over a JKS file.
struct JksReader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> JksReader<'a> {
    fn take(&mut self, count: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.position.checked_add(count).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.position))?;
        let taken = &self.bytes[self.position..end];
        self.position = end;
        Ok(taken)
    }

    fn u16(&mut self) -> std::result::Result<u16, String> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn utf(&mut self) -> std::result::Result<String, String> {
        let length = self.u16()?;
        Ok(String::from_utf8_lossy(self.take(usize::from(length))?).into_owned())
    }

    fn cert(&mut self, version: u32) -> std::result::Result<Vec<u8>, String> {
        if version == 2 {
            let cert_type = self.utf()?;
            if cert_type != "X.509" {
                return Err(format!("certificate type {cert_type:?} is not X.509"));
            }
        }
        let length = self.u32()? as usize;
        Ok(self.take(length)?.to_vec())
    }
}

/// The password as Java's `KeyProtector` and the JKS digest see it: UTF-16BE.
fn password_utf16(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// Parses a JKS keystore. With `password`, checks the file's digest and decrypts every
/// private key; without it, reads the certificates only (keys stay `None`).
///
/// # Errors
/// A message: not JKS (JCEKS and PKCS12 are named), truncated, wrong password.
pub fn parse_jks(
    bytes: &[u8],
    password: Option<&str>,
) -> std::result::Result<Vec<JksEntry>, String> {
    let mut reader = JksReader { bytes, position: 0 };
    match reader.u32()? {
        JKS_MAGIC => {}
        JCEKS_MAGIC => return Err("a JCEKS keystore; only JKS is supported".to_owned()),
        _ if bytes.first() == Some(&0x30) => {
            return Err("not a JKS keystore (it looks like PKCS12, unsupported keystore type; \
                        make a JKS one with keytool -storetype JKS)"
                .to_owned())
        }
        magic => return Err(format!("not a JKS keystore (magic 0x{magic:08x})")),
    }
    let version = reader.u32()?;
    if version != 1 && version != 2 {
        return Err(format!("JKS version {version} is unknown"));
    }
    let count = reader.u32()?;
    if count > KEYSTORE_ENTRIES_MAX {
        return Err(format!("{count} entries: corrupt"));
    }
    let mut raw = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let tag = reader.u32()?;
        let alias = reader.utf()?;
        reader.take(8)?; // timestamp
        match tag {
            JKS_TAG_PRIVATE_KEY => {
                let length = reader.u32()? as usize;
                let protected = reader.take(length)?;
                let chain_length = reader.u32()?;
                if chain_length > KEYSTORE_ENTRIES_MAX {
                    return Err(format!("{chain_length} certificates: corrupt"));
                }
                let chain = (0..chain_length)
                    .map(|_| reader.cert(version))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                raw.push((alias, Some(protected), chain));
            }
            JKS_TAG_TRUSTED_CERT => raw.push((alias, None, vec![reader.cert(version)?])),
            _ => return Err(format!("entry tag {tag} is unknown: corrupt")),
        }
    }
    let body_end = reader.position;
    let digest = reader.take(SHA1_BYTES)?;
    if reader.position != bytes.len() {
        return Err(format!("{} bytes after the digest", bytes.len() - reader.position));
    }
    let Some(password) = password else {
        return Ok(raw
            .into_iter()
            .map(|(alias, key, chain)| entry(alias, key, chain, None))
            .collect());
    };
    let password16 = password_utf16(password);
    let mut hasher = Sha1::new();
    hasher.update(&password16);
    hasher.update(JKS_INTEGRITY_SALT);
    hasher.update(&bytes[..body_end]);
    if hasher.finalize().as_slice() != digest {
        return Err("keystore was tampered with, or password was incorrect".to_owned());
    }
    raw.into_iter()
        .map(|(alias, protected, chain)| {
            let pkcs8 = protected.map(|p| recover_key(p, &password16)).transpose()?;
            Ok(entry(alias, protected, chain, pkcs8))
        })
        .collect()
}

fn entry(
    alias: String,
    key: Option<&[u8]>,
    chain: Vec<Vec<u8>>,
    pkcs8: Option<Vec<u8>>,
) -> JksEntry {
    match key {
        Some(_) => JksEntry::PrivateKey { alias, pkcs8, chain },
        None => JksEntry::TrustedCert { alias, cert: chain.into_iter().next().expect("one") },
    }
}

/// OID 1.2.840.10045.2.1, `id-ecPublicKey`, DER contents.
const EC_PUBLIC_KEY_OID: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// `[1]` constructed: the optional public key of an `ECPrivateKey` (RFC 5915).
const TAG_CONTEXT_1: u8 = 0xa1;

/// An EC PKCS#8 key as Java writes it has no public key in its `ECPrivateKey`, which ring
/// requires: this adds the one of the key's certificate (ring then checks they match).
/// Other keys come back unchanged.
///
/// ```text
/// PrivateKeyInfo = SEQUENCE { INTEGER 0, SEQUENCE { OID id-ecPublicKey, OID curve },
///                             OCTET STRING ECPrivateKey }
/// ECPrivateKey   = SEQUENCE { INTEGER 1, OCTET STRING key, [0] curve?, [1] BIT STRING? }
/// ```
fn with_ec_public_key(pkcs8: Vec<u8>, cert: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut info = Der::new(&pkcs8).sequence("PrivateKeyInfo")?;
    let version = info.expect(der::TAG_INTEGER, "PrivateKeyInfo version")?;
    let algorithm = info.expect(der::TAG_SEQUENCE, "key algorithm")?;
    let oid = Der::new(algorithm.contents).expect(TAG_OID, "key algorithm OID")?;
    if oid.contents != EC_PUBLIC_KEY_OID {
        return Ok(pkcs8);
    }
    let private = info.expect(TAG_OCTET_STRING, "ECPrivateKey")?;
    let mut ec = Der::new(private.contents).sequence("ECPrivateKey")?;
    let mut fields = Vec::new();
    while !ec.is_empty() {
        let field = ec.any()?;
        if field.tag == TAG_CONTEXT_1 {
            return Ok(pkcs8);
        }
        fields.extend_from_slice(field.encoded);
    }
    let spki = crate::tls::certificate_spki(cert)?;
    let mut key_info = Der::new(spki).sequence("subjectPublicKeyInfo")?;
    key_info.expect(der::TAG_SEQUENCE, "key algorithm")?;
    let public_key = key_info.expect(der::TAG_BIT_STRING, "public key")?;
    fields.extend_from_slice(&der::encode(TAG_CONTEXT_1, public_key.encoded));
    let ec_private_key = der::encode(der::TAG_SEQUENCE, &fields);
    let mut contents = version.encoded.to_vec();
    contents.extend_from_slice(algorithm.encoded);
    contents.extend_from_slice(&der::encode(TAG_OCTET_STRING, &ec_private_key));
    Ok(der::encode(der::TAG_SEQUENCE, &contents))
}

/// Undoes Sun's `KeyProtector`: returns the PKCS#8 `PrivateKeyInfo` DER.
fn recover_key(protected: &[u8], password16: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut outer = Der::new(protected);
    let mut info = outer.sequence("EncryptedPrivateKeyInfo")?;
    let mut algorithm = info.sequence("key algorithm")?;
    let oid = algorithm.expect(TAG_OID, "key algorithm OID")?;
    if oid.contents != SUN_KEY_PROTECTOR_OID {
        return Err("the private key is not protected with Sun's JKS algorithm".to_owned());
    }
    if algorithm.peek_tag() == Some(TAG_NULL) {
        algorithm.any()?;
    }
    let encrypted = info.expect(TAG_OCTET_STRING, "encrypted key")?.contents;
    if encrypted.len() < 2 * SHA1_BYTES {
        return Err("the protected key is too short".to_owned());
    }
    let (salt, rest) = encrypted.split_at(SHA1_BYTES);
    let (ciphertext, check) = rest.split_at(rest.len() - SHA1_BYTES);
    let mut plaintext = Vec::with_capacity(ciphertext.len());
    let mut block: [u8; SHA1_BYTES] = salt.try_into().expect("20 bytes");
    for chunk in ciphertext.chunks(SHA1_BYTES) {
        block = Sha1::new().chain_update(password16).chain_update(block).finalize().into();
        plaintext.extend(chunk.iter().zip(block).map(|(byte, key)| byte ^ key));
    }
    let expected: [u8; SHA1_BYTES] =
        Sha1::new().chain_update(password16).chain_update(&plaintext).finalize().into();
    if expected != check {
        return Err("cannot recover the private key: wrong key password".to_owned());
    }
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JKS file built by hand (as `keytool` writes one), for the parser's own checks.
    fn build_jks(password: &str, pkcs8: &[u8], cert: &[u8]) -> Vec<u8> {
        let password16 = password_utf16(password);
        let salt = [9u8; SHA1_BYTES];
        let mut ciphertext = Vec::new();
        let mut block = salt;
        for chunk in pkcs8.chunks(SHA1_BYTES) {
            block = Sha1::new().chain_update(&password16).chain_update(block).finalize().into();
            ciphertext.extend(chunk.iter().zip(block).map(|(b, k)| b ^ k));
        }
        let check: [u8; 20] =
            Sha1::new().chain_update(&password16).chain_update(pkcs8).finalize().into();
        let mut octets = salt.to_vec();
        octets.extend_from_slice(&ciphertext);
        octets.extend_from_slice(&check);
        let mut algorithm = vec![TAG_OID, 10];
        algorithm.extend_from_slice(&SUN_KEY_PROTECTOR_OID);
        algorithm.extend_from_slice(&[TAG_NULL, 0]);
        let mut inner = vec![0x30, algorithm.len() as u8];
        inner.extend_from_slice(&algorithm);
        inner.extend_from_slice(&[TAG_OCTET_STRING, 0x81, octets.len() as u8]);
        inner.extend_from_slice(&octets);
        let mut protected = vec![0x30, 0x81, inner.len() as u8];
        protected.extend_from_slice(&inner);
        let mut file = Vec::new();
        file.extend_from_slice(&JKS_MAGIC.to_be_bytes());
        file.extend_from_slice(&2u32.to_be_bytes());
        file.extend_from_slice(&2u32.to_be_bytes());
        let cert_field = |file: &mut Vec<u8>| {
            file.extend_from_slice(&5u16.to_be_bytes());
            file.extend_from_slice(b"X.509");
            file.extend_from_slice(&(cert.len() as u32).to_be_bytes());
            file.extend_from_slice(cert);
        };
        file.extend_from_slice(&JKS_TAG_PRIVATE_KEY.to_be_bytes());
        file.extend_from_slice(&3u16.to_be_bytes());
        file.extend_from_slice(b"key");
        file.extend_from_slice(&0u64.to_be_bytes());
        file.extend_from_slice(&(protected.len() as u32).to_be_bytes());
        file.extend_from_slice(&protected);
        file.extend_from_slice(&1u32.to_be_bytes());
        cert_field(&mut file);
        file.extend_from_slice(&JKS_TAG_TRUSTED_CERT.to_be_bytes());
        file.extend_from_slice(&2u16.to_be_bytes());
        file.extend_from_slice(b"ca");
        file.extend_from_slice(&0u64.to_be_bytes());
        cert_field(&mut file);
        let digest: [u8; 20] = Sha1::new()
            .chain_update(&password16)
            .chain_update(JKS_INTEGRITY_SALT)
            .chain_update(&file)
            .finalize()
            .into();
        file.extend_from_slice(&digest);
        file
    }

    #[test]
    fn reads_keys_and_certificates_back() {
        let pkcs8: Vec<u8> = (0..=100).collect();
        let file = build_jks("secret", &pkcs8, b"certificate");
        let entries = parse_jks(&file, Some("secret")).unwrap();
        assert_eq!(
            entries,
            [
                JksEntry::PrivateKey {
                    alias: "key".into(),
                    pkcs8: Some(pkcs8),
                    chain: vec![b"certificate".to_vec()]
                },
                JksEntry::TrustedCert { alias: "ca".into(), cert: b"certificate".to_vec() },
            ]
        );
        let without = parse_jks(&file, None).unwrap();
        assert!(matches!(&without[0], JksEntry::PrivateKey { pkcs8: None, .. }));
    }

    #[test]
    fn wrong_password_and_corruption_are_errors() {
        let file = build_jks("secret", &[1; 50], b"certificate");
        let error = parse_jks(&file, Some("wrong")).unwrap_err();
        assert!(error.contains("password was incorrect"), "{error}");
        for cut in [3, 20, file.len() - 1] {
            assert!(parse_jks(&file[..cut], Some("secret")).is_err(), "cut at {cut}");
        }
        let mut flipped = file.clone();
        flipped[40] ^= 1;
        assert!(parse_jks(&flipped, Some("secret")).is_err());
        assert!(parse_jks(b"\x30\x82\x01\x00", None).unwrap_err().contains("PKCS12"));
        assert!(parse_jks(&JCEKS_MAGIC.to_be_bytes(), None).unwrap_err().contains("JCEKS"));
    }

    /// Runs the JDK's `keytool`; a missing JDK fails the test with what to install.
    fn keytool(args: &[&str]) {
        let output =
            std::process::Command::new("keytool").args(args).output().unwrap_or_else(|error| {
                panic!("keytool (apt-get install -y openjdk-17-jdk-headless): {error}")
            });
        assert!(output.status.success(), "keytool {args:?}: {output:?}");
    }

    fn generate(dir: &Path, name: &str, key_alg: &str) -> PathBuf {
        let path = dir.join(name);
        let location = path.to_str().unwrap();
        keytool(&[
            "-genkeypair",
            "-keystore",
            location,
            "-storetype",
            "JKS",
            "-storepass",
            "s3cret!",
            "-keypass",
            "s3cret!",
            "-alias",
            "server",
            "-keyalg",
            key_alg,
            "-dname",
            "CN=localhost",
            "-validity",
            "2",
        ]);
        path
    }

    #[test]
    fn reads_keystores_keytool_writes() {
        let dir = tempfile::tempdir().unwrap();
        let provider = rustls::crypto::ring::default_provider();
        for (name, key_alg) in [("rsa.jks", "RSA"), ("ec.jks", "EC")] {
            let location = generate(dir.path(), name, key_alg);
            let store =
                StoreConfig { location, password: Some("s3cret!".into()), store_type: None };
            let identity = store.load_identity().unwrap();
            assert_eq!(identity.chain.len(), 1, "{name}: a self-signed chain");
            let key = provider.key_provider.load_private_key(identity.key);
            let key = key.unwrap_or_else(|error| panic!("{name}: {error}"));
            assert!(key.public_key().is_some(), "{name}: ring reads the recovered key");
            assert_eq!(store.load_trusted().unwrap(), identity.chain, "{name}: as a trust store");
            let wrong = StoreConfig { password: Some("wrong".into()), ..store.clone() };
            let error = wrong.load_identity().unwrap_err().to_string();
            assert!(error.contains("password was incorrect") && error.contains(name), "{error}");
        }
    }

    #[test]
    fn missing_and_unsupported_keystores_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let store = |name: &str| StoreConfig {
            location: dir.path().join(name),
            password: Some("s3cret!".into()),
            store_type: None,
        };
        let missing = store("missing.jks").load_identity().unwrap_err().to_string();
        assert!(missing.contains("missing.jks") && missing.contains("No such file"), "{missing}");
        std::fs::write(dir.path().join("k.p12"), b"0").unwrap();
        let p12 = store("k.p12").load_identity().unwrap_err().to_string();
        assert!(p12.contains("unsupported keystore type Pkcs12"), "{p12}");
        std::fs::write(dir.path().join("k.key"), b"0").unwrap();
        let unknown = store("k.key").load_identity().unwrap_err().to_string();
        assert!(unknown.contains("cannot tell the keystore type"), "{unknown}");
        std::fs::write(dir.path().join("corrupt.jks"), b"\xfe\xed\xfe\xed\0\0\0\x02").unwrap();
        let corrupt = store("corrupt.jks").load_identity().unwrap_err().to_string();
        assert!(corrupt.contains("truncated"), "{corrupt}");
    }

    #[test]
    fn types_are_guessed_from_the_file_name() {
        let guess = |name: &str| StoreType::from_file_name(Path::new(name));
        assert_eq!(guess("a/keystore.JKS"), Some(StoreType::Jks));
        assert_eq!(guess("k.p12"), Some(StoreType::Pkcs12));
        assert_eq!(guess("k.pfx"), Some(StoreType::Pkcs12));
        assert_eq!(guess("k.pem"), Some(StoreType::Pem));
        assert_eq!(guess("k.key"), None);
        assert_eq!(StoreType::from_name("pkcs12"), Some(StoreType::Pkcs12));
    }
}
