//! Plain data for desired and live resources. Everything here is pure.

use std::collections::BTreeMap;

use ballast_blueprint::{DeletionPolicy, ResourceId, Tags};
use serde::Serialize;
use serde_json::Value;

/// Who may change a field after creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldClass {
    /// Ballast restores the blueprint's value.
    Enforced,
    /// Fixed at creation: a different value means replacing the resource.
    CreateOnly,
    /// Owned by someone else at run time (the autoscaler); only its bounds are checked.
    Delegated,
}

/// What the blueprint expects of a field, in canonical form.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "value")]
pub enum Expect {
    Exact(Value),
    /// A number inside `[min, max]` (delegated capacity).
    Within(i64, i64),
    /// Depends on a resource that does not exist yet.
    KnownAfterApply,
}

impl Expect {
    pub fn satisfied_by(&self, live: Option<&Value>) -> bool {
        match (self, live) {
            (Expect::KnownAfterApply, _) => false,
            (Expect::Exact(want), Some(have)) => want == have,
            (Expect::Exact(Value::Null), None) => true,
            (Expect::Exact(_), None) => false,
            (Expect::Within(min, max), Some(have)) => {
                have.as_i64().is_some_and(|n| (*min..=*max).contains(&n))
            }
            (Expect::Within(..), None) => false,
        }
    }

    pub fn display(&self) -> String {
        match self {
            Expect::Exact(v) => display_value(v),
            Expect::Within(min, max) => format!("within [{min}, {max}]"),
            Expect::KnownAfterApply => "(known after apply)".into(),
        }
    }
}

pub fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "(unset)".into(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Field {
    pub name: &'static str,
    pub expect: Expect,
    pub class: FieldClass,
}

impl Field {
    pub fn enforced(name: &'static str, value: impl Into<Value>) -> Self {
        Self {
            name,
            expect: Expect::Exact(value.into()),
            class: FieldClass::Enforced,
        }
    }

    pub fn create_only(name: &'static str, value: impl Into<Value>) -> Self {
        Self {
            name,
            expect: Expect::Exact(value.into()),
            class: FieldClass::CreateOnly,
        }
    }

    pub fn with_expect(mut self, expect: Expect) -> Self {
        self.expect = expect;
        self
    }
}

/// One resource as the blueprint wants it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredState {
    pub id: ResourceId,
    /// The name AWS knows it by (queue name, table name, alias, …).
    pub physical_name: String,
    pub fields: Vec<Field>,
    pub tags: Tags,
    pub adopt: bool,
    pub deletion_policy: DeletionPolicy,
}

impl DesiredState {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The exact value a field wants, if known.
    pub fn value(&self, name: &str) -> Option<&Value> {
        match self.field(name).map(|f| &f.expect) {
            Some(Expect::Exact(v)) => Some(v),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "blueprint")]
pub enum Ownership {
    /// Carries this blueprint's ownership tags.
    Owned,
    /// Carries another blueprint's ownership tags.
    OwnedByOther(String),
    /// Carries no Ballast ownership tags.
    Unowned,
}

impl Ownership {
    pub fn from_tags(tags: &Tags, blueprint: &str) -> Self {
        let managed = tags
            .get(ballast_blueprint::OWNERSHIP_MANAGED_TAG)
            .is_some_and(|v| v == "true");
        match (
            managed,
            tags.get(ballast_blueprint::OWNERSHIP_BLUEPRINT_TAG),
        ) {
            (true, Some(owner)) if owner == blueprint => Ownership::Owned,
            (true, Some(owner)) => Ownership::OwnedByOther(owner.clone()),
            _ => Ownership::Unowned,
        }
    }
}

/// One resource as AWS has it, in the same canonical form as [`DesiredState`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveState {
    pub id: ResourceId,
    pub physical_name: String,
    /// Id or URL the APIs take (key id, queue URL, table name, group name, …).
    pub physical_id: String,
    pub arn: Option<String>,
    pub ownership: Ownership,
    pub tags: Tags,
    pub fields: BTreeMap<String, Value>,
}

/// ARNs and ids of resources that exist, for desired states that refer to them.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    live: BTreeMap<ResourceId, LiveState>,
}

impl Resolved {
    pub fn insert(&mut self, state: LiveState) {
        self.live.insert(state.id.clone(), state);
    }

    pub fn get(&self, id: &ResourceId) -> Option<&LiveState> {
        self.live.get(id)
    }

    pub fn arn(&self, id: &ResourceId) -> Option<&str> {
        self.get(id).and_then(|s| s.arn.as_deref())
    }

    pub fn physical_id(&self, id: &ResourceId) -> Option<&str> {
        self.get(id).map(|s| s.physical_id.as_str())
    }
}
