//! Self-hosted models checked before the gateway routes to them (`[routes.model_check]`).
//!
//! The gateway does not know how to verify a model: whoever starts it passes a [`ModelCheck`]
//! (the `aigis` binary passes one backed by OpenSSF model signature verification and the
//! malicious-code scanner). Every route with a `model_check` is checked when a configuration
//! is built, at start and at every reload. A route whose model fails is not routable: its
//! requests get 503 `model_unverified` (or, with `on_failure = "refuse-start"`, the whole
//! configuration is refused). Without a [`ModelCheck`] every such route fails closed.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::config::{Config, ModelCheckSpec, OnModelFailure, Route};
use crate::error::GatewayError;
use crate::metrics::{Metrics, ModelCheckLabels};
use crate::server::StartError;

/// Verifies a route's self-hosted model (signature over every file, scan).
pub trait ModelCheck: Send + Sync {
    /// Checks the model `spec` describes. `Ok` carries a one-line summary for the log, `Err`
    /// the reason it failed; both go to the operator's log only, never to callers.
    ///
    /// # Errors
    /// Why the model must not be served.
    fn check(&self, spec: &ModelCheckSpec) -> Result<String, String>;
}

/// The routes of one configuration generation whose model failed its check.
#[derive(Debug, Default)]
pub(crate) struct Unverified(BTreeSet<String>);

impl Unverified {
    /// Refuses requests for `route` when its model did not verify.
    pub(crate) fn ensure_routable(&self, route: &Route, model: &str) -> Result<(), GatewayError> {
        if self.0.contains(&route.name) {
            return Err(GatewayError::ModelUnverified(model.to_owned()));
        }
        Ok(())
    }

    /// Whether `route` was disabled by its model check.
    pub(crate) fn contains(&self, route: &str) -> bool {
        self.0.contains(route)
    }
}

/// Checks every route of `config` that has a `model_check` (each distinct model once), logs
/// and counts the outcome, and returns the routes to disable. A failure under
/// `on_failure = "refuse-start"` refuses the configuration.
pub(crate) async fn check_routes(
    config: &Config,
    checker: Option<Arc<dyn ModelCheck>>,
    metrics: &Metrics,
) -> Result<Unverified, StartError> {
    let specs: Vec<(String, ModelCheckSpec)> = config
        .routes
        .iter()
        .filter_map(|r| r.model_check.clone().map(|m| (r.name.clone(), m)))
        .collect();
    if specs.is_empty() {
        return Ok(Unverified::default());
    }
    // Hashing a large model takes seconds: keep it off the async workers.
    let outcomes = tokio::task::spawn_blocking(move || run_checks(checker.as_deref(), specs))
        .await
        .map_err(|e| StartError::ModelCheck {
            route: String::new(),
            reason: format!("the model check stopped: {e}"),
        })?;
    let mut unverified = Unverified::default();
    for (route, spec, outcome) in outcomes {
        let result = if outcome.is_ok() {
            "verified"
        } else {
            "failed"
        };
        metrics
            .model_checks
            .get_or_create(&ModelCheckLabels {
                route: route.clone(),
                result,
            })
            .inc();
        match outcome {
            Ok(summary) => {
                tracing::info!(target: "aigis::security", route = %route, dir = %spec.dir.display(), "model check passed: {summary}");
            }
            Err(reason) if spec.on_failure == OnModelFailure::RefuseStart => {
                tracing::error!(target: "aigis::security", route = %route, dir = %spec.dir.display(), reason = %reason, "model check failed: configuration refused (on_failure = \"refuse-start\")");
                return Err(StartError::ModelCheck { route, reason });
            }
            Err(reason) => {
                tracing::error!(target: "aigis::security", route = %route, dir = %spec.dir.display(), reason = %reason, "model check failed: the route is disabled (its requests get 503 model_unverified) until a reload finds the model verified");
                unverified.0.insert(route);
            }
        }
    }
    Ok(unverified)
}

type Outcome = (String, ModelCheckSpec, Result<String, String>);

fn run_checks(
    checker: Option<&dyn ModelCheck>,
    specs: Vec<(String, ModelCheckSpec)>,
) -> Vec<Outcome> {
    let mut done: HashMap<ModelCheckSpec, Result<String, String>> = HashMap::new();
    specs
        .into_iter()
        .map(|(route, spec)| {
            let outcome = done
                .entry(spec.clone())
                .or_insert_with(|| match checker {
                    Some(c) => c.check(&spec),
                    None => Err(
                        "no model checker is installed in this gateway (fail closed); \
                                 run it with `aigis gateway`"
                            .into(),
                    ),
                })
                .clone();
            (route, spec, outcome)
        })
        .collect()
}
