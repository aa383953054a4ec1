//! Typed resource state: one struct per kind, built by both `desired` (from the blueprint) and
//! `observe` (from AWS), compared field by field.
//!
//! A kind declares its state once with [`typed_state!`]: each field names its [`FieldName`]
//! variant, its Rust type and its [`FieldClass`]. The struct is generic over a [`Slot`]: as
//! `State<Desired>` every field is a [`Want`] (an exact value, bounds, or known only after
//! apply), as `State<Live>` an `Option` (AWS may not report it). The macro generates
//!
//! - `expected_fields` and `live_fields`, which render the state into the [`Field`] list and the
//!   live map that [`DesiredState`] and [`LiveState`] carry (what the plan JSON, drift output and
//!   the kinds not yet converted use), and
//! - `changes`, the typed comparison: a [`Change`] per differing field, with its class and the
//!   display values plan and drift output show.
//!
//! [`super::diff::diff`] compares the typed states when both sides carry one, and `update`
//! reads the typed desired and live state back ([`DesiredState::state`], [`LiveState::state`])
//! instead of looking values up by name and re-parsing JSON. The rendered `Value`s exist for
//! output only; `FieldValue::to_value` keeps their exact shape (key order included, the
//! workspace's serde_json preserves it), so plan output is unchanged by the typing.
//!
//! Kinds not yet converted build their states without a typed state ([`TypedDesired::untyped`]),
//! and the diff compares their `Value` fields as before: the bridge is named so that it is
//! visible where it is used.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use serde_json::Value;

use super::diff::FieldChange;
use super::error::ProvisionError;
use super::state::{DesiredState, Expect, FieldClass, FieldName, LiveState, display_value};

/// A typed field value: compared with `PartialEq`, shown through [`FieldValue::to_value`].
pub trait FieldValue: Clone + PartialEq + Debug + Send + Sync + 'static {
    /// The value as plan and drift output show it (and as the untyped diff compares it).
    fn to_value(&self) -> Value;

    /// Whether the value means "not set": it then equals a field AWS does not report.
    fn is_unset(&self) -> bool {
        false
    }

    /// The value as a whole number, for bounds ([`Want::Within`]).
    fn as_i64(&self) -> Option<i64> {
        None
    }

    /// The value as plan and drift text show it: its rendered `Value` unless the type has a
    /// more readable form (a policy document is summarized statement by statement).
    fn display(&self) -> String {
        display_value(&self.to_value())
    }
}

impl FieldValue for u64 {
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
    fn as_i64(&self) -> Option<i64> {
        i64::try_from(*self).ok()
    }
}

impl FieldValue for u32 {
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
    fn as_i64(&self) -> Option<i64> {
        Some(i64::from(*self))
    }
}

impl FieldValue for i64 {
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
    fn as_i64(&self) -> Option<i64> {
        Some(*self)
    }
}

impl FieldValue for i32 {
    fn to_value(&self) -> Value {
        Value::from(*self)
    }
    fn as_i64(&self) -> Option<i64> {
        Some(i64::from(*self))
    }
}

impl FieldValue for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
}

impl FieldValue for String {
    fn to_value(&self) -> Value {
        Value::String(self.clone())
    }
}

/// `None` is "not set" (`null`), the same as a field AWS does not report.
impl<T: FieldValue> FieldValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map(T::to_value).unwrap_or(Value::Null)
    }
    fn is_unset(&self) -> bool {
        self.as_ref().is_none_or(T::is_unset)
    }
    fn as_i64(&self) -> Option<i64> {
        self.as_ref().and_then(T::as_i64)
    }
    fn display(&self) -> String {
        self.as_ref()
            .map(T::display)
            .unwrap_or_else(|| "(unset)".into())
    }
}

impl<T: FieldValue> FieldValue for Vec<T> {
    fn to_value(&self) -> Value {
        Value::Array(self.iter().map(T::to_value).collect())
    }
}

/// What the blueprint wants of one typed field.
#[derive(Debug, Clone, PartialEq)]
pub enum Want<T> {
    Exact(T),
    /// A number inside `[min, max]` (delegated capacity).
    Within(i64, i64),
    /// Depends on a resource that does not exist yet.
    KnownAfterApply,
    /// The blueprint does not set the field: not compared (nor read, where reading costs a call).
    Unchecked,
}

impl<T: FieldValue> Want<T> {
    /// An exact value if there is one, else known after apply.
    pub fn exact_or_later(value: Option<T>) -> Self {
        value.map(Want::Exact).unwrap_or(Want::KnownAfterApply)
    }

