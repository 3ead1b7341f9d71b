//! An object store behind a private CA: reached when its CA is given,
//! refused when it is not (real TLS, moto over HTTPS).

use entente_e2e::S3Server;
use entente_s3::{ensure_bucket, BucketOptions, Connection};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};

/// A CA and a certificate for 127.0.0.1 it signed, written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct names: a leaf named like its issuer reads as self-signed.
        ca.distinguished_name = name("test object-store CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        leaf.distinguished_name = name("127.0.0.1");
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        Pki {
            ca_pem: ca_cert.pem(),
            dir,
        }
    }

    fn file(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

fn connection(s3: &S3Server, ca_pem: Option<&str>) -> Connection {
    Connection {
        endpoint: s3.endpoint(),
        region: s3.region().into(),
        force_path_style: true,
        access_key_id: s3.access_key_id().into(),
        secret_access_key: s3.secret_access_key().into(),
        ca_pem: ca_pem.map(|p| p.as_bytes().to_vec()),
    }
}

#[tokio::test]
async fn a_private_ca_is_trusted_only_when_given() {
    let pki = Pki::new();
    let s3 = S3Server::start_tls(
        &pki.file("cert.pem"),
        &pki.file("key.pem"),
        &pki.file("ca.pem"),
    )
    .unwrap();
    assert!(s3.endpoint().starts_with("https://"));

    let trusted = connection(&s3, Some(&pki.ca_pem)).client().unwrap();
    ensure_bucket(
        &trusted,
        s3.region(),
        "behind-a-private-ca",
        BucketOptions::default(),
    )
    .await
    .unwrap();

    let untrusted = connection(&s3, None).client().unwrap();
    let error = ensure_bucket(
        &untrusted,
        s3.region(),
        "behind-a-private-ca",
        BucketOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, entente_s3::Error::Request(_)), "{error}");
}
