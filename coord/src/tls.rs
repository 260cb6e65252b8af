//! `TlsConfig`: the `ssl.*` settings of `zoo.cfg` for `secureClientPort`, and the rustls
//! server configuration built from them, as ZooKeeper 3.8's Netty connection factory and
//! `X509Util` read them.
//!
//! ```text
//! ssl.keyStore.location/.password/.type      the server's key and chain (see keystore)
//! ssl.trustStore.location/.password/.type    the CAs that sign client certificates
//! ssl.clientAuth        = need (default) | want | none
//! ssl.protocol          = TLSv1.3 (default) | TLSv1.2
//! ssl.enabledProtocols  = comma list; default TLSv1.3,TLSv1.2 for TLSv1.3, else the protocol
//! ssl.ciphersuites      = ignored with a warning (rustls' own suites, all AEAD)
//! ```
//!
//! Client certificates are checked by rustls' WebPKI verifier, except X.509 version 1
//! certificates, which WebPKI refuses and Java accepts (kazoo's own test suite makes them):
//! those must be signed directly by a trusted certificate, within their validity, and are
//! checked here with the same signature algorithms. Everything is built when the server
//! starts, so an unusable keystore stops it with an [`Error::Tls`].

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::der::{self, Der, TAG_BIT_STRING, TAG_CONTEXT_0, TAG_INTEGER};
use crate::error::{Error, Result};
use crate::keystore::StoreConfig;

/// `ssl.clientAuth`: whether a client must show a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    None,
    Want,
    #[default]
    Need,
}

impl ClientAuth {
    /// ZooKeeper's `ClientAuth.fromPropertyValue`: empty is `need`, case-insensitive.
    #[must_use]
    pub fn from_name(name: &str) -> Option<ClientAuth> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "need" => Some(ClientAuth::Need),
            "want" => Some(ClientAuth::Want),
            "none" => Some(ClientAuth::None),
            _ => None,
        }
    }
}

/// The `ssl.*` settings for the secure client port.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    pub key_store: Option<StoreConfig>,
    pub trust_store: Option<StoreConfig>,
    pub client_auth: ClientAuth,
    /// `ssl.protocol`.
    pub protocol: Option<String>,
    /// `ssl.enabledProtocols`, split on commas.
    pub enabled_protocols: Option<Vec<String>>,
    /// `ssl.ciphersuites` (ignored: rustls chooses among its own suites).
    pub cipher_suites: Option<String>,
}

impl TlsConfig {
    /// The protocol names to enable, as ZooKeeper derives them.
    fn protocol_names(&self) -> Vec<String> {
        if let Some(enabled) = &self.enabled_protocols {
            return enabled.clone();
        }
        match self.protocol.as_deref().unwrap_or("TLSv1.3") {
            "TLSv1.3" => vec!["TLSv1.3".to_owned(), "TLSv1.2".to_owned()],
            other => vec![other.to_owned()],
        }
    }

    /// The rustls versions for the protocol names; other names are reported in `warnings`.
    fn versions(
        &self,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<&'static rustls::SupportedProtocolVersion>> {
        let mut versions = Vec::new();
        for name in self.protocol_names() {
            match name.as_str() {
                "TLSv1.3" => versions.push(&rustls::version::TLS13),
                "TLSv1.2" => versions.push(&rustls::version::TLS12),
                other => warnings.push(format!("TLS protocol {other} is not supported; ignored")),
            }
        }
        if versions.is_empty() {
            return Err(Error::Tls(format!(
                "no supported protocol in {:?} (TLSv1.2 and TLSv1.3 are)",
                self.protocol_names()
            )));
        }
        Ok(versions)
    }