    /// The exact value this field wants, if known.
    pub fn exact(&self) -> Option<&T> {
        match self {
            Want::Exact(v) => Some(v),
            _ => None,
        }
    }

    /// The untyped expectation, for the rendered field list; `None` when unchecked.
    pub fn expect(&self) -> Option<Expect> {
        match self {
            Want::Exact(v) => Some(Expect::Exact(v.to_value())),
            Want::Within(min, max) => Some(Expect::Within(*min, *max)),
            Want::KnownAfterApply => Some(Expect::KnownAfterApply),
            Want::Unchecked => None,
        }
    }

    /// Whether `have` (what AWS reports) meets this want; the typed twin of
    /// [`Expect::satisfied_by`].
    pub fn satisfied_by(&self, have: Option<&T>) -> bool {
        match (self, have) {
            (Want::Unchecked, _) => true,
            (Want::KnownAfterApply, _) => false,
            (Want::Exact(want), Some(have)) => want == have,
            (Want::Exact(want), None) => want.is_unset(),
            (Want::Within(min, max), have) => have
                .and_then(T::as_i64)
                .is_some_and(|n| (*min..=*max).contains(&n)),
        }
    }
}

/// How the fields of a typed state are held: [`Desired`] or [`Live`].
pub trait Slot: Clone + Debug + PartialEq + Send + Sync + 'static {
    type Of<T: FieldValue>: Clone + Debug + PartialEq + Send + Sync + 'static;
}

/// The blueprint's side: every field is a [`Want`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desired;

impl Slot for Desired {
    type Of<T: FieldValue> = Want<T>;
}

/// AWS's side: a field AWS does not report (or that was not read) is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Live;

impl Slot for Live {
    type Of<T: FieldValue> = Option<T>;
}

/// One differing field of kind `F`, as the typed comparison found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<F> {
    pub field: F,
    pub class: FieldClass,
    /// The live value as plan and drift output show it.
    pub live: String,
    /// The desired value (or bounds, or "known after apply") as shown.
    pub desired: String,
}

impl<F: FieldName> From<Change<F>> for FieldChange {
    fn from(c: Change<F>) -> Self {
        FieldChange {
            field: c.field.name().to_string(),
            live: c.live,
            desired: c.desired,
            class: c.class,
        }
    }
}

/// Compares one field and records a [`Change`] when it differs; the rules are those of the
/// untyped diff (a delegated field known only after apply is not a change).
pub fn compare_field<F: FieldName, T: FieldValue>(
    out: &mut Vec<Change<F>>,
    field: F,
    class: FieldClass,
    want: &Want<T>,
    have: Option<&T>,
) {
    if want.satisfied_by(have) {
        return;
    }
    if class == FieldClass::Delegated && matches!(want, Want::KnownAfterApply) {
        return;
    }
    let Some(expect) = want.expect() else {
        return;
    };
    out.push(Change {
        field,
        class,
        live: have
            .map(FieldValue::display)
            .unwrap_or_else(|| "(unset)".into()),
        desired: match want {
            Want::Exact(v) => v.display(),
            _ => expect.display(),
        },
    });
}

/// A kind's desired typed state, type-erased so that [`DesiredState`] (one type for every
/// kind) can carry it.
pub trait ErasedDesired: Debug + Send + Sync + 'static {
    /// The field changes against `live`, or `None` when `live` is not this kind's live state.
    fn changes(&self, live: &(dyn Any + Send + Sync)) -> Option<Vec<FieldChange>>;

    fn as_any(&self) -> &(dyn Any + Send + Sync);
}

/// The typed desired state a [`DesiredState`] was rendered from, if its kind is converted.
#[derive(Debug, Clone, Default)]
pub struct TypedDesired(Option<Arc<dyn ErasedDesired>>);

impl TypedDesired {
    pub fn new(state: impl ErasedDesired) -> Self {
        Self(Some(Arc::new(state)))
    }

    /// The bridge for kinds not yet converted to typed state: compared by their `Value` fields.
    pub fn untyped() -> Self {
        Self(None)
    }

    pub fn get(&self) -> Option<&dyn ErasedDesired> {
        self.0.as_deref()
    }
}

/// Equal always: the typed state renders to the fields beside it, which equality compares.
impl PartialEq for TypedDesired {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The typed live state a [`LiveState`] was rendered from, if its kind is converted.
#[derive(Debug, Clone, Default)]
pub struct TypedLive(Option<Arc<dyn AnyDebug>>);

/// `Any` that can be printed, for [`TypedLive`].
pub trait AnyDebug: Any + Debug + Send + Sync {
    fn as_any(&self) -> &(dyn Any + Send + Sync);
}

impl<T: Any + Debug + Send + Sync> AnyDebug for T {
    fn as_any(&self) -> &(dyn Any + Send + Sync) {
        self
    }
}

impl TypedLive {
    pub fn new<T: Any + Debug + Send + Sync>(state: T) -> Self {
        Self(Some(Arc::new(state)))
    }

