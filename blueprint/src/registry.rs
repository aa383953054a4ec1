//! The registry of resource kinds: the one list that names every kind once.
//!
//! [`resource_kinds!`] holds the list; everything that has to know every kind is generated from
//! it with exhaustive `match`es (no `_ =>` arms), so the compiler names whatever a new kind still
//! lacks:
//!
//! - here: [`ResourceKind`] itself, [`ResourceKind::ALL`] (which is also the order the controller
//!   observes kinds in), the names, which kinds are stateful, their tagging-API resource types,
//!   and [`declared`](crate::declared) / [`graph::resources`](crate::graph::resources) /
//!   [`graph::references`](crate::graph::references) through each model type's [`Resource`] impl;
//! - in the controller: the dispatch from a kind to its `ResourceOps` type (`with_kind!`).
//!
//! Adding a kind is: a model file (the struct, its `Spec` field and its [`Resource`] impl), a
//! validation file, a provisioning file, and one line below. See ARCHITECTURE.md.

use crate::graph::{Reference, ResourceId};
use crate::model::{Blueprint, Spec};

/// Calls `$callback! { [$args] <one entry per kind> }` with every resource kind, in the order the
/// controller observes them: a kind comes after every kind it references (checked by a test), so
/// its observe can canonicalize references to what was observed before.
///
/// Columns of an entry:
/// - the [`ResourceKind`] variant;
/// - `name`: how the kind is written in ids, diagnostics and plan output (`queue/orders`);
/// - `model`: the blueprint type in [`crate::model`], which implements [`Resource`];
/// - `stateful`: whether deleting it loses data (it then defaults to `deletionPolicy: retain`);
/// - `tagging`: its Resource Groups Tagging API resource type, for the kinds whose ownership tags
///   the controller reads in one `GetResources` (empty: the kind's describe returns tags);
/// - `ops`: the controller's `ResourceOps` type, as a path under `provision::kinds` (empty: nothing
///   to provision in AWS). These are tokens only: the blueprint crate does not depend
///   on the controller, the controller's dispatch macro resolves the path.
#[macro_export]
macro_rules! resource_kinds {
    ($callback:ident $(, $($args:tt)*)?) => {
        $callback! {
            [$($($args)*)?]
            KmsKey           { name: "kms-key",            model: KmsKey,           stateful: true,  tagging: ["kms:key"],          ops: [kms::KmsKeys] }
            Vpc              { name: "vpc",                model: Vpc,              stateful: false, tagging: [],                   ops: [vpc::Vpcs] }
            Subnet           { name: "subnet",             model: Subnet,           stateful: false, tagging: [],                   ops: [subnet::Subnets] }
            SecurityGroup    { name: "security-group",     model: SecurityGroup,    stateful: false, tagging: [],                   ops: [security_group::SecurityGroups] }
            VpcEndpoint      { name: "vpc-endpoint",       model: VpcEndpoint,      stateful: false, tagging: [],                   ops: [endpoint::VpcEndpoints] }
            Queue            { name: "queue",              model: Queue,            stateful: true,  tagging: ["sqs:queue"],        ops: [queue::Queues] }
            Table            { name: "table",              model: Table,            stateful: true,  tagging: ["dynamodb:table"],   ops: [table::Tables] }
            ManagedPolicy    { name: "managed-policy",     model: ManagedPolicy,    stateful: false, tagging: [],                   ops: [managed_policy::ManagedPolicies] }
            IamRole          { name: "iam-role",           model: IamRole,          stateful: false, tagging: [],                   ops: [iam_role::IamRoles] }
            InstanceProfile  { name: "instance-profile",   model: InstanceProfile,  stateful: false, tagging: [],                   ops: [instance_profile::InstanceProfiles] }
            Topic            { name: "topic",              model: Topic,            stateful: false, tagging: ["sns:topic"],        ops: [topic::Topics] }
            LaunchTemplate   { name: "launch-template",    model: LaunchTemplate,   stateful: false, tagging: [],                   ops: [launch_template::LaunchTemplates] }
            AutoScalingGroup { name: "auto-scaling-group", model: AutoScalingGroup, stateful: false, tagging: [],                   ops: [asg::AutoScalingGroups] }
            Alarm            { name: "alarm",              model: Alarm,            stateful: false, tagging: ["cloudwatch:alarm"], ops: [alarm::Alarms] }
            Dashboard        { name: "dashboard",          model: Dashboard,        stateful: false, tagging: [],                   ops: [dashboard::Dashboards] }
            ScalingPolicy    { name: "scaling-policy",     model: ScalingPolicy,    stateful: false, tagging: [],                   ops: [scaling_policy::ScalingPolicies] }
        }
    };
}

