//! The `authorize` stage: Cedar policies over the built-in schema (`schema.cedarschema`),
//! validated at load, **default deny**. Policies are indexed by action so a request evaluates
//! only those that can apply to it. The decision carries the ids of the policies that
//! determined it (a policy's `@id("…")` annotation, else `FILE:N`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId,
    EntityTypeName, EntityUid, PolicyId, PolicySet, PrincipalConstraint, Request,
    RestrictedExpression, Schema, ValidationMode, Validator,
};

use crate::identify::Principal;

/// The schema every policy is validated against.
pub const SCHEMA: &str = include_str!("schema.cedarschema");

/// Assembled policy subsets kept at most (cleared in bulk beyond it).
const MAX_ASSEMBLED: usize = 4096;

/// One action's policies, split by what their principal constraint names.
#[derive(Default)]
struct ActionIndex {
    /// No principal constraint (or only a type): may apply to anyone.
    any: Vec<cedar_policy::Policy>,
    /// `principal == X`, `principal in X`: apply only when the principal is X or in X.
    by_principal: HashMap<EntityUid, Vec<cedar_policy::Policy>>,
}

/// The actions a request can ask for.
pub const MODEL_ACTIONS: &[&str] = &["chat", "complete", "embed", "responses"];

/// A policy file that failed to load, with Cedar's diagnostic.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct PolicyError {
    /// The file.
    pub file: String,
    /// What Cedar said.
    pub message: String,
}

/// Validated policies, indexed by action.
pub struct Policies {
    schema: Schema,
    by_action: HashMap<String, ActionIndex>,
    /// Policy sets already assembled for an (action, principal groups) combination.
    assembled: Memo<(String, Vec<EntityUid>), Arc<PolicySet>>,
    /// Principal and resource entities, by everything policies can see of them.
    entities: Memo<String, Arc<Entities>>,
    /// Request contexts, by their inputs.
    contexts: Memo<(IpAddr, &'static str, u64, bool, i64), Arc<Context>>,
    count: usize,
    authorizer: Authorizer,
}

/// The resource of a model request.
#[derive(Debug, Clone)]
pub struct ModelResource<'a> {
    /// The requested model name.
    pub model: &'a str,
    /// The route that serves it.
    pub route: &'a str,
    /// The upstream kind.
    pub provider: &'a str,
    /// The route's data classification.
    pub classification: &'a str,
    /// The route's tags.
    pub tags: &'a [String],
}

/// What a request looked like, for `context`.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts {
    /// Caller address.
    pub source_ip: IpAddr,
    /// `public` or `admin`.
    pub listener: &'static str,
    /// Requested completion tokens (0 = not given).
    pub max_tokens: u64,
    /// Streamed?
    pub stream: bool,
}

/// Proof that the `authorize` stage allowed a request. Only this module can build it, and
/// `forward` takes it by value, so a path that skips authorization does not compile.
#[derive(Debug)]
#[expect(
    clippy::manual_non_exhaustive,
    reason = "the private field is the point: only this module can build it"
)]
pub struct Authorized {
    /// The decision that allowed the request.
    pub decision: Decision,
    _private: (),
}

/// The `authorize` stage. `open` is true when neither `[identity]` nor `[policy]` is
/// configured: everything is allowed, as the startup log says. Otherwise the policies decide,
/// and no policies means deny.
pub fn authorize(
    policies: Option<&Policies>,
    open: bool,
    check: impl FnOnce(&Policies) -> Decision,
) -> Result<Authorized, Decision> {
    let decision = match policies {
        Some(p) => check(p),
        None if open => Decision {
            allowed: true,
            policies: vec!["open-mode".into()],
            errors: Vec::new(),
        },
        None => Decision {
            allowed: false,
            policies: Vec::new(),
            errors: Vec::new(),
        },
    };
    if decision.allowed {
        Ok(Authorized {
            decision,
            _private: (),
        })
    } else {
        Err(decision)
    }
}

/// An authorization decision and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed?
    pub allowed: bool,
    /// The policies that determined it (empty when nothing permitted: default deny).
    pub policies: Vec<String>,
    /// Policy evaluation errors (a policy that errors does not apply).
    pub errors: Vec<String>,
}

