//! Validation of `[routes.model_check]`: paths resolved from the config's folder, exactly one
//! way to trust the signer, and what a failed check does. The model itself is checked at start
//! and at every reload (see `model_check.rs`), not here.

use std::path::PathBuf;

use super::{Seg, Validator, key, raw};
use crate::config::{DEFAULT_MODEL_SIGNATURE, Level, ModelCheckSpec, ModelTrust, OnModelFailure};

/// Builds the trust from its resolved files.
type TrustOf = fn(Vec<PathBuf>) -> ModelTrust;

impl Validator<'_> {
    pub(super) fn model_check(
        &mut self,
        route: &[Seg],
        m: raw::ModelCheck,
    ) -> Option<ModelCheckSpec> {
        let at = key(route, "model_check");
        let dir = self
            .base
            .join(m.dir.strip_prefix("file:").unwrap_or(&m.dir));
        if !dir.exists() {
            self.push(
                Level::Warning,
                &key(&at, "dir"),
                format!(
                    "`{}` does not exist: the route stays unroutable until a reload finds the model",
                    dir.display()
                ),
                Some("relative paths resolve from the config file's folder".into()),
            );
        }
        let signature = match &m.signature {
            Some(s) => self.base.join(s.strip_prefix("file:").unwrap_or(s)),
            None => dir.join(DEFAULT_MODEL_SIGNATURE),
        };
        let trust = self.model_trust(&at, m.keys, m.certificate_chain);
        let on_failure = match m.on_failure.as_deref() {
            None | Some("disable-route") => Some(OnModelFailure::DisableRoute),
            Some("refuse-start") => Some(OnModelFailure::RefuseStart),
            Some(other) => {
                self.error(
                    &key(&at, "on_failure"),
                    format!("unknown value `{other}`"),
                    Some("use \"disable-route\" (the default) or \"refuse-start\"".into()),
                );
                None
            }
        };
        Some(ModelCheckSpec {
            dir,
            signature,
            trust: trust?,
            require_pq: m.require_pq.unwrap_or(false),
            scan: m.scan.unwrap_or(true),
            on_failure: on_failure?,
        })
    }

    /// Exactly one of `keys` and `certificate_chain`, each a non-empty list of existing files.
    fn model_trust(
        &mut self,
        at: &[Seg],
        keys: Option<Vec<String>>,
        chain: Option<Vec<String>>,
    ) -> Option<ModelTrust> {
        let (name, files, make): (&str, Vec<String>, TrustOf) = match (keys, chain) {
            (Some(k), None) => ("keys", k, ModelTrust::Keys),
            (None, Some(c)) => ("certificate_chain", c, ModelTrust::CertificateChain),
            (Some(_), Some(_)) => {
                self.error(
                    at,
                    "set either `keys` or `certificate_chain`, not both",
                    Some("`keys` for the key method, `certificate_chain` for certificates".into()),
                );
                return None;
            }
            (None, None) => {
                self.error(
                    at,
                    "says nothing about who must have signed the model",
                    Some(
                        "add keys = [\"file:signer.pub\"] or certificate_chain = [\"file:ca.pem\"]"
                            .into(),
                    ),
                );
                return None;
            }
        };
        let at = key(at, name);
        if files.is_empty() {
            self.error(&at, "needs at least one file", None);
            return None;
        }
        let paths: Vec<Option<PathBuf>> = files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let mut segs = at.clone();
                segs.push(Seg::Index(i));
                self.file(&segs, f)
            })
            .collect();
        paths.into_iter().collect::<Option<Vec<_>>>().map(make)
    }
}