/// What each blueprint type of a resource kind tells the cross-kind code about itself.
/// Implemented next to the type, in its `model/<kind>.rs`.
pub trait Resource {
    /// The kinds a resource of this kind may reference by name (itself included when it does).
    /// The observe order is checked against it; [`Resource::references`] must stay within it.
    const REFERENCES: &'static [ResourceKind];

    /// The blueprint's resources of this kind, each with the field path that declares it.
    fn in_spec(spec: &Spec) -> Vec<(&Self, String)>;

    /// The blueprint name (unique per kind).
    fn name(&self) -> &str;

    /// The name in AWS; `None` for a resource that has nothing in AWS.
    fn physical_name(&self, bp: &Blueprint) -> Option<String>;

    /// References by blueprint name from this resource (`me`, declared at `path`).
    fn references(&self, me: &ResourceId, path: &str, spec: &Spec) -> Vec<Reference>;
}

macro_rules! define_kinds {
    (
        []
        $($variant:ident {
            name: $name:literal,
            model: $model:ident,
            stateful: $stateful:literal,
            tagging: [$($tagging:literal)?],
            ops: [$($ops:tt)*]
        })*
    ) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
        pub enum ResourceKind {
            $(
                #[serde(rename = $name)]
                $variant,
            )*
        }

        impl ResourceKind {
            /// Every kind, in registry (= observe) order.
            pub const ALL: &'static [ResourceKind] = &[$(ResourceKind::$variant),*];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $(ResourceKind::$variant => $name,)*
                }
            }

            /// Kinds whose deletion loses data: they default to `deletionPolicy: retain`.
            pub fn is_stateful(&self) -> bool {
                match self {
                    $(ResourceKind::$variant => $stateful,)*
                }
            }

            /// The Resource Groups Tagging API resource type whose `GetResources` answer carries
            /// this kind's ownership tags, for kinds whose own API needs one tag read per resource.
            pub fn tagging_type(&self) -> Option<&'static str> {
                match self {
                    $(ResourceKind::$variant => {
                        let tagging: &[&'static str] = &[$($tagging)?];
                        tagging.first().copied()
                    })*
                }
            }

            /// Kinds the blueprint may reference from a resource of this kind.
            pub fn references(&self) -> &'static [ResourceKind] {
                match self {
                    $(ResourceKind::$variant => <crate::model::$model as Resource>::REFERENCES,)*
                }
            }
        }

        /// Blueprint resources of `kind` with their physical names.
        pub(crate) fn declared_of_kind(bp: &Blueprint, kind: ResourceKind) -> Vec<(ResourceId, String)> {
            match kind {
                $(ResourceKind::$variant => declared_as::<crate::model::$model>(bp, kind),)*
            }
        }

        /// Every resource of the blueprint with the field path that declares it, kind by kind.
        pub(crate) fn all_resources(bp: &Blueprint) -> Vec<(ResourceId, String)> {
            let mut out = Vec::new();
            $(out.extend(resources_as::<crate::model::$model>(bp, ResourceKind::$variant));)*
            out
        }

        /// Every resource of the blueprint with its declaring path and its shared settings,
        /// kind by kind.
        pub(crate) fn all_settings(bp: &Blueprint) -> Vec<Settings> {
            let mut out = Vec::new();
            $(out.extend(settings_as::<crate::model::$model>(bp, ResourceKind::$variant));)*
            out
        }

        /// Every reference by blueprint name, kind by kind.
        pub(crate) fn all_references(bp: &Blueprint) -> Vec<Reference> {
            let mut out = Vec::new();
            $(out.extend(references_as::<crate::model::$model>(bp, ResourceKind::$variant));)*
            out
        }
    };
}

