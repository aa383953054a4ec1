//! Rules the schema cannot express: AWS ranges, references, cycles, combinations.
//!
//! Cross-kind checks (metadata, names, references, cycles) are here; each kind's own rules are in
//! the file named like its `model/` file, shared helpers in `common.rs`.

use std::collections::{BTreeMap, BTreeSet};

use crate::convert::Positions;
use crate::diagnostic::{Diagnostic, closest};
use crate::graph::{self, ResourceId, ResourceKind};
use crate::model::*;

mod common;
mod compute;
mod endpoint_services;
mod iam;
mod instance_types;
mod kms;
mod monitoring;
mod network;
mod queue;
mod scaling;
mod table;
mod tags;
mod topic;

pub fn check(bp: &Blueprint, positions: &Positions) -> Vec<Diagnostic> {
    let mut v = Validator {
        positions,
        out: Vec::new(),
    };
    v.metadata(bp);
    v.metadata_tags(bp);
    v.declares_something(bp);
    v.names(bp);
    v.references(bp);
    v.management(bp);
    for (i, key) in bp.spec.kms_keys.iter().enumerate() {
        let path = format!("spec.kmsKeys[{i}]");
        v.kms_key(key, &path);
        v.resource_tags(bp, &key.tags, &path);
    }
    for (i, queue) in bp.spec.queues.iter().enumerate() {
        let path = format!("spec.queues[{i}]");
        v.queue(bp, queue, &path);
        v.resource_tags(bp, &queue.tags, &path);
    }
    for (i, table) in bp.spec.tables.iter().enumerate() {
        let path = format!("spec.tables[{i}]");
        v.table(table, &path);
        v.resource_tags(bp, &table.tags, &path);
    }
    if let Some(network) = &bp.spec.network {
        v.network(bp, network);
        v.resource_tags(bp, &network.vpc.tags, "spec.network.vpc");
        for (i, endpoint) in network.endpoints.iter().enumerate() {
            v.resource_tags(bp, &endpoint.tags, &format!("spec.network.endpoints[{i}]"));
        }
    }
    for (i, policy) in bp.spec.managed_policies.iter().enumerate() {
        let path = format!("spec.managedPolicies[{i}]");
        v.managed_policy(policy, &path);
        v.resource_tags(bp, &policy.tags, &path);
    }
    for (i, role) in bp.spec.iam_roles.iter().enumerate() {
        let path = format!("spec.iamRoles[{i}]");
        v.iam_role(role, &path);
        v.resource_tags(bp, &role.tags, &path);
    }
    for (i, profile) in bp.spec.instance_profiles.iter().enumerate() {
        let path = format!("spec.instanceProfiles[{i}]");
        v.instance_profile(profile, &path);
        v.resource_tags(bp, &profile.tags, &path);
    }
    for (i, lt) in bp.spec.launch_templates.iter().enumerate() {
        let path = format!("spec.launchTemplates[{i}]");
        v.launch_template(lt, &path);
        v.launch_template_profile(lt, &path);
        v.resource_tags(bp, &lt.tags, &path);
    }
    for (i, group) in bp.spec.auto_scaling_groups.iter().enumerate() {
        let path = format!("spec.autoScalingGroups[{i}]");
        v.auto_scaling_group(group, &path);
        v.resource_tags(bp, &group.tags, &path);
    }
    for (i, topic) in bp.spec.topics.iter().enumerate() {
        let path = format!("spec.topics[{i}]");
        v.topic(topic, &path);
        v.resource_tags(bp, &topic.tags, &path);
    }
    for (i, alarm) in bp.spec.alarms.iter().enumerate() {
        let path = format!("spec.alarms[{i}]");
        v.alarm(bp, alarm, &path);
        v.resource_tags(bp, &alarm.tags, &path);
    }
    for (i, dashboard) in bp.spec.dashboards.iter().enumerate() {
        v.dashboard(dashboard, &format!("spec.dashboards[{i}]"));
    }
    let mut bound_fleets = BTreeMap::new();
    for (i, policy) in bp.spec.scaling_policies.iter().enumerate() {
        let path = format!("spec.scalingPolicies[{i}]");
        v.scaling_policy(policy, &path);
        if let Some(fleet) = &policy.fleet
            && let Some(first) = bound_fleets.insert(fleet.clone(), policy.name.clone())
        {
            v.error(
                &format!("{path}.fleet"),
                format!("fleet `{fleet}` is already driven by scaling policy `{first}`"),
                "one fleet has one scaling policy; merge the two",
            );
        }
        // The switch's alarm is named like a blueprint alarm could be: two alarms of one name
        // would be one alarm in CloudWatch, rewritten by each in turn.
        if policy.dead_mans_switch.is_some() {
            let switch = bp.dead_mans_switch_name(policy);
            for (j, alarm) in bp.spec.alarms.iter().enumerate() {
                if bp.alarm_name(alarm) == switch {
                    v.error(
                        &format!("spec.alarms[{j}].name"),
                        format!("alarm `{switch}` is the name of scaling policy `{}`'s dead-man's switch", policy.name),
                        "rename the alarm (or set `alarmName`)",
                    );
                }
            }
        }
    }
    v.out
}

struct Validator<'a> {
    positions: &'a Positions,
    out: Vec<Diagnostic>,
}

const SECOND: u64 = 1;
const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