    /// The bridge for kinds not yet converted to typed state: compared by their `Value` fields.
    pub fn untyped() -> Self {
        Self(None)
    }

    pub fn get(&self) -> Option<&(dyn Any + Send + Sync)> {
        self.0.as_deref().map(AnyDebug::as_any)
    }
}

/// Equal always: the typed state renders to the fields beside it, which equality compares.
impl PartialEq for TypedLive {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl DesiredState {
    /// The typed desired state of kind state `T` this was built from.
    pub fn state<T: Any>(&self) -> Result<&T, ProvisionError> {
        self.typed
            .get()
            .and_then(|s| s.as_any().downcast_ref::<T>())
            .ok_or_else(|| ProvisionError::Untyped {
                resource: self.id.clone(),
                side: "desired",
                expected: std::any::type_name::<T>(),
            })
    }
}

impl LiveState {
    /// The typed live state of kind state `T` this was built from.
    pub fn state<T: Any>(&self) -> Result<&T, ProvisionError> {
        self.typed
            .get()
            .and_then(|s| s.downcast_ref::<T>())
            .ok_or_else(|| ProvisionError::Untyped {
                resource: self.id.clone(),
                side: "live",
                expected: std::any::type_name::<T>(),
            })
    }
}

/// Declares a kind's typed state struct (generic over [`Slot`]) and its rendering and
/// comparison; see the module docs. Fields are listed in the order plan output shows them.
macro_rules! typed_state {
    (
        $(#[$meta:meta])*
        $vis:vis struct $ty:ident for $field:ident {
            $($(#[$fmeta:meta])* $variant:ident => $name:ident : $t:ty = $class:ident,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        $vis struct $ty<S: $crate::provision::typed::Slot> {
            $($(#[$fmeta])* pub $name: S::Of<$t>,)*
        }

        impl $ty<$crate::provision::typed::Desired> {
            /// The rendered field list a `DesiredState` carries.
            pub fn expected_fields(&self) -> Vec<$crate::provision::state::Field> {
                #[allow(unused_imports)]
                use $crate::provision::state::FieldName as _;
                let mut out = Vec::new();
                $(
                    if let Some(expect) = self.$name.expect() {
                        out.push($crate::provision::state::Field {
                            name: $field::$variant.name(),
                            expect,
                            class: $crate::provision::state::FieldClass::$class,
                        });
                    }
                )*
                out
            }

            /// The live state of a resource exactly as desired (a field not known exactly is
            /// unreported): what a create assumes when it cannot read the resource back yet.
            #[allow(dead_code)] // not every kind needs it
            pub fn assumed_live(&self) -> $ty<$crate::provision::typed::Live> {
                $ty {
                    $($name: self.$name.exact().cloned(),)*
                }
            }

            /// The fields of `live` that differ from this desired state, in declaration order.
            pub fn changes(
                &self,
                live: &$ty<$crate::provision::typed::Live>,
            ) -> Vec<$crate::provision::typed::Change<$field>> {
                let mut out = Vec::new();
                $(
                    $crate::provision::typed::compare_field(
                        &mut out,
                        $field::$variant,
                        $crate::provision::state::FieldClass::$class,
                        &self.$name,
                        live.$name.as_ref(),
                    );
                )*
                out
            }
        }

        impl $ty<$crate::provision::typed::Live> {
            /// The rendered live map a `LiveState` carries (unreported fields left out).
            pub fn live_fields(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
                #[allow(unused_imports)]
                use $crate::provision::state::FieldName as _;
                let mut out = std::collections::BTreeMap::new();
                $(
                    if let Some(v) = &self.$name {
                        out.insert(
                            $field::$variant.name().to_string(),
                            $crate::provision::typed::FieldValue::to_value(v),
                        );
                    }
                )*
                out
            }
        }

        impl $crate::provision::typed::ErasedDesired for $ty<$crate::provision::typed::Desired> {
            fn changes(
                &self,
                live: &(dyn std::any::Any + Send + Sync),
            ) -> Option<Vec<$crate::provision::diff::FieldChange>> {
                live.downcast_ref::<$ty<$crate::provision::typed::Live>>()
                    .map(|live| self.changes(live).into_iter().map(Into::into).collect())
            }

            fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
                self
            }
        }
    };
}
pub(crate) use typed_state;

/// Helpers for the typed-state tests of each kind.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::provision::diff::{Action, diff};
    use crate::provision::state::Ownership;
    use ballast_blueprint::Blueprint;

    /// The blueprint of the stack `shop` in us-east-1 whose `spec:` is `spec` (YAML, indented
    /// by two spaces): the fixture of the kinds' unit tests.
    pub(crate) fn shop_blueprint(spec: &str) -> Blueprint {
        let text = format!(
            "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {{name: shop, region: us-east-1}}\nspec:\n{spec}"
        );
        match ballast_blueprint::parse("t.yaml", &text) {
            Ok(parsed) => parsed.blueprint,
            Err(diagnostics) => panic!("{diagnostics}"),
        }
    }

    /// An owned live resource matching `desired` by name and tags, with typed state `state`.
    pub(crate) fn owned_live<T: Any + Debug + Send + Sync>(
        desired: &DesiredState,
        state: T,
        live_fields: std::collections::BTreeMap<String, Value>,
    ) -> LiveState {
        LiveState {
            id: desired.id.clone(),
            physical_name: desired.physical_name.clone(),
            physical_id: desired.physical_name.clone(),
            arn: None,
            ownership: Ownership::Owned,
            tags: desired.tags.clone(),
            fields: live_fields,
            typed: TypedLive::new(state),
        }
    }

    /// The typed diff of `desired` against `live`, asserted equal to the untyped diff of their
    /// rendered fields (plan output is unchanged by the typing).
    pub(crate) fn typed_diff(desired: &DesiredState, live: &LiveState) -> Action {
        let typed = diff(desired, Some(live));
        let mut untyped_desired = desired.clone();
        untyped_desired.typed = TypedDesired::untyped();
        let mut untyped_live = live.clone();
        untyped_live.typed = TypedLive::untyped();
        assert_eq!(
            typed,
            diff(&untyped_desired, Some(&untyped_live)),
            "{}",
            desired.id
        );
        typed
    }

    /// The names of the changed fields of an update or replacement.
    pub(crate) fn changed_fields(action: &Action) -> Vec<String> {
        match action {
            Action::Update { changes }
            | Action::Replace { changes }
            | Action::Adopt { changes } => changes.iter().map(|c| c.field.clone()).collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed comparison must agree with the untyped one on every combination, or plan
    /// output would change with the typing.
    #[test]
    fn typed_and_untyped_satisfaction_agree() {
        let wants: Vec<Want<Option<u64>>> = vec![
            Want::Exact(Some(5)),
            Want::Exact(None),
            Want::Within(2, 10),
            Want::Within(6, 10),
            Want::KnownAfterApply,
        ];
        let haves: Vec<Option<Option<u64>>> = vec![None, Some(None), Some(Some(5)), Some(Some(7))];
        for want in &wants {
            for have in &haves {
                let value = have.as_ref().map(FieldValue::to_value);
                let untyped = want.expect().map(|e| e.satisfied_by(value.as_ref()));
                assert_eq!(
                    Some(want.satisfied_by(have.as_ref())),
                    untyped,
                    "{want:?} vs {have:?}"
                );
            }
        }
        assert!(Want::<u64>::Unchecked.satisfied_by(None));
        assert_eq!(Want::<u64>::Unchecked.expect(), None);
    }

    crate::provision::state::field_names! {
        enum TestField {
            Size = "size",
            Capacity = "capacity",
        }
    }

    typed_state! {
        struct TestState for TestField {
            Size => size: u64 = Enforced,
            Capacity => capacity: u64 = Delegated,
        }
    }

    #[test]
    fn changes_carry_class_and_display_values() {
        let want = TestState::<Desired> {
            size: Want::Exact(3),
            capacity: Want::Within(1, 4),
        };
        let have = TestState::<Live> {
            size: Some(2),
            capacity: None,
        };
        let changes = want.changes(&have);
        assert_eq!(
            changes,
            vec![
                Change {
                    field: TestField::Size,
                    class: FieldClass::Enforced,
                    live: "2".into(),
                    desired: "3".into(),
                },
                Change {
                    field: TestField::Capacity,
                    class: FieldClass::Delegated,
                    live: "(unset)".into(),
                    desired: "within [1, 4]".into(),
                },
            ]
        );
        // A delegated field known only after apply is not a change.
        let later = TestState::<Desired> {
            size: Want::Exact(2),
            capacity: Want::KnownAfterApply,
        };
        assert!(later.changes(&have).is_empty());
        assert_eq!(have.live_fields().len(), 1);
        assert_eq!(want.expected_fields().len(), 2);
    }
}
