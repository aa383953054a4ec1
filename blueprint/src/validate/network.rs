//! Validation of the VPC, its subnets and endpoints.

use std::net::Ipv4Addr;

use super::endpoint_services::ENDPOINT_SERVICES;
use super::*;

impl Validator<'_> {
    pub(super) fn network(&mut self, bp: &Blueprint, n: &Network) {
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
            if let Some(zone) = &s.availability_zone {
                self.availability_zone(&bp.metadata.region, zone, &format!("{p}.availabilityZone"));
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
        for (i, g) in vpc.security_groups.iter().enumerate() {
            self.security_group(g, &format!("{path}.securityGroups[{i}]"));
        }
        for (i, e) in n.endpoints.iter().enumerate() {
            let p = format!("spec.network.endpoints[{i}]");
            self.endpoint_service(&bp.metadata.region, &e.service, &format!("{p}.service"));
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
                    if !e.subnets.is_empty()
                        || !e.security_group_ids.is_empty()
                        || !e.security_groups.is_empty()
                    {
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
}

impl Validator<'_> {
    fn security_group(&mut self, g: &SecurityGroup, path: &str) {
        if let Some(name) = &g.group_name {
            let p = format!("{path}.groupName");
            if name.starts_with("sg-") {
                self.error(
                    &p,
                    format!("`{name}` starts with `sg-`"),
                    "EC2 reserves the `sg-` prefix for group ids; choose another name",
                );
            } else {
                self.physical_name(
                    &p,
                    name,
                    255,
                    |c| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c),
                    "security group name",
                );
            }
        }
        let description_ok = !g.description.is_empty()
            && g.description.len() <= 255
            && g.description
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c));
        if !description_ok {
            self.error(
                &format!("{path}.description"),
                "the description is empty, over 255 characters or has characters EC2 refuses",
                "use letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*",
            );
        }
        for (direction, rules) in [("ingress", &g.ingress), ("egress", &g.egress)] {
            let mut seen: BTreeMap<&SecurityGroupRule, usize> = BTreeMap::new();
            for (j, rule) in rules.iter().enumerate() {
                let p = format!("{path}.{direction}[{j}]");
                self.security_group_rule(rule, &p);
                if let Some(first) = seen.insert(rule, j) {
                    self.error(
                        &p,
                        format!("this rule repeats {direction}[{first}]"),
                        "rules are a set; remove the copy",
                    );
                }
            }
        }
    }

    fn security_group_rule(&mut self, rule: &SecurityGroupRule, path: &str) {
        match (&rule.cidr, &rule.group) {
            (None, None) => self.error(
                path,
                "a rule needs a peer: `cidr` or `group`",
                "e.g. `cidr: 10.20.0.0/16`, or `group: workers`",
            ),
            (Some(_), Some(_)) => self.error(
                &format!("{path}.group"),
                "`cidr` and `group` are both set",
                "write one rule per peer",
            ),
            (Some(cidr), None) if parse_cidr(cidr).is_none() => self.error(
                &format!("{path}.cidr"),
                format!("`{cidr}` is not an IPv4 CIDR"),
                "e.g. 10.20.0.0/16, or 0.0.0.0/0 for anywhere",
            ),
            _ => {}
        }
        let has_ports = rule.port.is_some() || rule.from_port.is_some() || rule.to_port.is_some();
        match rule.protocol {
            RuleProtocol::All | RuleProtocol::Icmp if has_ports => self.error(
                &format!("{path}.protocol"),
                format!(
                    "`protocol: {}` takes no ports",
                    match rule.protocol {
                        RuleProtocol::All => "all",
                        _ => "icmp",
                    }
                ),
                "remove `port`, `fromPort` and `toPort`, or use tcp or udp",
            ),
            RuleProtocol::Tcp | RuleProtocol::Udp => {
                match (rule.port, rule.from_port, rule.to_port) {
                    (Some(_), None, None) => {}
                    (None, Some(from), Some(to)) if from <= to => {}
                    (None, Some(_), Some(_)) => self.error(
                        &format!("{path}.toPort"),
                        "`toPort` is below `fromPort`",
                        "write the range from its lowest port to its highest",
                    ),
                    (None, None, None) => self.error(
                        path,
                        "a tcp or udp rule needs `port`, or `fromPort` and `toPort`",
                        "e.g. `port: 443`",
                    ),
                    _ => self.error(
                        &format!("{path}.port"),
                        "give either `port`, or `fromPort` and `toPort`",
                        "`port: 443` is one port; `fromPort: 1024, toPort: 65535` a range",
                    ),
                }
            }
            _ => {}
        }
    }

    /// A zone name is its region's name plus a letter (`eu-west-1a`), or a Local Zone's
    /// (`us-west-2-lax-1a`); a zone of another region makes CreateSubnet fail mid-apply.
    fn availability_zone(&mut self, region: &str, zone: &str, path: &str) {
        let rest = zone.strip_prefix(region).unwrap_or_default();
        let ok = !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && rest.ends_with(|c: char| c.is_ascii_lowercase());
        if !ok {
            self.error(
                path,
                format!("`{zone}` is not an availability zone of `{region}` (`metadata.region`)"),
                format!("write the region's name and a zone letter, e.g. `{region}a`"),
            );
        }
    }

    /// The short name (`sqs`), `com.amazonaws.<region>.<service>` for this region, or a PrivateLink
    /// endpoint service (`com.amazonaws.vpce.<region>.vpce-svc-…`).
    fn endpoint_service(&mut self, region: &str, service: &str, path: &str) {
        if let Some(private_link) = service.strip_prefix("com.amazonaws.vpce.") {
            if !private_link
                .strip_prefix(region)
                .is_some_and(|rest| rest.starts_with(".vpce-svc-"))
            {
                self.error(
                    path,
                    format!("`{service}` is not an endpoint service of `{region}`"),
                    format!(
                        "PrivateLink services are named com.amazonaws.vpce.{region}.vpce-svc-…"
                    ),
                );
            }
            return;
        }
        let short = match service.strip_prefix("com.amazonaws.") {
            None => service,
            Some(full) => {
                match full.strip_prefix(region).and_then(|r| r.strip_prefix('.')) {
                    Some(short) => short,
                    None => {
                        self.error(
                        path,
                        format!("`{service}` is not a service name of `{region}` (`metadata.region`)"),
                        format!("write the short name (e.g. `sqs`) or com.amazonaws.{region}.<service>"),
                    );
                        return;
                    }
                }
            }
        };
        if ENDPOINT_SERVICES.binary_search(&short).is_err() {
            let hint = match closest(short, ENDPOINT_SERVICES.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => "name an AWS service with VPC endpoints, e.g. `sqs`, `dynamodb`, `kms`, `monitoring`; a PrivateLink service by its com.amazonaws.vpce.… name".to_string(),
            };
            self.error(
                path,
                format!("`{short}` is not an AWS service with VPC endpoints"),
                hint,
            );
        }
    }
}

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