resource_kinds!(define_kinds);

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn declared_as<R: Resource>(bp: &Blueprint, kind: ResourceKind) -> Vec<(ResourceId, String)> {
    R::in_spec(&bp.spec)
        .into_iter()
        .filter_map(|(r, _)| Some((ResourceId::new(kind, r.name()), r.physical_name(bp)?)))
        .collect()
}

fn resources_as<R: Resource>(bp: &Blueprint, kind: ResourceKind) -> Vec<(ResourceId, String)> {
    R::in_spec(&bp.spec)
        .into_iter()
        .map(|(r, path)| (ResourceId::new(kind, r.name()), path))
        .collect()
}

/// The settings every resource may carry ([`crate::model::Lifecycle`]), with where it is
/// declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub id: ResourceId,
    pub path: String,
    pub management: crate::model::Management,
    pub adopt: bool,
}

fn settings_as<R: Resource + crate::model::Lifecycle>(
    bp: &Blueprint,
    kind: ResourceKind,
) -> Vec<Settings> {
    R::in_spec(&bp.spec)
        .into_iter()
        .map(|(r, path)| Settings {
            id: ResourceId::new(kind, r.name()),
            path,
            management: r.management(),
            adopt: r.adopt(),
        })
        .collect()
}

fn references_as<R: Resource>(bp: &Blueprint, kind: ResourceKind) -> Vec<Reference> {
    R::in_spec(&bp.spec)
        .into_iter()
        .flat_map(|(r, path)| r.references(&ResourceId::new(kind, r.name()), &path, &bp.spec))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn position(kind: ResourceKind) -> usize {
        ResourceKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(usize::MAX)
    }

    #[test]
    fn every_kind_is_listed_exactly_once() {
        let unique: BTreeSet<_> = ResourceKind::ALL.iter().collect();
        assert_eq!(unique.len(), ResourceKind::ALL.len());
        let names: BTreeSet<_> = ResourceKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ResourceKind::ALL.len(), "names are unique");
        for kind in ResourceKind::ALL {
            let json = serde_json::to_value(kind).unwrap_or_default();
            assert_eq!(
                json.as_str(),
                Some(kind.as_str()),
                "{kind:?} serializes as its name"
            );
        }
    }

    /// The example blueprints use every kind and every kind of reference.
    fn examples() -> Vec<Blueprint> {
        ["banking.yaml", "minimal.yaml"]
            .iter()
            .map(|file| {
                let path = format!("{}/../blueprints/{file}", env!("CARGO_MANIFEST_DIR"));
                let source = std::fs::read_to_string(&path).unwrap_or_default();
                match crate::parse(file, &source) {
                    Ok(loaded) => loaded.blueprint,
                    Err(e) => panic!("{path}: {e}"),
                }
            })
            .collect()
    }

    #[test]
    fn the_examples_declare_every_kind() {
        let declared: BTreeSet<ResourceKind> = examples()
            .iter()
            .flat_map(crate::graph::resources)
            .map(|(id, _)| id.kind)
            .collect();
        let all: BTreeSet<ResourceKind> = ResourceKind::ALL.iter().copied().collect();
        assert_eq!(declared, all);
    }

    #[test]
    fn references_stay_within_what_each_kind_declares_it_references() {
        let mut seen = 0;
        for bp in examples() {
            for r in crate::graph::references(&bp) {
                seen += 1;
                assert!(
                    r.from.kind.references().contains(&r.to.kind),
                    "{} references {} at {}, but {}'s `Resource::REFERENCES` does not list {}",
                    r.from,
                    r.to,
                    r.path,
                    r.from.kind,
                    r.to.kind
                );
            }
        }
        assert!(seen > 10, "the examples exercise references ({seen})");
    }

    #[test]
    fn registry_order_puts_every_kind_after_the_kinds_it_references() {
        for kind in ResourceKind::ALL {
            for target in kind.references() {
                if target != kind {
                    assert!(
                        position(*target) < position(*kind),
                        "{kind} references {target}, so {target} must come first"
                    );
                }
            }
        }
    }
}
