//! The `resolve` stage: the requested model's route (a lookup in the config), checked once the
//! caller is authorized: the endpoint family must match the upstreams' and the requested
//! completion tokens must be within the route's cap.

use crate::config::{Config, Route, UpstreamKind};
use crate::error::{Family, GatewayError};
use crate::parse::Parsed;

/// Checks a request against the route serving its model: the endpoint family must match the
/// upstreams' and the requested completion tokens must be within the route's cap. Run after
/// authorization, so that only a caller allowed to use the model learns how its route is set up.
pub fn check(config: &Config, route: &Route, parsed: &Parsed) -> Result<(), GatewayError> {
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
    Ok(())
}
