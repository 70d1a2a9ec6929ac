//! TLS to PostgreSQL as libpq does it: the URL's `sslmode` decides whether the server's
//! certificate is checked (see the parent module).

/// How a PostgreSQL connection is secured, from the URL's `sslmode`, as libpq reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// `disable`, `prefer` (libpq's default) or `require`: encrypted when the server offers it
    /// (`require`: or not at all), the certificate not checked. Stops eavesdroppers, not an
    /// active attacker.
    Unverified,
    /// `verify-full` (and `verify-ca`, which here checks the server's name too): the server's
    /// certificate must chain to a trusted root and name the host.
    Verified,
}

/// A URL to hand to `tokio_postgres` (whose `sslmode` knows only `disable`, `prefer` and
/// `require`: a `verify-*` mode becomes `require`), the connector that makes its TLS
/// connections, and the mode. Roots for `verify-*`: the CA certificates of the PEM file
/// `root_cert` (pass `PGSSLROOTCERT`, as libpq reads it) or else the system's.
pub fn tls_connector(
    url: &str,
    root_cert: Option<&std::path::Path>,
) -> Result<(String, tokio_postgres_rustls::MakeRustlsConnect, SslMode), String> {
    let (url, mode) = match ["verify-full", "verify-ca"]
        .iter()
        .find_map(|m| url.find(&format!("sslmode={m}")).map(|at| (at, m.len())))
    {
        Some((at, len)) => {
            let value = at + "sslmode=".len();
            let url = format!("{}require{}", &url[..value], &url[value + len..]);
            (url, SslMode::Verified)
        }
        None => (url.to_owned(), SslMode::Unverified),
    };
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = match mode {
        SslMode::Verified => builder
            .with_root_certificates(roots(root_cert)?)
            .with_no_client_auth(),
        SslMode::Unverified => builder
            .dangerous()
            .with_custom_certificate_verifier(std::sync::Arc::new(Unverified(provider)))
            .with_no_client_auth(),
    };
    Ok((
        url,
        tokio_postgres_rustls::MakeRustlsConnect::new(config),
        mode,
    ))
}

fn roots(root_cert: Option<&std::path::Path>) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject as _};
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| format!("root certificate file {shown}: {e}"))?;
            if roots.add_parsable_certificates(certs).0 == 0 {
                return Err(format!(
                    "root certificate file {shown}: no CA certificate in it"
                ));
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    Ok(roots)
}

/// libpq's `prefer`/`require`: any certificate, but the handshake's signatures are still
/// checked, so the session is encrypted to whoever holds the certificate's key.
#[derive(Debug)]
struct Unverified(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
