//! The control plane reaches PostgreSQL over TLS when its URL says
//! `sslmode=require`, verifying the server's certificate (against
//! `sslrootcert` or the system's roots) and name, against a real server that
//! takes TLS connections only (started here, with a private CA's certificate).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use novacula_control_plane::store::{pg_server, Store, StoreError, ORGS};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// A private CA (its PEM) and a certificate with key (PEMs) it signed for `names`.
fn pki(names: &[&str]) -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "novacula test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(names.iter().map(ToString::to_string).collect::<Vec<_>>()).unwrap().signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

fn open(url: &str) -> Result<Store, StoreError> {
    // The driver blocks on a runtime of its own: not from a test's async context.
    let url = url.to_string();
    std::thread::spawn(move || Store::open_postgres(&url)).join().unwrap()
}

#[test]
fn tls_with_a_verified_certificate_and_nothing_else() {
    let (ca, cert, key) = pki(&["localhost"]);
    let server = match pg_server::start_tls_server(&cert, &key) {
        Ok(s) => s,
        Err(e) if !pg_server::required() => return eprintln!("skipped: {e}"),
        Err(e) => panic!("{e}"),
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();

    // TLS, the certificate verified against the given CA: records go in and come back.
    let store = open(&format!("{}?sslmode=require&sslrootcert={}", server.url, ca_file.display())).unwrap();
    store.write(|w| w.put(ORGS, "acme", &"kept".to_string())).unwrap();
    assert_eq!(store.read(|r| r.get::<String>(ORGS, "acme")).unwrap().as_deref(), Some("kept"));
    drop(store);

    // The server takes no plain connection: what worked above was TLS.
    let plain = open(&server.url).err().expect("a plain connection is refused").to_string();
    assert!(plain.contains("no pg_hba.conf entry") || plain.contains("SSL off"), "{plain}");

    // Without the CA, the system's roots do not vouch for the certificate: refused, not trusted blindly.
    let unverified = open(&format!("{}?sslmode=require", server.url)).err().expect("an unknown CA is refused").to_string();
    assert!(unverified.contains("UnknownIssuer") || unverified.contains("certificate"), "{unverified}");

    // The certificate names localhost; 127.0.0.1 is another name: refused (verify-full).
    let other_name = server.url.replace("@localhost:", "@127.0.0.1:");
    let mismatch = open(&format!("{other_name}?sslmode=verify-full&sslrootcert={}", ca_file.display())).err().expect("a wrong name is refused").to_string();
    assert!(mismatch.contains("NotValidForName") || mismatch.contains("name"), "{mismatch}");

    // A silent fallback to plain TCP is not offered.
    let prefer = open(&format!("{}?sslmode=prefer", server.url)).err().expect("prefer is refused").to_string();
    assert!(prefer.contains("sslmode=prefer is not supported"), "{prefer}");
    eprintln!("refusals:\n{plain}\n{unverified}\n{mismatch}\n{prefer}");
}
