//! Rules the schema cannot express: AWS ranges, references, cycles, combinations.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use crate::convert::Positions;
use crate::diagnostic::{Diagnostic, closest};
use crate::graph::{self, ResourceId, ResourceKind};
use crate::model::*;

pub fn check(bp: &Blueprint, positions: &Positions) -> Vec<Diagnostic> {
    let mut v = Validator {
        positions,
        out: Vec::new(),
    };
    v.metadata(bp);
    v.names(bp);
    v.references(bp);
    for (i, key) in bp.spec.kms_keys.iter().enumerate() {
        v.kms_key(key, &format!("spec.kmsKeys[{i}]"));
    }
    for (i, queue) in bp.spec.queues.iter().enumerate() {
        v.queue(bp, queue, &format!("spec.queues[{i}]"));
    }
    for (i, table) in bp.spec.tables.iter().enumerate() {
        v.table(table, &format!("spec.tables[{i}]"));
    }
    if let Some(network) = &bp.spec.network {
        v.network(network);
    }
    for (i, lt) in bp.spec.launch_templates.iter().enumerate() {
        v.launch_template(lt, &format!("spec.launchTemplates[{i}]"));
    }
    for (i, group) in bp.spec.auto_scaling_groups.iter().enumerate() {
        v.auto_scaling_group(group, &format!("spec.autoScalingGroups[{i}]"));
    }
    for (i, alarm) in bp.spec.alarms.iter().enumerate() {
        v.alarm(bp, alarm, &format!("spec.alarms[{i}]"));
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

    fn duration_range(&mut self, path: &str, value: Duration, min: u64, max: u64) {
        let field = path.rsplit('.').next().unwrap_or(path);
        if value.std().subsec_nanos() != 0 {
            self.error(
                path,
                format!("`{field}` must be whole seconds, not {value}"),
                "AWS counts this in seconds",
            );
        } else if value.as_secs() < min || value.as_secs() > max {
            self.error(
                path,
                format!(
                    "`{field}` is {value}, outside the AWS range {}..{}",
                    human(min),
                    human(max)
                ),
                format!("use a value from {} to {}", human(min), human(max)),
            );
        }
    }

    fn int_range(&mut self, path: &str, value: u64, min: u64, max: u64) {
        if value < min || value > max {
            let field = path.rsplit('.').next().unwrap_or(path);
            self.error(
                path,
                format!("`{field}` is {value}, outside the range {min}..{max}"),
                format!("use a value from {min} to {max}"),
            );
        }
    }

    fn physical_name(
        &mut self,
        path: &str,
        name: &str,
        max: usize,
        allowed: fn(char) -> bool,
        what: &str,
    ) {
        if name.is_empty() || name.len() > max || !name.chars().all(allowed) {
            self.error(
                path,
                format!("`{name}` is not a valid {what}"),
                format!(
                    "use 1 to {max} characters: letters, digits{}",
                    match what {
                        "table name" => ", `_`, `-` and `.`",
                        _ => ", `_` and `-`",
                    }
                ),
            );
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
            self.error(
                &path,
                format!("reference cycle: {} → {}", members.join(" → "), first),
                "break the cycle: a dead-letter queue must not send its own failures back",
            );
        }
    }

    fn kms_key(&mut self, key: &KmsKey, path: &str) {
        if let Some(alias) = &key.alias {
            let ok = alias.starts_with("alias/")
                && !alias.starts_with("alias/aws/")
                && alias.len() > 6
                && alias.len() <= 256
                && alias[6..]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c));
            if !ok {
                self.error(
                    &format!("{path}.alias"),
                    format!("`{alias}` is not a valid KMS alias"),
                    "write `alias/<name>` with letters, digits, `/`, `_` and `-`; `alias/aws/` is reserved",
                );
            }
        }
        self.duration_range(
            &format!("{path}.deletionWindow"),
            key.deletion_window,
            7 * DAY,
            30 * DAY,
        );
        if !key.deletion_window.as_secs().is_multiple_of(DAY) {
            self.error(
                &format!("{path}.deletionWindow"),
                "`deletionWindow` must be whole days",
                "e.g. 30d",
            );
        }
        if let Some(period) = key.rotation_period {
            self.duration_range(
                &format!("{path}.rotationPeriod"),
                period,
                90 * DAY,
                2560 * DAY,
            );
            if !key.rotation {
                self.error(
                    &format!("{path}.rotationPeriod"),
                    "`rotationPeriod` is set but `rotation` is off",
                    "remove `rotationPeriod` or set `rotation: true`",
                );
            }
        }
    }

    fn key_choice(&mut self, path: &str, is_kms: bool, key: &Option<String>, arn: &Option<String>) {
        match (is_kms, key, arn) {
            (true, None, None) => self.error(
                &format!("{path}.type"),
                "`type: kms` needs `kmsKey` or `kmsKeyArn`",
                "name a blueprint key with `kmsKey`, or an existing key with `kmsKeyArn`",
            ),
            (true, Some(_), Some(_)) => self.error(
                &format!("{path}.kmsKeyArn"),
                "`kmsKey` and `kmsKeyArn` are both set",
                "keep one of them",
            ),
            (false, Some(_), _) | (false, _, Some(_)) => self.error(
                &format!("{path}.type"),
                "a KMS key is given but `type` is not `kms`",
                "set `type: kms`",
            ),
            _ => {}
        }
        if let Some(arn) = arn
            && !(arn.starts_with("arn:aws") && arn.contains(":kms:"))
        {
            self.error(
                &format!("{path}.kmsKeyArn"),
                format!("`{arn}` is not a KMS key ARN"),
                "write arn:aws:kms:<region>:<account>:key/<id>",
            );
        }
    }

    fn queue(&mut self, bp: &Blueprint, q: &Queue, path: &str) {
        if let Some(name) = &q.queue_name {
            let p = format!("{path}.queueName");
            if name.ends_with(".fifo") {
                self.error(
                    &p,
                    "FIFO queues are not supported",
                    "the platform uses a standard queue; drop `.fifo`",
                );
            } else {
                self.physical_name(
                    &p,
                    name,
                    80,
                    |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
                    "queue name",
                );
            }
        }
        self.duration_range(
            &format!("{path}.visibilityTimeout"),
            q.visibility_timeout,
            0,
            12 * HOUR,
        );
        self.duration_range(&format!("{path}.retention"), q.retention, MINUTE, 14 * DAY);
        self.duration_range(
            &format!("{path}.receiveWaitTime"),
            q.receive_wait_time,
            0,
            20 * SECOND,
        );
        self.duration_range(&format!("{path}.delay"), q.delay, 0, 15 * MINUTE);
        self.int_range(
            &format!("{path}.maxMessageSize"),
            q.max_message_size,
            1024,
            1_048_576,
        );
        let enc = format!("{path}.encryption");
        let is_kms = q.encryption.kind == QueueEncryptionKind::Kms;
        self.key_choice(
            &enc,
            is_kms,
            &q.encryption.kms_key,
            &q.encryption.kms_key_arn,
        );
        if let Some(reuse) = q.encryption.data_key_reuse {
            if is_kms {
                self.duration_range(&format!("{enc}.dataKeyReuse"), reuse, MINUTE, DAY);
            } else {
                self.error(
                    &format!("{enc}.dataKeyReuse"),
                    "`dataKeyReuse` applies only to `type: kms`",
                    "remove it or set `type: kms`",
                );
            }
        }
        if let Some(dl) = &q.dead_letter {
            let p = format!("{path}.deadLetter");
            self.int_range(
                &format!("{p}.maxReceiveCount"),
                dl.max_receive_count.into(),
                1,
                1000,
            );
            if let Some(target) = bp.spec.queues.iter().find(|t| t.name == dl.queue) {
                if target.name == q.name {
                    self.error(
                        &format!("{p}.queue"),
                        "a queue cannot be its own dead-letter queue",
                        "declare a separate DLQ",
                    );
                }
                if target.retention < q.retention {
                    self.warning(
                        &format!("{p}.queue"),
                        format!(
                            "dead-letter queue `{}` keeps messages {} but this queue keeps them {}",
                            target.name, target.retention, q.retention
                        ),
                        "a message keeps its original age in the DLQ: give the DLQ a longer retention",
                    );
                }
                if let Some(ra) = &target.redrive_allow {
                    let allowed = match ra.policy {
                        RedrivePermission::AllowAll => true,
                        RedrivePermission::DenyAll => false,
                        RedrivePermission::ByQueue => ra.source_queues.contains(&q.name),
                    };
                    if !allowed {
                        self.error(
                            &format!("{p}.queue"),
                            format!(
                                "`{}`'s redriveAllow does not admit `{}`",
                                target.name, q.name
                            ),
                            format!(
                                "add `{}` to `{}`.redriveAllow.sourceQueues",
                                q.name, target.name
                            ),
                        );
                    }
                }
            }
        }
        if let Some(ra) = &q.redrive_allow {
            let p = format!("{path}.redriveAllow");
            match (ra.policy, ra.source_queues.len()) {
                (RedrivePermission::ByQueue, 0) => self.error(
                    &format!("{p}.sourceQueues"),
                    "`policy: byQueue` needs `sourceQueues`",
                    "list 1 to 10 queue names",
                ),
                (RedrivePermission::ByQueue, n) if n > 10 => self.error(
                    &format!("{p}.sourceQueues"),
                    format!("{n} source queues, AWS allows at most 10"),
                    "use `policy: allowAll` or split the DLQ",
                ),
                (RedrivePermission::ByQueue, _) => {}
                (_, 0) => {}
                (_, _) => self.error(
                    &format!("{p}.sourceQueues"),
                    "`sourceQueues` needs `policy: byQueue`",
                    "set `policy: byQueue` or remove the list",
                ),
            }
        }
    }

    fn capacity(&mut self, path: &str, mode: BillingMode, read: Option<u64>, write: Option<u64>) {
        match mode {
            BillingMode::Provisioned => {
                for (field, value) in [("readCapacity", read), ("writeCapacity", write)] {
                    match value {
                        None => self.error(
                            &format!("{path}.{field}"),
                            format!("`billingMode: provisioned` needs `{field}`"),
                            "set capacity units, or use `billingMode: payPerRequest`",
                        ),
                        Some(0) => self.error(
                            &format!("{path}.{field}"),
                            format!("`{field}` must be at least 1"),
                            "capacity units start at 1",
                        ),
                        Some(_) => {}
                    }
                }
            }
            BillingMode::PayPerRequest => {
                for (field, value) in [("readCapacity", read), ("writeCapacity", write)] {
                    if value.is_some() {
                        self.error(
                            &format!("{path}.{field}"),
                            format!("`{field}` applies only to `billingMode: provisioned`"),
                            "remove it, or set `billingMode: provisioned`",
                        );
                    }
                }
            }
        }
    }

    fn table(&mut self, t: &Table, path: &str) {
        if let Some(name) = &t.table_name {
            let p = format!("{path}.tableName");
            self.physical_name(
                &p,
                name,
                255,
                |c| c.is_ascii_alphanumeric() || "_-.".contains(c),
                "table name",
            );
            if name.len() < 3 {
                self.error(
                    &p,
                    "table names have at least 3 characters",
                    "choose a longer name",
                );
            }
        }
        self.capacity(path, t.billing_mode, t.read_capacity, t.write_capacity);
        let mut attribute_types: BTreeMap<&str, (AttributeType, String)> = BTreeMap::new();
        let key_of = |key: &KeyAttribute, at: String| (key.name.clone(), key.kind, at);
        let mut keys = vec![key_of(&t.hash_key, format!("{path}.hashKey"))];
        if let Some(r) = &t.range_key {
            keys.push(key_of(r, format!("{path}.rangeKey")));
        }
        if t.global_secondary_indexes.len() > 20 {
            self.error(
                &format!("{path}.globalSecondaryIndexes"),
                "more than 20 global secondary indexes",
                "AWS allows 20 per table",
            );
        }
        let mut index_names = BTreeSet::new();
        for (i, gsi) in t.global_secondary_indexes.iter().enumerate() {
            let p = format!("{path}.globalSecondaryIndexes[{i}]");
            if !index_names.insert(gsi.name.as_str()) {
                self.error(
                    &format!("{p}.name"),
                    format!("duplicate index name `{}`", gsi.name),
                    "index names are unique per table",
                );
            }
            keys.push(key_of(&gsi.hash_key, format!("{p}.hashKey")));
            if let Some(r) = &gsi.range_key {
                keys.push(key_of(r, format!("{p}.rangeKey")));
            }
            match (gsi.projection, gsi.non_key_attributes.is_empty()) {
                (Projection::Include, true) => self.error(
                    &format!("{p}.nonKeyAttributes"),
                    "`projection: include` needs `nonKeyAttributes`",
                    "list the attributes to project",
                ),
                (Projection::All | Projection::KeysOnly, false) => self.error(
                    &format!("{p}.nonKeyAttributes"),
                    "`nonKeyAttributes` needs `projection: include`",
                    "set `projection: include`",
                ),
                _ => {}
            }
            self.capacity(&p, t.billing_mode, gsi.read_capacity, gsi.write_capacity);
        }
        for (name, kind, at) in &keys {
            match attribute_types.get(name.as_str()) {
                Some((first, first_at)) if first != kind => {
                    let first_at = first_at.clone();
                    self.error(
                        &format!("{at}.type"),
                        format!("attribute `{name}` is {kind:?} here but {first:?} at {first_at}"),
                        "an attribute has one type in every key it is used in",
                    );
                }
                _ => {
                    attribute_types
                        .entry(name.as_str())
                        .or_insert((*kind, at.clone()));
                }
            }
        }
        let enc = format!("{path}.encryption");
        let is_kms = t.encryption.kind == TableEncryptionKind::Kms;
        self.key_choice(
            &enc,
            is_kms,
            &t.encryption.kms_key,
            &t.encryption.kms_key_arn,
        );
        if let Some(ttl) = &t.ttl_attribute
            && let Some((kind, _)) = attribute_types.get(ttl.as_str())
            && *kind != AttributeType::N
        {
            self.error(
                &format!("{path}.ttlAttribute"),
                format!("TTL attribute `{ttl}` is a key of type {kind:?}"),
                "TTL reads a Number attribute of epoch seconds",
            );
        }
    }

    fn network(&mut self, n: &Network) {
        let vpc = &n.vpc;
        let path = "spec.network.vpc";
        let vpc_net = match (&vpc.id, &vpc.cidr) {
            (Some(_), Some(_)) => {
                self.error(
                    &format!("{path}.cidr"),
                    "`id` and `cidr` are both set",
                    "use `id` for an existing VPC, or `cidr` for a new one",
                );
                None
            }
            (None, None) => {
                self.error(
                    path,
                    "the VPC needs `id` (existing) or `cidr` (new)",
                    "e.g. `cidr: 10.0.0.0/16`",
                );
                None
            }
            (Some(id), None) => {
                if !id.starts_with("vpc-") {
                    self.error(
                        &format!("{path}.id"),
                        format!("`{id}` is not a VPC id"),
                        "VPC ids look like vpc-0123456789abcdef0",
                    );
                }
                None
            }
            (None, Some(cidr)) => {
                let parsed = parse_cidr(cidr);
                match parsed {
                    Some((_, len)) if (16..=28).contains(&len) => parsed,
                    _ => {
                        self.error(
                            &format!("{path}.cidr"),
                            format!("`{cidr}` is not an IPv4 CIDR from /16 to /28"),
                            "e.g. 10.0.0.0/16",
                        );
                        None
                    }
                }
            }
        };
        let mut subnet_nets: Vec<((u32, u8), String)> = Vec::new();
        for (i, s) in vpc.subnets.iter().enumerate() {
            let p = format!("{path}.subnets[{i}]");
            if s.map_public_ip_on_launch {
                self.warning(
                    &format!("{p}.mapPublicIpOnLaunch"),
                    "instances in this subnet get public IPs",
                    "the fleet belongs in private subnets",
                );
            }
            match (&vpc.id, &s.id, &s.cidr) {
                (Some(_), None, _) => self.error(
                    &p,
                    "subnets of an existing VPC need `id`",
                    "give the subnet id, e.g. subnet-0abc…",
                ),
                (Some(_), Some(_), Some(_)) => self.error(
                    &format!("{p}.cidr"),
                    "an existing subnet takes no `cidr`",
                    "remove `cidr`",
                ),
                (None, Some(_), _) => self.error(
                    &format!("{p}.id"),
                    "a new VPC cannot hold existing subnets",
                    "remove `id` and give `cidr`",
                ),
                (None, None, None) => {
                    self.error(&p, "a new subnet needs `cidr`", "e.g. `cidr: 10.0.1.0/24`")
                }
                (None, None, Some(cidr)) => match parse_cidr(cidr) {
                    None => self.error(
                        &format!("{p}.cidr"),
                        format!("`{cidr}` is not an IPv4 CIDR"),
                        "e.g. 10.0.1.0/24",
                    ),
                    Some(net) => {
                        if let Some(outer) = vpc_net
                            && !contains(outer, net)
                        {
                            self.error(
                                &format!("{p}.cidr"),
                                format!(
                                    "`{cidr}` is outside the VPC's {}",
                                    vpc.cidr.as_deref().unwrap_or_default()
                                ),
                                "choose a range inside the VPC CIDR",
                            );
                        }
                        if let Some((_, other)) =
                            subnet_nets.iter().find(|(o, _)| overlaps(*o, net))
                        {
                            self.error(
                                &format!("{p}.cidr"),
                                format!("`{cidr}` overlaps subnet `{other}`"),
                                "subnet ranges must not overlap",
                            );
                        }
                        subnet_nets.push((net, s.name.clone()));
                    }
                },
                (Some(_), Some(id), None) => {
                    if !id.starts_with("subnet-") {
                        self.error(
                            &format!("{p}.id"),
                            format!("`{id}` is not a subnet id"),
                            "subnet ids look like subnet-0123456789abcdef0",
                        );
                    }
                }
            }
        }
        for (i, e) in n.endpoints.iter().enumerate() {
            let p = format!("spec.network.endpoints[{i}]");
            let service = e.service.rsplit('.').next().unwrap_or(&e.service);
            match e.kind {
                EndpointType::Gateway => {
                    if !matches!(service, "dynamodb" | "s3") {
                        self.error(
                            &format!("{p}.type"),
                            format!("`{}` has no gateway endpoint", e.service),
                            "gateway endpoints exist for dynamodb and s3; use `type: interface`",
                        );
                    }
                    if !e.subnets.is_empty() || !e.security_group_ids.is_empty() {
                        self.error(
                            &format!("{p}.subnets"),
                            "gateway endpoints take route tables, not subnets or security groups",
                            "use `routeTables`",
                        );
                    }
                    if e.route_tables.is_empty() && vpc.subnets.is_empty() {
                        self.error(
                            &format!("{p}.routeTables"),
                            "no route tables: give `routeTables` or subnets in the VPC",
                            "list route table ids (rtb-…)",
                        );
                    }
                }
                EndpointType::Interface => {
                    if e.subnets.is_empty() {
                        self.error(
                            &format!("{p}.subnets"),
                            "an interface endpoint needs `subnets`",
                            "list the blueprint subnets it serves",
                        );
                    }
                    if !e.route_tables.is_empty() {
                        self.error(
                            &format!("{p}.routeTables"),
                            "interface endpoints take subnets, not route tables",
                            "remove `routeTables`",
                        );
                    }
                }
            }
            for (j, sg) in e.security_group_ids.iter().enumerate() {
                if !sg.starts_with("sg-") {
                    self.error(
                        &format!("{p}.securityGroupIds[{j}]"),
                        format!("`{sg}` is not a security group id"),
                        "security group ids look like sg-0123456789abcdef0",
                    );
                }
            }
        }
    }

    fn launch_template(&mut self, lt: &LaunchTemplate, path: &str) {
        if let Some(name) = &lt.launch_template_name {
            let ok = name.len() >= 3
                && name.len() <= 128
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "()./_-".contains(c));
            if !ok {
                self.error(
                    &format!("{path}.launchTemplateName"),
                    format!("`{name}` is not a valid launch template name"),
                    "use 3 to 128 letters, digits and ( ) . / _ -",
                );
            }
        }
        if let Some(size) = lt.root_volume_size {
            self.int_range(&format!("{path}.rootVolumeSize"), size.into(), 1, 16_384);
        }
        if !lt.image_id.starts_with("ami-") {
            self.error(
                &format!("{path}.imageId"),
                format!("`{}` is not an AMI id", lt.image_id),
                "AMI ids look like ami-0123456789abcdef0",
            );
        }
        if lt.instance_types.is_empty() {
            self.error(
                &format!("{path}.instanceTypes"),
                "`instanceTypes` is empty",
                "list at least one type, e.g. m6i.large",
            );
        }
        for (i, t) in lt.instance_types.iter().enumerate() {
            let ok = t.split_once('.').is_some_and(|(family, size)| {
                !family.is_empty()
                    && !size.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            });
            if !ok {
                self.error(
                    &format!("{path}.instanceTypes[{i}]"),
                    format!("`{t}` is not an instance type"),
                    "write family.size, e.g. m6i.large",
                );
            }
        }
        if let Some(user_data) = &lt.user_data
            && user_data.len() > 12 * 1024
        {
            self.error(
                &format!("{path}.userData"),
                "user data exceeds 16 KiB once base64-encoded",
                "move the script to S3 and fetch it at boot",
            );
        }
        for (j, sg) in lt.security_group_ids.iter().enumerate() {
            if !sg.starts_with("sg-") {
                self.error(
                    &format!("{path}.securityGroupIds[{j}]"),
                    format!("`{sg}` is not a security group id"),
                    "security group ids look like sg-0123456789abcdef0",
                );
            }
        }
    }

    fn auto_scaling_group(&mut self, g: &AutoScalingGroup, path: &str) {
        if let Some(name) = &g.group_name {
            self.physical_name(
                &format!("{path}.groupName"),
                name,
                255,
                |c| !c.is_control() && c != ':',
                "group name",
            );
        }
        if g.min_size > g.max_size {
            self.error(
                &format!("{path}.minSize"),
                format!(
                    "`minSize` {} is greater than `maxSize` {}",
                    g.min_size, g.max_size
                ),
                "minSize ≤ desiredCapacity ≤ maxSize",
            );
        }
        if let Some(desired) = g.desired_capacity
            && (desired < g.min_size || desired > g.max_size)
        {
            self.error(
                &format!("{path}.desiredCapacity"),
                format!(
                    "`desiredCapacity` {desired} is outside [{}, {}]",
                    g.min_size, g.max_size
                ),
                "minSize ≤ desiredCapacity ≤ maxSize",
            );
        }
        if g.subnets.is_empty() {
            self.error(
                &format!("{path}.subnets"),
                "`subnets` is empty",
                "list the private subnets the fleet runs in",
            );
        }
        if let Some(dist) = &g.instances_distribution {
            self.int_range(
                &format!("{path}.instancesDistribution.onDemandPercentageAboveBase"),
                dist.on_demand_percentage_above_base.into(),
                0,
                100,
            );
            if dist.on_demand_base_capacity > g.max_size {
                self.error(
                    &format!("{path}.instancesDistribution.onDemandBaseCapacity"),
                    format!(
                        "on-demand base {} exceeds `maxSize` {}",
                        dist.on_demand_base_capacity, g.max_size
                    ),
                    "the base is part of the group's capacity",
                );
            }
        }
        let mut hooks = BTreeSet::new();
        for (i, hook) in g.lifecycle_hooks.iter().enumerate() {
            let p = format!("{path}.lifecycleHooks[{i}]");
            if !hooks.insert(hook.name.as_str()) {
                self.error(
                    &format!("{p}.name"),
                    format!("duplicate lifecycle hook `{}`", hook.name),
                    "hook names are unique per group",
                );
            }
            self.duration_range(
                &format!("{p}.heartbeatTimeout"),
                hook.heartbeat_timeout,
                30,
                2 * HOUR,
            );
        }
        self.duration_range(
            &format!("{path}.healthCheck.gracePeriod"),
            g.health_check.grace_period,
            0,
            2 * HOUR,
        );
    }

    fn metric_source(&mut self, m: &MetricRef, path: &str) {
        match (&m.queue, &m.fleet, &m.namespace) {
            (Some(_), Some(_), _) => self.error(
                &format!("{path}.fleet"),
                "`queue` and `fleet` are both set",
                "an alarm or a metric line reads one source",
            ),
            (None, None, None) => self.error(
                &format!("{path}.metric"),
                "no metric source: set `queue`, `fleet` or `namespace`",
                "e.g. `queue: transactions` with `metric: ApproximateNumberOfMessagesVisible`",
            ),
            (Some(_), None, Some(ns)) if ns != "AWS/SQS" => self.error(
                &format!("{path}.namespace"),
                format!("`queue` implies the AWS/SQS namespace, not `{ns}`"),
                "remove `namespace`, or use `dimensions` for a custom metric",
            ),
            _ => {}
        }
        if m.queue.is_some() && m.namespace.is_none() && !SQS_METRICS.contains(&m.metric.as_str()) {
            let hint = match closest(&m.metric, SQS_METRICS.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!("SQS metrics: {}", SQS_METRICS.join(", ")),
            };
            self.error(
                &format!("{path}.metric"),
                format!("`{}` is not an SQS metric", m.metric),
                hint,
            );
        }
        if m.fleet.is_some() && m.namespace.is_none() && !ASG_METRICS.contains(&m.metric.as_str()) {
            let hint = match closest(&m.metric, ASG_METRICS.iter().copied()) {
                Some(near) => format!("did you mean `{near}`? For a custom metric set `namespace`"),
                None => format!(
                    "Auto Scaling metrics: {}; for a custom metric set `namespace`",
                    ASG_METRICS.join(", ")
                ),
            };
            self.error(
                &format!("{path}.metric"),
                format!("`{}` is not an Auto Scaling group metric", m.metric),
                hint,
            );
        }
    }

    fn alarm(&mut self, bp: &Blueprint, a: &Alarm, path: &str) {
        if let Some(name) = &a.alarm_name {
            self.physical_name(
                &format!("{path}.alarmName"),
                name,
                255,
                |c| !c.is_control(),
                "alarm name",
            );
        }
        self.metric_source(&a.metric, path);
        if let Some(fleet) = &a.metric.fleet
            && a.metric.namespace.is_none()
            && let Some(group) = bp
                .spec
                .auto_scaling_groups
                .iter()
                .find(|g| &g.name == fleet)
            && !group.group_metrics
        {
            self.error(
                &format!("{path}.fleet"),
                format!("fleet `{fleet}` does not publish group metrics"),
                format!("set `groupMetrics: true` on `{fleet}`"),
            );
        }
        let period = a.period.as_secs();
        if a.period.std().subsec_nanos() != 0
            || !(period == 10 || period == 30 || (period >= 60 && period.is_multiple_of(60)))
        {
            self.error(
                &format!("{path}.period"),
                format!(
                    "`period` is {}; CloudWatch takes 10s, 30s or a multiple of 60s",
                    a.period
                ),
                "e.g. 60s or 5m",
            );
        }
        if a.evaluation_periods == 0 {
            self.error(
                &format!("{path}.evaluationPeriods"),
                "`evaluationPeriods` must be at least 1",
                "e.g. 1",
            );
        } else if period.saturating_mul(a.evaluation_periods.into()) > DAY {
            self.error(
                &format!("{path}.evaluationPeriods"),
                "period × evaluationPeriods exceeds one day",
                "CloudWatch evaluates at most 24 hours of data",
            );
        }
        if let Some(d) = a.datapoints_to_alarm {
            self.int_range(
                &format!("{path}.datapointsToAlarm"),
                d.into(),
                1,
                a.evaluation_periods.into(),
            );
        }
        for (field, list) in [("actions", &a.actions), ("okActions", &a.ok_actions)] {
            for (i, arn) in list.iter().enumerate() {
                if !arn.starts_with("arn:") {
                    self.error(
                        &format!("{path}.{field}[{i}]"),
                        format!("`{arn}` is not an ARN"),
                        "actions are SNS topic or Auto Scaling policy ARNs",
                    );
                }
            }
        }
    }

    fn dashboard(&mut self, d: &Dashboard, path: &str) {
        if d.widgets.is_empty() {
            self.error(
                &format!("{path}.widgets"),
                "a dashboard needs at least one widget",
                "add a widget with `title` and `metrics`",
            );
        }
        for (i, w) in d.widgets.iter().enumerate() {
            let p = format!("{path}.widgets[{i}]");
            self.int_range(&format!("{p}.width"), w.width.into(), 1, 24);
            self.int_range(&format!("{p}.height"), w.height.into(), 1, 1000);
            if w.metrics.is_empty() {
                self.error(
                    &format!("{p}.metrics"),
                    "a widget needs at least one metric",
                    "add a metric line",
                );
            }
            for (j, m) in w.metrics.iter().enumerate() {
                self.metric_source(&m.metric, &format!("{p}.metrics[{j}]"));
            }
        }
    }

    fn scaling_policy(&mut self, p: &ScalingPolicy, path: &str) {
        match (&p.fleet, &p.deployment) {
            (Some(_), Some(_)) => self.error(
                &format!("{path}.deployment"),
                "`fleet` and `deployment` are both set",
                "a policy drives one fleet",
            ),
            (None, None) => self.error(
                path,
                "no fleet: set `fleet` (an Auto Scaling group) or `deployment`",
                "e.g. `fleet: workers`",
            ),
            (Some(_), None) => {
                for (field, v) in [
                    ("minReplicas", p.min_replicas),
                    ("maxReplicas", p.max_replicas),
                ] {
                    if v.is_some() {
                        self.error(&format!("{path}.{field}"), format!("`{field}` applies to a `deployment`; an Auto Scaling group has its own bounds"), "set minSize/maxSize on the group");
                    }
                }
            }
            (None, Some(_)) => match (p.min_replicas, p.max_replicas) {
                (Some(min), Some(max)) if min > max => self.error(
                    &format!("{path}.minReplicas"),
                    format!("`minReplicas` {min} is greater than `maxReplicas` {max}"),
                    "minReplicas ≤ maxReplicas",
                ),
                (Some(_), Some(_)) => {}
                _ => self.error(
                    path,
                    "a `deployment` fleet needs `minReplicas` and `maxReplicas`",
                    "e.g. minReplicas: 2, maxReplicas: 10",
                ),
            },
        }
        if p.target_backlog_per_instance == 0 {
            self.error(
                &format!("{path}.targetBacklogPerInstance"),
                "`targetBacklogPerInstance` must be at least 1",
                "pick acceptable latency ÷ processing time per message (see `ballast simulate`)",
            );
        }
        self.int_range(
            &format!("{path}.tolerancePercent"),
            p.tolerance_percent.into(),
            0,
            99,
        );
        self.duration_range(
            &format!("{path}.evaluationInterval"),
            p.evaluation_interval,
            1,
            5 * MINUTE,
        );
        self.duration_range(
            &format!("{path}.scaleInCooldown"),
            p.scale_in_cooldown,
            0,
            HOUR,
        );
        self.duration_range(
            &format!("{path}.stabilizationWindow"),
            p.stabilization_window,
            0,
            HOUR,
        );
        for (field, v) in [
            ("maxScaleOutStep", p.max_scale_out_step),
            ("maxScaleInStep", p.max_scale_in_step),
        ] {
            if v == Some(0) {
                self.error(
                    &format!("{path}.{field}"),
                    format!("`{field}` must be at least 1"),
                    "omit it for no limit",
                );
            }
        }
    }
}

const SQS_METRICS: &[&str] = &[
    "ApproximateAgeOfOldestMessage",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesVisible",
    "NumberOfEmptyReceives",
    "NumberOfMessagesDeleted",
    "NumberOfMessagesReceived",
    "NumberOfMessagesSent",
    "SentMessageSize",
];

const ASG_METRICS: &[&str] = &[
    "GroupMinSize",
    "GroupMaxSize",
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupPendingInstances",
    "GroupStandbyInstances",
    "GroupTerminatingInstances",
    "GroupTotalInstances",
];

fn parse_cidr(text: &str) -> Option<(u32, u8)> {
    let (addr, len) = text.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    if len > 32 {
        return None;
    }
    let bits = u32::from(addr);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (bits & !mask == 0).then_some((bits, len))
}

fn contains(outer: (u32, u8), inner: (u32, u8)) -> bool {
    let mask = if outer.1 == 0 {
        0
    } else {
        u32::MAX << (32 - outer.1)
    };
    inner.1 >= outer.1 && inner.0 & mask == outer.0
}

fn overlaps(a: (u32, u8), b: (u32, u8)) -> bool {
    contains(a, b) || contains(b, a)
}
