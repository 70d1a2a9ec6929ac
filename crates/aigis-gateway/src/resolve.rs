//! The `resolve` stage: a pure lookup from the requested model to its route and upstreams,
//! checking that the endpoint family matches the upstreams' and that the requested completion
//! tokens are within the route's cap.

use crate::config::{Config, Route, UpstreamKind};
use crate::error::{Family, GatewayError};
use crate::parse::Parsed;

/// Where a request goes.
#[derive(Debug)]
pub struct Resolved<'c> {
    /// The route serving the model.
    pub route: &'c Route,
}

/// Finds the route for `parsed` and applies its request caps.
pub fn resolve<'c>(config: &'c Config, parsed: &Parsed) -> Result<Resolved<'c>, GatewayError> {
    let route = config
        .route_for(&parsed.model)
        .ok_or_else(|| GatewayError::ModelNotFound(parsed.model.clone()))?;
    let expected = match (parsed.endpoint.family(), config.route_kind(route)) {
        (Family::OpenAi, UpstreamKind::Anthropic) => Some("/v1/messages"),
        (Family::Anthropic, UpstreamKind::OpenAi) => {
            Some("the OpenAI endpoints (/v1/chat/completions, …)")
        }
        _ => None,
    };
    if let Some(expected) = expected {
        return Err(GatewayError::WrongEndpoint {
            model: parsed.model.clone(),
            expected,
        });
    }
    if let (Some(cap), Some((field, n))) = (route.max_tokens, parsed.requested_tokens())
        && n > cap
    {
        return Err(GatewayError::Invalid {
            param: field.to_owned(),
            message: format!(
                "`{field}` is {n}; route `{}` allows at most {cap}",
                route.name
            ),
        });
    }
    Ok(Resolved { route })
}
