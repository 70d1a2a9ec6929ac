//! mTLS: the principal a verified client certificate names. A SPIFFE ID (URI SAN
//! `spiffe://…`) is the principal id; otherwise the subject's common name (`mtls:CN`).
//! Organizational units become teams. rustls has already verified the chain against
//! `client_ca` before this runs.

use std::collections::BTreeMap;

use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::{Principal, PrincipalKind};

/// The principal of a verified client certificate (DER), or `None` if it names nobody.
pub fn principal(der: &[u8]) -> Option<Principal> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let spiffe = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|n| match n {
                GeneralName::URI(u) if u.starts_with("spiffe://") => Some((*u).to_owned()),
                _ => None,
            })
        });
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .find_map(|c| c.as_str().ok())
        .map(str::to_owned);
    let teams: Vec<String> = subject
        .iter_organizational_unit()
        .filter_map(|ou| ou.as_str().ok())
        .map(str::to_owned)
        .collect();
    let id = match (&spiffe, &cn) {
        (Some(s), _) => s.clone(),
        (None, Some(cn)) => format!("mtls:{cn}"),
        (None, None) => return None,
    };
    let mut attributes = BTreeMap::from([("subject".to_owned(), subject.to_string())]);
    if let Some(s) = &spiffe {
        let domain = s
            .trim_start_matches("spiffe://")
            .split('/')
            .next()
            .unwrap_or_default();
        attributes.insert("spiffe_id".into(), s.clone());
        attributes.insert("trust_domain".into(), domain.to_owned());
    }
    Some(Principal {
        name: cn.unwrap_or_else(|| id.clone()),
        id,
        kind: PrincipalKind::Service,
        teams,
        roles: Vec::new(),
        attributes,
        auth: "mtls",
    })
}
