//! Validation of `[ledger]`.

use std::time::Duration;

use super::{Seg, Validator, key, raw};
use crate::config::Level;
use crate::config::ledger::{LedgerConfig, LedgerOnError, LedgerStore};

/// Default spool bound.
const DEFAULT_SPOOL_MAX: usize = 1 << 30;

impl Validator<'_> {
    pub(super) fn ledger(
        &mut self,
        l: raw::Ledger,
        cluster: Option<&raw::Cluster>,
    ) -> Option<LedgerConfig> {
        let at = [Seg::Key("ledger".into())];
        let store_text = match (l.store, cluster.and_then(|c| c.postgres.clone())) {
            (Some(s), _) => s,
            (None, Some(pg)) => pg,
            (None, None) => {
                self.error(
                    &key(&at, "store"),
                    "missing `store`",
                    Some("store = \"sqlite:ledger.db\" (or postgres://… for a fleet)".into()),
                );
                return None;
            }
        };
        let store = self.ledger_store(store_text, cluster.is_some())?;
        let signing_key = match l.signing_key.strip_prefix("file:") {
            Some(path) => {
                let path = self.base.join(path);
                if !path.exists() {
                    self.push(
                        Level::Warning,
                        &key(&at, "signing_key"),
                        format!("`{}` does not exist: the gateway creates it at first start", path.display()),
                        Some("create it explicitly with `aigis audit init --key PATH --origin NAME` to choose the log's name".into()),
                    );
                }
                Some(path)
            }
            None => {
                self.error(
                    &key(&at, "signing_key"),
                    "the ledger key must be a `file:` reference",
                    Some("create it with `aigis audit init --key ledger.key`, then signing_key = \"file:ledger.key\"".into()),
                );
                None
            }
        };
        match l.content.as_deref() {
            None | Some("hash") => {}
            Some("encrypted") => self.error(
                &key(&at, "content"),
                "content = \"encrypted\" is not available in this version; content is never stored in plaintext",
                Some("use content = \"hash\" (keyed digests only, the default)".into()),
            ),
            Some(other) => self.error(
                &key(&at, "content"),
                format!("unknown content mode `{other}`"),
                Some("\"hash\" (default) or \"encrypted\"".into()),
            ),
        }
        let on_store_error = match l.on_store_error.as_deref() {
            None | Some("spool") => LedgerOnError::Spool,
            Some("fail-closed") => LedgerOnError::FailClosed,
            Some(other) => {
                self.error(
                    &key(&at, "on_store_error"),
                    format!("unknown value `{other}`"),
                    Some("\"spool\" (default) or \"fail-closed\"".into()),
                );
                return None;
            }
        };
        let checkpoint_every = self.duration(
            &key(&at, "checkpoint_every"),
            l.checkpoint_every.as_deref(),
            Duration::from_secs(1),
        )?;
        if checkpoint_every.is_zero() {
            self.error(
                &key(&at, "checkpoint_every"),
                "must be greater than zero",
                None,
            );
            return None;
        }
        let spool_max = self.size(
            &key(&at, "spool_max"),
            l.spool_max.as_deref(),
            DEFAULT_SPOOL_MAX,
        )?;
        let signing_key = signing_key?;
        let spool = match &store {
            LedgerStore::Sqlite(p) => {
                let mut s = p.clone().into_os_string();
                s.push(".spool");
                s.into()
            }
            LedgerStore::Postgres(_) => {
                let mut s = signing_key.clone().into_os_string();
                s.push(".spool");
                s.into()
            }
        };
        Some(LedgerConfig {
            store,
            signing_key,
            checkpoint_every,
            on_store_error,
            spool_max: spool_max as u64,
            spool,
        })
    }

    fn ledger_store(&mut self, store_text: String, fleet: bool) -> Option<LedgerStore> {
        let at = [Seg::Key("ledger".into())];
        let store = if let Some(path) = store_text.strip_prefix("sqlite:") {
            if fleet {
                self.error(
                    &key(&at, "store"),
                    "a sqlite: ledger cannot be shared by a fleet ([cluster] is set)",
                    Some("use store = \"postgres://…\" so every gateway appends to one log".into()),
                );
                return None;
            }
            if path.is_empty() {
                self.error(&key(&at, "store"), "`sqlite:` needs a path", None);
                return None;
            }
            LedgerStore::Sqlite(self.base.join(path))
        } else if store_text.starts_with("postgres://") || store_text.starts_with("postgresql://") {
            LedgerStore::Postgres(store_text)
        } else {
            self.error(
                &key(&at, "store"),
                "unsupported ledger store",
                Some("use \"sqlite:PATH\" or \"postgres://USER@HOST/DB\"".into()),
            );
            return None;
        };
        Some(store)
    }
}