fn human(secs: u64) -> String {
    Duration::from_secs(secs).to_string()
}

impl Validator<'_> {
    fn error(&mut self, path: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.out
            .push(Diagnostic::error(self.positions.at(path), path, message).with_hint(hint));
    }

    fn warning(&mut self, path: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.out
            .push(Diagnostic::warning(self.positions.at(path), path, message).with_hint(hint));
    }

    /// `management: observe` means never written; `adopt: true` asks apply to take the
    /// resource over (write its tags and fields). Both at once is a contradiction that would
    /// otherwise silently do nothing, so it is refused where `adopt` is written.
    fn management(&mut self, bp: &Blueprint) {
        for s in crate::registry::all_settings(bp) {
            if s.management == Management::Observe && s.adopt {
                self.error(
                    &format!("{}.adopt", s.path),
                    format!("{} has `management: observe` and `adopt: true`", s.id),
                    "an observed resource is never written, so it cannot be adopted: remove `adopt`, or adopt it with `management: manage` first",
                );
            }
        }
    }

    fn metadata(&mut self, bp: &Blueprint) {
        let name = &bp.metadata.name;
        let ok = !name.is_empty()
            && name.len() <= 40
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            self.error(
                "metadata.name",
                format!("`{name}` is not a valid stack name"),
                "use 1 to 40 lowercase letters, digits and `-`, starting with a letter",
            );
        }
        let region = &bp.metadata.region;
        let parts: Vec<&str> = region.split('-').collect();
        let region_ok = parts.len() >= 3
            && parts.first().is_some_and(|p| p.len() == 2)
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric()))
            && parts
                .last()
                .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()));
        if !region_ok {
            self.error(
                "metadata.region",
                format!("`{region}` is not an AWS region name"),
                "write a region such as us-east-1 or eu-west-1",
            );
        }
    }

    /// A blueprint that declares nothing is a mistake (a missing or misindented `spec:`), and
    /// applying it would delete everything the stack owns.
    fn declares_something(&mut self, bp: &Blueprint) {
        if graph::resources(bp).is_empty() {
            self.error(
                "spec",
                "the blueprint declares no resources",
                "declare resources under `spec:` (is it missing or misindented?); to remove a stack, use `ballast destroy`",
            );
        }
    }

    fn names(&mut self, bp: &Blueprint) {
        let mut seen: BTreeMap<ResourceId, String> = BTreeMap::new();
        for (id, path) in graph::resources(bp) {
            let name_path = format!("{path}.name");
            let ok = !id.name.is_empty()
                && id.name.len() <= 64
                && id
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok {
                self.error(
                    &name_path,
                    format!("`{}` is not a valid resource name", id.name),
                    "use 1 to 64 letters, digits, `-` and `_`",
                );
            }
            if let Some(first) = seen.get(&id) {
                let first_at = self.positions.at(&format!("{first}.name"));
                self.error(
                    &name_path,
                    format!("duplicate {} name `{}`", id.kind, id.name),
                    format!(
                        "the first is at line {}, column {}; names are unique per kind",
                        first_at.line, first_at.column
                    ),
                );
            } else {
                seen.insert(id, path);
            }
        }
    }

    fn references(&mut self, bp: &Blueprint) {
        let mut by_kind: BTreeMap<ResourceKind, Vec<String>> = BTreeMap::new();
        for (id, _) in graph::resources(bp) {
            by_kind.entry(id.kind).or_default().push(id.name);
        }
        let refs = graph::references(bp);
        for r in &refs {
            let names = by_kind.get(&r.to.kind).cloned().unwrap_or_default();
            if names.contains(&r.to.name) {
                continue;
            }
            let hint = match (
                closest(&r.to.name, names.iter().map(String::as_str)),
                names.is_empty(),
            ) {
                (_, true) => format!("the blueprint declares no {}", r.to.kind),
                (Some(near), false) => {
                    format!("did you mean `{near}`? Declared: {}", names.join(", "))
                }
                (None, false) => format!("declared {}s: {}", r.to.kind, names.join(", ")),
            };
            self.error(
                &r.path,
                format!("unknown {} `{}`", r.to.kind, r.to.name),
                hint,
            );
        }
        let nodes: Vec<ResourceId> = graph::resources(bp).into_iter().map(|(id, _)| id).collect();
        let edges: Vec<(ResourceId, ResourceId)> = refs
            .iter()
            .filter(|r| r.ordering)
            .map(|r| (r.from.clone(), r.to.clone()))
            .collect();
        for cycle in graph::cycles(&nodes, &edges) {
            // A reported cycle has at least one member; an empty one has nothing to report.
            let Some(first) = cycle.first() else { continue };
            let path = refs
                .iter()
                .find(|r| &r.from == first && cycle.contains(&r.to))
                .map(|r| r.path.clone())
                .unwrap_or_default();
            let members: Vec<String> = cycle.iter().map(ToString::to_string).collect();
            let hint = match first.kind {
                ResourceKind::SecurityGroup => {
                    "break the cycle: security groups that admit each other need a shared group (or a CIDR) on one side"
                }
                _ => "break the cycle: a dead-letter queue must not send its own failures back",
            };
            self.error(
                &path,
                format!("reference cycle: {} → {}", members.join(" → "), first),
                hint,
            );
        }
    }
}