fn type_name(name: &str) -> EntityTypeName {
    // The names are constants of the built-in schema.
    EntityTypeName::from_str(name).unwrap_or_else(|_| unreachable_type())
}

#[expect(
    clippy::panic,
    reason = "only reachable if the built-in schema's type names are invalid"
)]
fn unreachable_type() -> EntityTypeName {
    panic!("built-in Cedar type names are valid")
}

fn uid(ty: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name(ty), EntityId::new(id))
}

/// The action entity for `name`.
pub fn action(name: &str) -> EntityUid {
    uid("Aigis::Action", name)
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Policies({} policies)", self.count)
    }
}

impl Policies {
    /// Parses and validates policy files (`name`, text) against the schema.
    pub fn load(files: &[(String, String)]) -> Result<Self, Vec<PolicyError>> {
        let fail = |file: &str, message: String| PolicyError {
            file: file.to_owned(),
            message,
        };
        let schema = Schema::from_cedarschema_str(SCHEMA)
            .map(|(s, _)| s)
            .map_err(|e| vec![fail("<built-in schema>", e.to_string())])?;
        let mut all = PolicySet::new();
        let mut errors = Vec::new();
        for (file, text) in files {
            let set = match PolicySet::from_str(text) {
                Ok(s) => s,
                Err(e) => {
                    errors.push(fail(file, e.to_string()));
                    continue;
                }
            };
            for (n, policy) in set.policies().enumerate() {
                let id = policy
                    .annotation("id")
                    .map_or_else(|| format!("{file}:{n}"), str::to_owned);
                if let Err(e) = all.add(policy.new_id(PolicyId::new(&id))) {
                    errors.push(fail(file, format!("policy {id}: {e}")));
                }
            }
            if set.templates().next().is_some() {
                errors.push(fail(file, "policy templates are not supported".into()));
            }
        }
        let result = Validator::new(schema.clone()).validate(&all, ValidationMode::Strict);
        for e in result.validation_errors() {
            errors.push(fail(e.policy_id().as_ref(), e.to_string()));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut by_action: HashMap<String, ActionIndex> = HashMap::new();
        let names: Vec<&str> = MODEL_ACTIONS
            .iter()
            .copied()
            .chain(["models:list", "admin:keys", "admin:reload", "admin:status"])
            .collect();
        for policy in all.policies() {
            for name in &names {
                let applies = match policy.action_constraint() {
                    ActionConstraint::Any => true,
                    ActionConstraint::Eq(a) => a == action(name),
                    ActionConstraint::In(list) => list.contains(&action(name)),
                };
                if !applies {
                    continue;
                }
                let index = by_action.entry((*name).to_owned()).or_default();
                match policy.principal_constraint() {
                    PrincipalConstraint::Eq(p)
                    | PrincipalConstraint::In(p)
                    | PrincipalConstraint::IsIn(_, p) => {
                        index
                            .by_principal
                            .entry(p)
                            .or_default()
                            .push(policy.clone());
                    }
                    PrincipalConstraint::Any | PrincipalConstraint::Is(_) => {
                        index.any.push(policy.clone());
                    }
                }
            }
        }
        Ok(Self {
            schema,
            by_action,
            assembled: Memo::default(),
            entities: Memo::default(),
            contexts: Memo::default(),
            count: all.policies().count(),
            authorizer: Authorizer::new(),
        })
    }

    /// The policies that can apply to `principal` doing `action_name`: those with no principal
    /// constraint plus those naming the principal, one of its teams or one of its roles.
    /// Principals are only ever `in` their own teams and roles, so nothing else can match.
    fn relevant(
        &self,
        action_name: &str,
        principal: &EntityUid,
        groups: &[EntityUid],
    ) -> Option<Arc<PolicySet>> {
        let index = self.by_action.get(action_name)?;
        let mut keys: Vec<EntityUid> = std::iter::once(principal)
            .chain(groups)
            .filter(|g| index.by_principal.contains_key(g))
            .cloned()
            .collect();
        keys.sort_unstable_by_key(ToString::to_string);
        let set = self
            .assembled
            .get_or_try((action_name.to_owned(), keys.clone()), || {
                let mut set = PolicySet::new();
                for policy in index
                    .any
                    .iter()
                    .chain(keys.iter().flat_map(|k| &index.by_principal[k]))
                {
                    // Ids are unique in the loaded set, so adding to a subset cannot collide.
                    let _ = set.add(policy.clone());
                }
                Ok(Arc::new(set))
            });
        set.ok()
    }

    /// How many policies are loaded.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no policy is loaded (everything is denied).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The schema policies are checked against.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// May `principal` do `action_name` on `model`?
    pub fn authorize_model(
        &self,
        principal: &Principal,
        action_name: &str,
        model: &ModelResource<'_>,
        facts: RequestFacts,
    ) -> Decision {
        let resource = uid("Aigis::Model", model.model);
        let key = format!(
            "model|{}|{}|{}|{}|{:?}",
            model.model, model.route, model.provider, model.classification, model.tags
        );
        let entity = || {
            let tags = model
                .tags
                .iter()
                .map(|t| RestrictedExpression::new_string(t.clone()));
            let attrs = [
                (
                    "route".to_owned(),
                    RestrictedExpression::new_string(model.route.to_owned()),
                ),
                (
                    "provider".to_owned(),
                    RestrictedExpression::new_string(model.provider.to_owned()),
                ),
                (
                    "classification".to_owned(),
                    RestrictedExpression::new_string(model.classification.to_owned()),
                ),
                ("tags".to_owned(), RestrictedExpression::new_set(tags)),
            ];
            Entity::new(
                resource.clone(),
                attrs.into_iter().collect(),
                std::collections::HashSet::new(),
            )
            .ok()
        };
        self.decide(
            principal,
            action_name,
            resource.clone(),
            &key,
            entity,
            facts,
        )
    }

    /// May `principal` do an admin action?
    pub fn authorize_admin(
        &self,
        principal: &Principal,
        action_name: &str,
        facts: RequestFacts,
    ) -> Decision {
        let resource = uid("Aigis::Gateway", "gateway");
        let entity = || Some(Entity::with_uid(resource.clone()));
        self.decide(
            principal,
            action_name,
            resource.clone(),
            "gateway",
            entity,
            facts,
        )
    }

    fn decide(
        &self,
        principal: &Principal,
        action_name: &str,
        resource: EntityUid,
        resource_key: &str,
        resource_entity: impl FnOnce() -> Option<Entity>,
        facts: RequestFacts,
    ) -> Decision {
        let deny = |errors: Vec<String>| Decision {
            allowed: false,
            policies: Vec::new(),
            errors,
        };
        let principal_uid = uid("Aigis::Principal", &principal.id);
        let parents: Vec<EntityUid> = principal
            .teams
            .iter()
            .map(|t| uid("Aigis::Team", t))
            .chain(principal.roles.iter().map(|r| uid("Aigis::Role", r)))
            .collect();
        let Some(set) = self.relevant(action_name, &principal_uid, &parents) else {
            return deny(Vec::new());
        };
        let entities = self
            .entities
            .get_or_try(entity_key(principal, resource_key), || {
                build_entities(principal, principal_uid.clone(), parents, resource_entity())
            });
        let hour = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs() / 3600 % 24).unwrap_or(0));
        let context_key = (
            facts.source_ip,
            facts.listener,
            facts.max_tokens,
            facts.stream,
            hour,
        );
        let context = self
            .contexts
            .get_or_try(context_key, || build_context(facts, hour));
        let request = context.and_then(|c| {
            Request::new(
                principal_uid,
                action(action_name),
                resource,
                Context::clone(&c),
                None,
            )
            .map_err(|e| e.to_string())
        });
        let (entities, request) = match (entities, request) {
            (Ok(e), Ok(r)) => (e, r),
            (Err(e), _) | (_, Err(e)) => return deny(vec![e]),
        };
        let response = self.authorizer.is_authorized(&request, &set, &entities);
        Decision {
            allowed: response.decision() == CedarDecision::Allow,
            policies: response
                .diagnostics()
                .reason()
                .map(ToString::to_string)
                .collect(),
            errors: response
                .diagnostics()
                .errors()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

/// A small map that forgets everything when full: policies' inputs repeat (the same keys,
/// models and clients), so a bulk clear is rare and cheap.
struct Memo<K, V> {
    map: Mutex<HashMap<K, V>>,
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self {
            map: Mutex::default(),
        }
    }
}

impl<K: std::hash::Hash + Eq, V: Clone> Memo<K, V> {
    fn get_or_try(&self, key: K, make: impl FnOnce() -> Result<V, String>) -> Result<V, String> {
        if let Some(v) = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Ok(v.clone());
        }
        let v = make()?;
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_ASSEMBLED {
            map.clear();
        }
        map.insert(key, v.clone());
        Ok(v)
    }
}