    /// Builds the rustls configuration: loads the keystore and trust store, checks the
    /// key matches its certificate. Returns it with warnings for the caller to log.
    ///
    /// # Errors
    /// [`Error::Tls`]: no keystore, an unusable keystore or trust store, a key that does not
    /// match its certificate, no protocol rustls supports.
    pub fn server_config(&self) -> Result<(Arc<rustls::ServerConfig>, Vec<String>)> {
        let mut warnings = Vec::new();
        if self.cipher_suites.is_some() {
            warnings.push("ssl.ciphersuites is ignored: rustls' own AEAD suites are used".into());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = self.versions(&mut warnings)?;
        let key_store = self.key_store.as_ref().ok_or_else(|| {
            Error::Tls("secureClientPort is set but ssl.keyStore.location is not".to_owned())
        })?;
        let certified = certified_key(key_store, &provider)?;
        let verifier = self.client_verifier(&provider)?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map_err(|error| Error::Tls(format!("protocols: {error}")))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(Arc::new(certified))));
        Ok((Arc::new(config), warnings))
    }

    fn client_verifier(
        &self,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Arc<dyn ClientCertVerifier>> {
        if self.client_auth == ClientAuth::None {
            return Ok(WebPkiClientVerifier::no_client_auth());
        }
        let trust_store = self.trust_store.as_ref().ok_or_else(|| {
            Error::Tls(
                "ssl.clientAuth is need or want but ssl.trustStore.location is not set".into(),
            )
        })?;
        let trusted = trust_store.load_trusted()?;
        let mut roots = rustls::RootCertStore::empty();
        let mut anchors = Vec::new();
        for cert in &trusted {
            roots.add(cert.clone()).map_err(|error| {
                Error::Tls(format!("{}: unusable CA: {error}", trust_store.location.display()))
            })?;
            let parsed = Certificate::parse(cert).map_err(|error| {
                Error::Tls(format!("{}: {error}", trust_store.location.display()))
            })?;
            anchors.push(Anchor { subject: parsed.subject.to_vec(), spki: parsed.spki.to_vec() });
        }
        let mut builder =
            WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone());
        if self.client_auth == ClientAuth::Want {
            builder = builder.allow_unauthenticated();
        }
        let webpki = builder.build().map_err(|error| Error::Tls(format!("verifier: {error}")))?;
        let algorithms = provider.signature_verification_algorithms;
        let mandatory = self.client_auth == ClientAuth::Need;
        Ok(Arc::new(ClientVerifier { webpki, anchors, algorithms, mandatory }))
    }
}

/// The keystore's chain and key, checked to belong together.
fn certified_key(key_store: &StoreConfig, provider: &CryptoProvider) -> Result<CertifiedKey> {
    let identity = key_store.load_identity()?;
    let where_ = key_store.location.display();
    let key = provider
        .key_provider
        .load_private_key(identity.key)
        .map_err(|error| Error::Tls(format!("{where_}: unusable private key: {error}")))?;
    let certificate = Certificate::parse(&identity.chain[0])
        .map_err(|error| Error::Tls(format!("{where_}: {error}")))?;
    if key.public_key().is_some_and(|spki| spki.as_ref() != certificate.spki) {
        return Err(Error::Tls(format!(
            "{where_}: the private key does not match its certificate"
        )));
    }
    Ok(CertifiedKey::new(identity.chain, key))
}

/// A trusted certificate, as the version 1 check uses it.
#[derive(Debug)]
struct Anchor {
    /// The subject `Name`, DER (tag and length included).
    subject: Vec<u8>,
    /// The `SubjectPublicKeyInfo`, DER.
    spki: Vec<u8>,
}

/// The fields of an X.509 certificate this module reads.
#[derive(Debug)]
struct Certificate<'a> {
    /// 0 for version 1, 2 for version 3.
    version: u8,
    tbs: &'a [u8],
    /// The `signatureAlgorithm` `AlgorithmIdentifier`'s contents.
    signature_algorithm: &'a [u8],
    signature: &'a [u8],
    issuer: &'a [u8],
    subject: &'a [u8],
    not_before_s: u64,
    not_after_s: u64,
    spki: &'a [u8],
}

