//! Validation of launch templates and Auto Scaling groups.

use super::instance_types::INSTANCE_FAMILIES;
use super::*;

impl Validator<'_> {
    pub(super) fn launch_template(&mut self, lt: &LaunchTemplate, path: &str) {
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
            self.instance_type(t, &format!("{path}.instanceTypes[{i}]"));
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

    pub(super) fn auto_scaling_group(&mut self, g: &AutoScalingGroup, path: &str) {
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

    /// An instance type EC2 has: otherwise the launch template is created and every launch fails.
    fn instance_type(&mut self, name: &str, path: &str) {
        let (family, size) = name.split_once('.').unwrap_or((name, ""));
        let sizes = INSTANCE_FAMILIES
            .binary_search_by(|(f, _)| (*f).cmp(family))
            .ok()
            .and_then(|i| INSTANCE_FAMILIES.get(i))
            .map(|(_, sizes)| *sizes);
        let hint = match sizes {
            Some(sizes) if sizes.contains(&size) => return,
            Some(sizes) => format!("`{family}` comes in {}", sizes.join(", ")),
            None => match closest(family, INSTANCE_FAMILIES.iter().map(|(f, _)| *f)) {
                Some(near) => format!("no instance family `{family}`; did you mean `{near}`?"),
                None => "write family.size, e.g. m6i.large".to_string(),
            },
        };
        self.error(path, format!("`{name}` is not an EC2 instance type"), hint);
    }
}

#[cfg(test)]
mod tests {
    use super::INSTANCE_FAMILIES;

    #[test]
    fn families_are_sorted_and_unique_for_binary_search() {
        assert!(INSTANCE_FAMILIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(INSTANCE_FAMILIES.iter().all(|(_, sizes)| !sizes.is_empty()));
    }
}