/// Everything about the principal that policies can see, plus the resource: the entity cache key.
fn entity_key(p: &Principal, resource_key: &str) -> String {
    format!(
        "{}|{}|{}|{:?}|{:?}|{:?}|{}|{resource_key}",
        p.id,
        p.name,
        p.kind.as_str(),
        p.teams,
        p.roles,
        p.attributes,
        p.auth
    )
}

fn build_entities(
    principal: &Principal,
    principal_uid: EntityUid,
    parents: Vec<EntityUid>,
    resource: Option<Entity>,
) -> Result<Arc<Entities>, String> {
    let attrs = [
        (
            "name".to_owned(),
            RestrictedExpression::new_string(principal.name.clone()),
        ),
        (
            "kind".to_owned(),
            RestrictedExpression::new_string(principal.kind.as_str().to_owned()),
        ),
        (
            "auth".to_owned(),
            RestrictedExpression::new_string(principal.auth.to_owned()),
        ),
    ];
    let tags = principal
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), RestrictedExpression::new_string(v.clone())));
    let entity =
        Entity::new_with_tags(principal_uid, attrs, parents, tags).map_err(|e| e.to_string())?;
    Entities::from_entities([entity].into_iter().chain(resource), None)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

fn build_context(facts: RequestFacts, hour: i64) -> Result<Arc<Context>, String> {
    Context::from_pairs([
        (
            "source_ip".to_owned(),
            RestrictedExpression::new_ip(facts.source_ip.to_string()),
        ),
        (
            "listener".to_owned(),
            RestrictedExpression::new_string(facts.listener.to_owned()),
        ),
        (
            "max_tokens".to_owned(),
            RestrictedExpression::new_long(i64::try_from(facts.max_tokens).unwrap_or(i64::MAX)),
        ),
        (
            "stream".to_owned(),
            RestrictedExpression::new_bool(facts.stream),
        ),
        ("hour_utc".to_owned(), RestrictedExpression::new_long(hour)),
    ])
    .map(Arc::new)
    .map_err(|e| e.to_string())
}