impl<'a> Certificate<'a> {
    fn parse(der: &'a [u8]) -> std::result::Result<Certificate<'a>, String> {
        let mut outer = Der::new(der);
        let mut certificate = outer.sequence("certificate")?;
        let tbs_element = certificate.expect(der::TAG_SEQUENCE, "tbsCertificate")?;
        let signature_algorithm =
            certificate.expect(der::TAG_SEQUENCE, "signatureAlgorithm")?.contents;
        let signature = certificate.expect(TAG_BIT_STRING, "signature")?.contents;
        let signature = signature.split_first().map_or(&[][..], |(_, bits)| bits);
        let mut tbs = Der::new(tbs_element.contents);
        let mut version = 0;
        if tbs.peek_tag() == Some(TAG_CONTEXT_0) {
            let mut explicit = Der::new(tbs.any()?.contents);
            let number = explicit.expect(TAG_INTEGER, "version")?.contents;
            version = match number {
                [v @ 0..=2] => *v,
                _ => return Err(format!("certificate version {number:?} is unknown")),
            };
        }
        tbs.expect(TAG_INTEGER, "serial number")?;
        tbs.sequence("signature")?;
        let issuer = tbs.expect(der::TAG_SEQUENCE, "issuer")?.encoded;
        let mut validity = tbs.sequence("validity")?;
        let not_before_s = der::time_seconds(&validity.any()?)?;
        let not_after_s = der::time_seconds(&validity.any()?)?;
        let subject = tbs.expect(der::TAG_SEQUENCE, "subject")?.encoded;
        let spki = tbs.expect(der::TAG_SEQUENCE, "subjectPublicKeyInfo")?.encoded;
        Ok(Certificate {
            version,
            tbs: tbs_element.encoded,
            signature_algorithm,
            signature,
            issuer,
            subject,
            not_before_s,
            not_after_s,
            spki,
        })
    }
}

/// The `SubjectPublicKeyInfo` DER of certificate `der`.
///
/// # Errors
/// A certificate that does not parse.
pub(crate) fn certificate_spki(der: &[u8]) -> std::result::Result<&[u8], String> {
    Ok(Certificate::parse(der)?.spki)
}

/// A `SubjectPublicKeyInfo`'s algorithm (contents) and key bits.
fn split_spki(spki: &[u8]) -> std::result::Result<(&[u8], &[u8]), String> {
    let mut info = Der::new(spki).sequence("subjectPublicKeyInfo")?;
    let algorithm = info.expect(der::TAG_SEQUENCE, "key algorithm")?.contents;
    let key = info.expect(TAG_BIT_STRING, "public key")?.contents;
    Ok((algorithm, key.split_first().map_or(&[][..], |(_, bits)| bits)))
}

/// Checks `signature` over `message` with the key of `spki`, by any of `algorithms` made for
/// that kind of key (and, when given, that signature algorithm identifier).
fn verify_with_spki(
    spki: &[u8],
    algorithms: &[&'static dyn rustls::pki_types::SignatureVerificationAlgorithm],
    signature_algorithm: Option<&[u8]>,
    message: &[u8],
    signature: &[u8],
) -> std::result::Result<(), CertificateError> {
    let (key_algorithm, key) = split_spki(spki).map_err(|_| CertificateError::BadEncoding)?;
    let fits = |algorithm: &&&'static dyn rustls::pki_types::SignatureVerificationAlgorithm| {
        algorithm.public_key_alg_id().as_ref() == key_algorithm
            && signature_algorithm.is_none_or(|id| algorithm.signature_alg_id().as_ref() == id)
    };
    let mut fitting = algorithms.iter().filter(fits);
    if fitting.any(|algorithm| algorithm.verify_signature(key, message, signature).is_ok()) {
        Ok(())
    } else {
        Err(CertificateError::BadSignature)
    }
}

/// Whether `scheme` may sign in TLS 1.2 but not in TLS 1.3 (RFC 8446 4.2.3: PKCS#1 v1.5 and
/// SHA-1 schemes).
fn tls12_only(scheme: SignatureScheme) -> bool {
    matches!(
        scheme,
        SignatureScheme::RSA_PKCS1_SHA1
            | SignatureScheme::ECDSA_SHA1_Legacy
            | SignatureScheme::RSA_PKCS1_SHA256
            | SignatureScheme::RSA_PKCS1_SHA384
            | SignatureScheme::RSA_PKCS1_SHA512
    )
}

/// WebPKI for version 3 client certificates, this module's check for version 1 ones.
struct ClientVerifier {
    webpki: Arc<dyn ClientCertVerifier>,
    anchors: Vec<Anchor>,
    algorithms: WebPkiSupportedAlgorithms,
    mandatory: bool,
}

impl fmt::Debug for ClientVerifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ClientVerifier")
            .field("anchors", &self.anchors.len())
            .field("mandatory", &self.mandatory)
            .finish()
    }
}

/// A parsed certificate when it is version 1 (`None` for others and for what does not parse,
/// which WebPKI then judges).
fn version_1<'a>(cert: &'a CertificateDer<'_>) -> Option<Certificate<'a>> {
    Certificate::parse(cert.as_ref()).ok().filter(|parsed| parsed.version == 0)
}

