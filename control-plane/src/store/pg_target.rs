//! Where a PostgreSQL URL points and how to get there: plain TCP, or TLS
//! with the server's certificate and name verified.
//!
//! The URL takes libpq's words: `sslmode=require` (or `verify-ca`,
//! `verify-full`) asks for TLS and `sslrootcert=/path/ca.pem` adds a CA to
//! the system's roots. Novacula always verifies the server's certificate
//! chain and host name (libpq's `verify-full`): a database that holds every
//! API key's hash is not worth reaching through an unverified certificate.
//! `prefer` and `allow` are refused, since they fall back to plain TCP without
//! saying so; with no `sslmode` (or `disable`) the connection is plain TCP.

use super::{Result, StoreError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres_rustls::MakeRustlsConnect;

/// A parsed URL: the driver's settings, and the TLS connector when it asks for TLS.
#[derive(Clone)]
pub(super) struct Target {
    pub config: postgres::Config,
    pub tls: Option<MakeRustlsConnect>,
}

fn bad(message: String) -> StoreError {
    StoreError::Engine(message.into())
}

/// `url` without the TLS words the driver does not take, and those words'
/// values (`sslmode`, `sslrootcert`). Both of the driver's forms:
/// `postgres://...?a=b&c=d` and `host=... a=b`.
fn split(url: &str) -> (String, Option<String>, Option<String>) {
    let (base, query, sep) = match url.split_once("://") {
        Some(_) => match url.split_once('?') {
            Some((base, query)) => (base, query, "&"),
            None => (url, "", "&"),
        },
        None => ("", url, " "),
    };
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    for pair in query.split(sep).filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.to_string()),
            Some(("sslrootcert", v)) => root = Some(v.to_string()),
            _ => kept.push(pair),
        }
    }
    let rest = kept.join(sep);
    let driver = match (base, rest.is_empty()) {
        ("", _) => rest,
        (base, true) => base.to_string(),
        (base, false) => format!("{base}?{rest}"),
    };
    (driver, mode, root)
}

impl Target {
    pub fn parse(url: &str) -> Result<Target> {
        let (driver, mode, root) = split(url);
        let mut config: postgres::Config = driver.parse().map_err(|e| bad(format!("cannot read the PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // Notice a server that went away without closing the connection.
        config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        let tls = match mode.as_deref() {
            None | Some("disable") => {
                if root.is_some() {
                    return Err(bad("sslrootcert is given but sslmode is not require: add sslmode=require".into()));
                }
                config.ssl_mode(postgres::config::SslMode::Disable);
                None
            }
            Some("require" | "verify-ca" | "verify-full") => {
                config.ssl_mode(postgres::config::SslMode::Require);
                Some(connector(root.as_deref().map(Path::new))?)
            }
            Some(other) => {
                return Err(bad(format!(
                    "sslmode={other} is not supported: use sslmode=require (TLS, the server's certificate and name verified) or sslmode=disable"
                )))
            }
        };
        Ok(Target { config, tls })
    }

    /// The URL as it may be shown: hosts, ports, database and TLS, never the password.
    pub fn describe(url: &str) -> String {
        let (driver, mode, _) = split(url);
        let Ok(config) = driver.parse::<postgres::Config>() else { return "PostgreSQL (an unreadable URL)".into() };
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
            .map(|(h, p)| match h {
                postgres::config::Host::Tcp(h) => format!("{h}:{p}"),
                postgres::config::Host::Unix(path) => format!("{}:{p}", path.display()),
            })
            .collect();
        let tls = if matches!(mode.as_deref(), Some("require" | "verify-ca" | "verify-full")) { " (TLS)" } else { "" };
        format!("postgres://{}/{}{tls}", hosts.join(","), config.get_dbname().unwrap_or(""))
    }

    /// A connection, over TLS when asked.
    pub fn connect(&self) -> std::result::Result<postgres::Client, postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(postgres::NoTls),
        }
    }
}

/// rustls verifying against the system's roots plus the certificates in `ca`.
fn connector(ca: Option<&Path>) -> Result<MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped: a private CA may be all there is.
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(file) = ca {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(file).and_then(Iterator::collect).map_err(|e| bad(format!("cannot read sslrootcert {}: {e}", file.display())))?;
        if certs.is_empty() {
            return Err(bad(format!("sslrootcert {} holds no PEM certificate", file.display())));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad(format!("bad certificate in sslrootcert {}: {e}", file.display())))?;
        }
    }
    if roots.is_empty() {
        return Err(bad("no trusted root certificates for TLS to PostgreSQL: install ca-certificates or give sslrootcert".into()));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_words_are_taken_out_of_either_form() {
        let (driver, mode, root) = split("postgres://u:p@db:5433/n?sslmode=require&application_name=a&sslrootcert=/etc/ca.pem");
        assert_eq!((driver.as_str(), mode.as_deref(), root.as_deref()), ("postgres://u:p@db:5433/n?application_name=a", Some("require"), Some("/etc/ca.pem")));
        let (driver, mode, root) = split("postgres://db/n?sslmode=disable");
        assert_eq!((driver.as_str(), mode.as_deref(), root), ("postgres://db/n", Some("disable"), None));
        let (driver, mode, _) = split("host=db dbname=n sslmode=verify-full");
        assert_eq!((driver.as_str(), mode.as_deref()), ("host=db dbname=n", Some("verify-full")));
        assert_eq!(split("postgres://db/n").0, "postgres://db/n");
    }

    #[test]
    fn plain_unless_tls_is_asked_and_a_silent_fallback_is_refused() {
        assert!(Target::parse("postgres://db/n").unwrap().tls.is_none());
        assert!(Target::parse("postgres://db/n?sslmode=disable").unwrap().tls.is_none());
        assert!(Target::parse("postgres://db/n?sslmode=require").unwrap().tls.is_some());
        for mode in ["prefer", "allow", "bogus"] {
            let err = Target::parse(&format!("postgres://db/n?sslmode={mode}")).err().expect(mode).to_string();
            assert!(err.contains(&format!("sslmode={mode} is not supported")), "{err}");
        }
        let err = Target::parse("postgres://db/n?sslrootcert=/x.pem").err().unwrap().to_string();
        assert!(err.contains("add sslmode=require"), "{err}");
        let err = Target::parse("postgres://db/n?sslmode=require&sslrootcert=/nonexistent.pem").err().unwrap().to_string();
        assert!(err.contains("/nonexistent.pem"), "{err}");
    }

    #[test]
    fn shown_without_password_and_with_tls() {
        assert_eq!(Target::describe("postgres://novacula:secret@db.internal:5433/novacula?application_name=x"), "postgres://db.internal:5433/novacula");
        assert_eq!(Target::describe("host=db password=secret dbname=n"), "postgres://db:5432/n");
        assert!(!Target::describe("postgres://a:b@").contains('b'));
        assert_eq!(Target::describe("postgres://u:p@db/n?sslmode=require&sslrootcert=/ca.pem"), "postgres://db:5432/n (TLS)");
    }
}