/// Policies built into the binary, named `builtin:NAME` in `[policy] policies`.
const BUILTIN: &[(&str, &str)] = &[(
    "quickstart",
    include_str!("../../../../examples/policies/quickstart.cedar"),
)];

/// Reads policy files named by `file:` patterns (`*` globs in the file name), relative to `base`.
pub fn read_files(patterns: &[String], base: &Path) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pattern in patterns {
        if let Some(name) = pattern.strip_prefix("builtin:") {
            let (_, text) = BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| format!("no built-in policy `{name}` (known: quickstart)"))?;
            out.push((pattern.clone(), (*text).to_owned()));
            continue;
        }
        let path = base.join(pattern.strip_prefix("file:").unwrap_or(pattern));
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let files: Vec<_> = if name.contains(['*', '?']) {
            let dir = path.parent().unwrap_or(base);
            let mut found: Vec<_> = std::fs::read_dir(dir)
                .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| crate::config::glob_match(&name, n))
                })
                .collect();
            found.sort();
            found
        } else {
            vec![path]
        };
        if files.is_empty() {
            return Err(format!("no policy file matches `{pattern}`"));
        }
        for f in files {
            let text = std::fs::read_to_string(&f)
                .map_err(|e| format!("cannot read {}: {e}", f.display()))?;
            out.push((f.display().to_string(), text));
        }
    }
    Ok(out)
}
