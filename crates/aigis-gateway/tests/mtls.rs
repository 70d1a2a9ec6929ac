//! mTLS: client certificates from the configured CA identify callers (SPIFFE ID or subject);
//! certificates from any other CA never get through.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod support;

use std::path::Path;
use std::sync::Arc;

use aigis_mock_upstream::Behavior;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// Issues a leaf: (certificate DER, PKCS#8 key DER, PEMs).
    fn issue(
        &self,
        params: &CertificateParams,
    ) -> (
        CertificateDer<'static>,
        PrivateKeyDer<'static>,
        String,
        String,
    ) {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let der = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        (cert.der().clone(), der, cert.pem(), key.serialize_pem())
    }

    fn client(
        &self,
        cn: &str,
        ou: &str,
        spiffe: Option<&str>,
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        self.client_serial(cn, ou, spiffe, None)
    }

    fn client_serial(
        &self,
        cn: &str,
        ou: &str,
        spiffe: Option<&str>,
        serial: Option<u64>,
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.serial_number = serial.map(rcgen::SerialNumber::from);
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, ou);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if let Some(s) = spiffe {
            params.subject_alt_names = vec![SanType::URI(s.try_into().unwrap())];
        }
        let (cert, key, _, _) = self.issue(&params);
        (cert, key)
    }
}

fn setup(dir: &Path, ca: &Ca) {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let (_, _, cert, key) = ca.issue(&params);
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    std::fs::write(dir.join("clients-ca.pem"), ca.issuer.pem()).unwrap();
    std::fs::write(
        dir.join("mtls.cedar"),
        r#"@id("search-workloads")
permit (principal in Aigis::Team::"search", action == Aigis::Action::"chat", resource)
when { principal.auth == "mtls" && principal.hasTag("trust_domain") && principal.getTag("trust_domain") == "example.org" };
"#,
    )
    .unwrap();
}

/// Sends one chat request over TLS with an optional client certificate; returns the status
/// line, or the error that ended the connection.
async fn call(
    addr: std::net::SocketAddr,
    server_ca: &Ca,
    client: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
) -> Result<String, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_ca.issuer.der().clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert], key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let body = chat("m", false);
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    tls.read_to_string(&mut out)
        .await
        .map_err(|e| e.to_string())?;
    Ok(out.lines().next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn client_certificates_identify_workloads() {
    let d = tempdir("mtls");
    let ca = Ca::new("aigis test ca");
    setup(&d, &ca);
    let m = mock(Behavior::default()).await;
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[server.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n\
         client_ca = \"clients-ca.pem\"\nclient_auth = \"required\"\n[policy]\npolicies = [\"file:mtls.cedar\"]\n{}{}",
        upstream("m", &m.base_url(), ""),
        route("r", "[\"m\"]", "\"m\"")
    );
    let gw = gateway_in(&cfg, &d).await;
    let addr = gw.public_addr();

    let trusted = ca.client(
        "bot",
        "search",
        Some("spiffe://example.org/ns/search/sa/bot"),
    );
    assert_eq!(
        call(addr, &ca, Some(trusted)).await.unwrap(),
        "HTTP/1.1 200 OK"
    );

    // Same CA, but the policy wants the search team: another OU is denied.
    let other_team = ca.client(
        "bot",
        "finance",
        Some("spiffe://example.org/ns/finance/sa/bot"),
    );
    assert_eq!(
        call(addr, &ca, Some(other_team)).await.unwrap(),
        "HTTP/1.1 403 Forbidden"
    );

    // A certificate from an untrusted CA, and no certificate at all: the handshake fails.
    let rogue = Ca::new("rogue ca").client(
        "bot",
        "search",
        Some("spiffe://example.org/ns/search/sa/bot"),
    );
    assert!(
        call(addr, &ca, Some(rogue)).await.is_err(),
        "untrusted CA accepted"
    );
    assert!(
        call(addr, &ca, None).await.is_err(),
        "no certificate accepted with client_auth = required"
    );
    assert_eq!(
        m.requests().len(),
        1,
        "only the trusted, permitted workload reached the upstream"
    );
    std::fs::remove_dir_all(d).ok();
}

#[tokio::test]
async fn revoked_client_certificates_are_refused() {
    let d = tempdir("mtls-crl");
    let ca = Ca::new("aigis test ca");
    setup(&d, &ca);
    let crl = rcgen::CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2024, 1, 1),
        next_update: rcgen::date_time_ymd(2099, 1, 1),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from(666u64),
            revocation_time: rcgen::date_time_ymd(2025, 6, 1),
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer)
    .unwrap();
    std::fs::write(d.join("clients.crl.pem"), crl.pem().unwrap()).unwrap();
    let m = mock(Behavior::default()).await;
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[server.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n\
         client_ca = \"clients-ca.pem\"\nclient_auth = \"required\"\nclient_crls = [\"clients.crl.pem\"]\n\
         [policy]\npolicies = [\"file:mtls.cedar\"]\n{}{}",
        upstream("m", &m.base_url(), ""),
        route("r", "[\"m\"]", "\"m\"")
    );
    let gw = gateway_in(&cfg, &d).await;
    let spiffe = Some("spiffe://example.org/ns/search/sa/bot");
    let good = ca.client_serial("bot", "search", spiffe, Some(665));
    assert_eq!(
        call(gw.public_addr(), &ca, Some(good)).await.unwrap(),
        "HTTP/1.1 200 OK"
    );
    let revoked = ca.client_serial("bot", "search", spiffe, Some(666));
    assert!(
        call(gw.public_addr(), &ca, Some(revoked)).await.is_err(),
        "a revoked certificate was accepted"
    );
    assert_eq!(m.requests().len(), 1);
    // A file with no list in it (here a certificate) is refused, not read as "none revoked".
    std::fs::write(d.join("clients.crl.pem"), ca.issuer.pem()).unwrap();
    let loaded = aigis_gateway::config::parse(&cfg, &d, false).unwrap();
    let Err(err) = aigis_gateway::Gateway::start(loaded.config, None).await else {
        panic!("a gateway started with a CRL file holding no list");
    };
    assert!(err.to_string().contains("no `X509 CRL` block"), "{err}");
    std::fs::remove_dir_all(d).ok();
}
