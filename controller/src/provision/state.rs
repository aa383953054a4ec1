//! Plain data for desired and live resources. Everything here is pure.

use std::collections::{BTreeMap, BTreeSet};

use ballast_blueprint::{DeletionPolicy, ResourceId, Tags};
use serde::Serialize;
use serde_json::Value;

use super::diff::FieldChange;
use super::typed::{TypedDesired, TypedLive};

/// The field names of one resource kind, as an enum (declared with [`field_names!`]).
///
/// `desired`, `observe` and `update` name a field only through it, so a misspelt field does
/// not compile instead of silently never updating. The string is what plan and drift output
/// show, and what the live state is keyed by.
pub trait FieldName: Copy + Ord + std::fmt::Debug + 'static {
    /// Every field of the kind, in declaration order.
    const ALL: &'static [Self];

    fn name(self) -> &'static str;

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.name() == name)
    }
}

/// Declares a kind's field-name enum and its [`FieldName`] implementation.
macro_rules! field_names {
    ($(#[$meta:meta])* $vis:vis enum $ty:ident { $($(#[$vmeta:meta])* $variant:ident = $name:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $ty {
            $($(#[$vmeta])* $variant,)*
        }

        impl $crate::provision::state::FieldName for $ty {
            const ALL: &'static [Self] = &[$(Self::$variant,)*];

            fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}
pub(crate) use field_names;

/// Live fields keyed by a kind's typed field names.
pub trait LiveFields {
    fn put<F: FieldName>(&mut self, field: F, value: impl Into<Value>);
    fn field<F: FieldName>(&self, field: F) -> Option<&Value>;
    fn drop_field<F: FieldName>(&mut self, field: F);
}

impl LiveFields for BTreeMap<String, Value> {
    fn put<F: FieldName>(&mut self, field: F, value: impl Into<Value>) {
        self.insert(field.name().to_string(), value.into());
    }

    fn field<F: FieldName>(&self, field: F) -> Option<&Value> {
        self.get(field.name())
    }

    fn drop_field<F: FieldName>(&mut self, field: F) {
        self.remove(field.name());
    }
}

/// Live fields from typed pairs.
pub fn live_fields<F: FieldName>(
    pairs: impl IntoIterator<Item = (F, Value)>,
) -> BTreeMap<String, Value> {
    pairs
        .into_iter()
        .map(|(f, v)| (f.name().to_string(), v))
        .collect()
}

/// The typed changes of one resource that a plan found: which of kind `F`'s fields differ, and
/// whether tags do. `update` matches on these instead of on field-name strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes<F: FieldName> {
    fields: BTreeSet<F>,
    tags: bool,
}

impl<F: FieldName> Changes<F> {
    /// The typed view of a plan's field changes; a name outside `F` (impossible when
    /// `desired` names fields through `F`) is logged and ignored.
    pub fn of(changes: &[FieldChange]) -> Self {
        let mut fields = BTreeSet::new();
        let mut tags = false;
        for c in changes {
            if c.field.starts_with("tags.") {
                tags = true;
            } else if let Some(f) = F::from_name(&c.field) {
                fields.insert(f);
            } else {
                tracing::warn!(field = %c.field, "change to a field this kind does not declare");
            }
        }
        Self { fields, tags }
    }

    pub fn has(&self, field: F) -> bool {
        self.fields.contains(&field)
    }

    pub fn any(&self, fields: &[F]) -> bool {
        fields.iter().any(|f| self.has(*f))
    }

    pub fn tags(&self) -> bool {
        self.tags
    }

    /// No field and no tag changed.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && !self.tags
    }

    pub fn fields(&self) -> impl Iterator<Item = F> + '_ {
        self.fields.iter().copied()
    }
}

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
            Expect::KnownAfterApply => KNOWN_AFTER_APPLY.into(),
        }
    }
}

/// How a value that depends on a resource not created yet is shown (plans, saved plans).
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";

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
    pub fn enforced(name: impl FieldName, value: impl Into<Value>) -> Self {
        Self {
            name: name.name(),
            expect: Expect::Exact(value.into()),
            class: FieldClass::Enforced,
        }
    }

    pub fn create_only(name: impl FieldName, value: impl Into<Value>) -> Self {
        Self {
            name: name.name(),
            expect: Expect::Exact(value.into()),
            class: FieldClass::CreateOnly,
        }
    }

    /// Owned by someone else at run time: only `expect` (its bounds) is checked.
    pub fn delegated(name: impl FieldName, expect: Expect) -> Self {
        Self {
            name: name.name(),
            expect,
            class: FieldClass::Delegated,
        }
    }

    /// The exact value this field wants, if known.
    pub fn exact(&self) -> Option<&Value> {
        match &self.expect {
            Expect::Exact(v) => Some(v),
            _ => None,
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
    /// The kind's typed state `fields` was rendered from (see [`super::typed`]).
    #[serde(skip)]
    pub typed: TypedDesired,
}

impl DesiredState {
    pub fn field(&self, name: impl FieldName) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name.name())
    }

    /// The exact value a field wants, if known.
    pub fn value(&self, name: impl FieldName) -> Option<&Value> {
        self.field(name).and_then(Field::exact)
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
    /// The kind's typed state `fields` was rendered from (see [`super::typed`]).
    #[serde(skip)]
    pub typed: TypedLive,
}

#[cfg(test)]
impl LiveState {
    /// An owned resource as another kind's desired state sees it through [`Resolved`]: its id,
    /// names and ARN, no fields (unit tests of kinds that refer to it).
    pub fn referenced(
        kind: ballast_blueprint::ResourceKind,
        name: &str,
        physical_name: &str,
        physical_id: &str,
        arn: Option<&str>,
    ) -> Self {
        LiveState {
            id: ResourceId::new(kind, name),
            physical_name: physical_name.into(),
            physical_id: physical_id.into(),
            arn: arn.map(Into::into),
            ownership: Ownership::Owned,
            tags: Tags::new(),
            fields: BTreeMap::new(),
            typed: TypedLive::untyped(),
        }
    }
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

    /// The ARNs of every resolved resource (all in the stack's account and region).
    pub fn arns(&self) -> impl Iterator<Item = &str> {
        self.live.values().filter_map(|s| s.arn.as_deref())
    }
}