impl ClientVerifier {
    fn verify_version_1(
        &self,
        cert: &Certificate<'_>,
        now: UnixTime,
    ) -> std::result::Result<(), CertificateError> {
        let now_s = now.as_secs();
        if now_s < cert.not_before_s {
            return Err(CertificateError::NotValidYet);
        }
        if now_s > cert.not_after_s {
            return Err(CertificateError::Expired);
        }
        let mut outcome = Err(CertificateError::UnknownIssuer);
        for anchor in self.anchors.iter().filter(|anchor| anchor.subject == cert.issuer) {
            outcome = verify_with_spki(
                &anchor.spki,
                self.algorithms.all,
                Some(cert.signature_algorithm),
                cert.tbs,
                cert.signature,
            );
            if outcome.is_ok() {
                break;
            }
        }
        outcome
    }

    fn verify_signature(
        &self,
        message: &[u8],
        cert: &Certificate<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = self
            .algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map(|(_, algorithms)| *algorithms)
            .ok_or(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme)?;
        verify_with_spki(cert.spki, algorithms, None, message, dss.signature())?;
        Ok(HandshakeSignatureValid::assertion())
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.webpki.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        match version_1(end_entity) {
            Some(cert) => {
                self.verify_version_1(&cert, now)?;
                Ok(ClientCertVerified::assertion())
            }
            None => self.webpki.verify_client_cert(end_entity, intermediates, now),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        match version_1(cert) {
            Some(parsed) => self.verify_signature(message, &parsed, dss),
            None => self.webpki.verify_tls12_signature(message, cert, dss),
        }
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        match version_1(cert) {
            Some(parsed) if !tls12_only(dss.scheme) => self.verify_signature(message, &parsed, dss),
            Some(_) => Err(rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into()),
            None => self.webpki.verify_tls13_signature(message, cert, dss),
        }
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_store(dir: &std::path::Path) -> StoreConfig {
        let location = dir.join("server.jks");
        let output = std::process::Command::new("keytool")
            .args(["-genkeypair", "-storetype", "JKS", "-storepass", "pw1234", "-keypass"])
            .args(["pw1234", "-alias", "server", "-keyalg", "RSA", "-dname", "CN=localhost"])
            .arg("-keystore")
            .arg(&location)
            .output()
            .unwrap_or_else(|error| panic!("keytool (a JDK) is needed: {error}"));
        assert!(output.status.success(), "{output:?}");
        StoreConfig { location, password: Some("pw1234".into()), store_type: None }
    }

    #[test]
    fn settings_rustls_cannot_honour_are_errors_or_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let store = key_store(dir.path());
        let base = TlsConfig {
            key_store: Some(store.clone()),
            client_auth: ClientAuth::None,
            ..TlsConfig::default()
        };
        let (_, warnings) = base.server_config().unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let old = TlsConfig { protocol: Some("TLSv1.1".into()), ..base.clone() };
        assert!(old.server_config().unwrap_err().to_string().contains("no supported protocol"));
        let mixed = TlsConfig {
            enabled_protocols: Some(vec!["TLSv1.1".into(), "TLSv1.2".into()]),
            cipher_suites: Some("TLS_AES_128_GCM_SHA256".into()),
            ..base.clone()
        };
        let (_, warnings) = mixed.server_config().unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        let need = TlsConfig { client_auth: ClientAuth::Need, ..base.clone() };
        assert!(need.server_config().unwrap_err().to_string().contains("ssl.trustStore"));
        let trusting = TlsConfig { trust_store: Some(store), ..need };
        trusting.server_config().unwrap();
        let keyless = TlsConfig { key_store: None, ..base };
        assert!(keyless.server_config().unwrap_err().to_string().contains("ssl.keyStore"));
    }

    #[test]
    fn client_auth_names_are_zookeepers() {
        assert_eq!(ClientAuth::from_name("NEED"), Some(ClientAuth::Need));
        assert_eq!(ClientAuth::from_name(""), Some(ClientAuth::Need));
        assert_eq!(ClientAuth::from_name("Want"), Some(ClientAuth::Want));
        assert_eq!(ClientAuth::from_name("none"), Some(ClientAuth::None));
        assert_eq!(ClientAuth::from_name("optional"), None);
    }
}
