//! `[server]`: listeners, request limits, trusted proxies and TLS.

use std::time::Duration;

use super::{Seg, Validator, key, raw};
use crate::config::{ClientAuth, IpRange, Level, RequestLimits, Server, TlsFiles};

impl Validator<'_> {
    pub(super) fn server(&mut self, s: raw::Server) -> Option<Server> {
        let at = [Seg::Key("server".into())];
        let listen = self.addr(&key(&at, "listen"), s.listen.as_deref(), "127.0.0.1:8080");
        let admin = self.addr(
            &key(&at, "admin_listen"),
            s.admin_listen.as_deref(),
            "127.0.0.1:9090",
        );
        if let (Some(l), Some(a)) = (listen, admin)
            && l == a
            && l.port() != 0
        {
            self.error(
                &key(&at, "admin_listen"),
                "the admin listener must not share the public address",
                Some("use another port, on 127.0.0.1 or a private interface".into()),
            );
        }
        let limits = RequestLimits {
            max_body: self.size(&key(&at, "max_body"), s.max_body.as_deref(), 4 << 20)?,
            max_header: self.size(&key(&at, "max_header"), s.max_header.as_deref(), 32 << 10)?,
            max_json_depth: self.positive(&key(&at, "max_json_depth"), s.max_json_depth, 64)?
                as usize,
            max_messages: self.positive(&key(&at, "max_messages"), s.max_messages, 1024)? as usize,
            max_string: self.size(&key(&at, "max_string"), s.max_string.as_deref(), 1 << 20)?,
            max_n: u64::from(self.positive(&key(&at, "max_n"), s.max_n, 8)?),
        };
        let tls = s.tls.and_then(|t| {
            let tat = key(&at, "tls");
            let cert = self.file(&key(&tat, "cert"), &t.cert);
            let key_file = self.file(&key(&tat, "key"), &t.key);
            let client_ca = t
                .client_ca
                .as_deref()
                .map(|c| self.file(&key(&tat, "client_ca"), c));
            let client_auth = match (t.client_auth.as_deref(), &client_ca) {
                (None | Some("off"), None) | (Some("off"), Some(_)) => ClientAuth::Off,
                (None | Some("optional"), Some(_)) => ClientAuth::Optional,
                (Some("required"), Some(_)) => ClientAuth::Required,
                (Some("optional" | "required"), None) => {
                    self.error(
                        &key(&tat, "client_ca"),
                        "client certificates need a `client_ca`",
                        Some("the PEM file of the CA(s) that issue client certificates".into()),
                    );
                    return None;
                }
                (Some(other), _) => {
                    self.error(
                        &key(&tat, "client_auth"),
                        format!("unknown client_auth `{other}`"),
                        Some("\"off\", \"optional\" or \"required\"".into()),
                    );
                    return None;
                }
            };
            let crls = t.client_crls.unwrap_or_default();
            if !crls.is_empty() && client_auth == ClientAuth::Off {
                self.error(
                    &key(&tat, "client_crls"),
                    "revocation lists need client certificates (`client_ca`, `client_auth`)",
                    None,
                );
                return None;
            }
            let client_crls = crls
                .iter()
                .enumerate()
                .map(|(i, c)| self.file(&key(&tat, &format!("client_crls[{i}]")), c))
                .collect::<Vec<_>>();
            Some(TlsFiles {
                cert: cert?,
                key: key_file?,
                client_ca: client_ca.flatten(),
                client_auth,
                client_crls: client_crls.into_iter().collect::<Option<_>>()?,
            })
        });
        Some(Server {
            listen: listen?,
            admin_listen: admin?,
            limits,
            max_concurrent: self.positive(&key(&at, "max_concurrent"), s.max_concurrent, 4096)?
                as usize,
            max_response: self.size(
                &key(&at, "max_response"),
                s.max_response.as_deref(),
                32 << 20,
            )?,
            shutdown_grace: self.duration(
                &key(&at, "shutdown_grace"),
                s.shutdown_grace.as_deref(),
                Duration::from_secs(30),
            )?,
            proxy_protocol: self.proxy_protocol(&at, s.proxy_protocol, s.trusted_proxies.as_ref()),
            trusted_proxies: self.ip_ranges(&key(&at, "trusted_proxies"), s.trusted_proxies)?,
            tls,
        })
    }

    /// `proxy_protocol`: only with `trusted_proxies`, the only peers its header is read from.
    fn proxy_protocol(
        &mut self,
        at: &[Seg],
        on: Option<bool>,
        trusted: Option<&Vec<String>>,
    ) -> bool {
        let on = on.unwrap_or(false);
        if on && trusted.is_none_or(Vec::is_empty) {
            self.error(
                &key(at, "proxy_protocol"),
                "proxy_protocol needs trusted_proxies: the header is read only from them",
                Some("trusted_proxies = [\"10.0.0.0/24\"] (your load balancers)".into()),
            );
        }
        on
    }

    /// IP ranges (`trusted_proxies`); every bad entry is reported.
    fn ip_ranges(&mut self, at: &[Seg], list: Option<Vec<String>>) -> Option<Vec<IpRange>> {
        let mut ranges = Vec::new();
        let mut ok = true;
        for (i, text) in list.unwrap_or_default().iter().enumerate() {
            let mut here = at.to_vec();
            here.push(Seg::Index(i));
            match IpRange::parse(text) {
                Ok(r) if r.is_broad() => {
                    self.push(
                        Level::Warning,
                        &here,
                        format!("`{text}` trusts X-Forwarded-For from a vast range: any client in it can choose the address it is known by"),
                        Some("list only your proxies' addresses or their subnet".into()),
                    );
                    ranges.push(r);
                }
                Ok(r) => ranges.push(r),
                Err(e) => {
                    self.error(
                        &here,
                        e,
                        Some("an address (\"10.0.0.7\") or a range (\"10.0.0.0/8\")".into()),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(ranges)
    }
}
