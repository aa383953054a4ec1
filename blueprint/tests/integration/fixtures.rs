//! Every invalid fixture is rejected with exactly the problems it lists in `# expect:` lines
//! (`LINE:COLUMN: message`), and the shipped blueprints are valid.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn expectations(source: &str) -> Vec<(usize, usize, String)> {
    source
        .lines()
        .filter_map(|line| line.strip_prefix("# expect: "))
        .map(|spec| {
            let mut parts = spec.splitn(3, ':');
            let line = parts.next().unwrap().trim().parse().expect("line number");
            let column = parts.next().unwrap().trim().parse().expect("column number");
            (line, column, parts.next().unwrap().trim().to_string())
        })
        .collect()
}

#[test]
fn every_invalid_fixture_reports_exactly_its_expected_problems() {
    let dir = workspace_root().join("blueprint/tests/fixtures/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 25, "only {} invalid fixtures", files.len());
    for path in files {
        let source = std::fs::read_to_string(&path).unwrap();
        let expected = expectations(&source);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(!expected.is_empty(), "{name} lists no `# expect:` line");
        let diagnostics = ballast_blueprint::parse(&name, &source)
            .expect_err(&format!("{name} must be rejected"));
        let errors: Vec<_> = diagnostics.errors().collect();
        for (line, column, message) in &expected {
            assert!(
                errors.iter().any(|d| d.position.line == *line
                    && d.position.column == *column
                    && d.message.contains(message.as_str())),
                "{name}: expected `{line}:{column}: {message}`, got:\n{diagnostics}"
            );
        }
        assert_eq!(
            errors.len(),
            expected.len(),
            "{name}: unexpected extra problems:\n{diagnostics}"
        );
        for d in &errors {
            let rendered = d.render(&name);
            assert!(
                rendered.starts_with(&format!(
                    "{name}:{}:{}: error: ",
                    d.position.line, d.position.column
                )),
                "{rendered}"
            );
            assert!(d.hint.is_some(), "{name}: no hint in {rendered}");
        }
    }
}

#[test]
fn shipped_blueprints_are_valid_and_carry_the_schema_modeline() {
    for name in ["banking.yaml", "minimal.yaml"] {
        let path = workspace_root().join("blueprints").join(name);
        let loaded = ballast_blueprint::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(loaded.warnings.is_empty(), "{name}: {:?}", loaded.warnings);
        let source = std::fs::read_to_string(&path).unwrap();
        assert!(source.starts_with("# yaml-language-server: $schema=./schema.json"));
    }
}

#[test]
fn banking_blueprint_is_the_seed_platform() {
    use ballast_blueprint::*;
    let bp = load(&workspace_root().join("blueprints/banking.yaml"))
        .unwrap()
        .blueprint;
    let queue = bp.queue("transactions").unwrap();
    assert_eq!(queue.visibility_timeout.as_secs(), 60);
    assert_eq!(queue.retention.as_secs(), 14 * 86_400);
    assert_eq!(queue.receive_wait_time.as_secs(), 20);
    assert_eq!(queue.encryption.kind, QueueEncryptionKind::Kms);
    let dead_letter = queue.dead_letter.as_ref().unwrap();
    assert_eq!(
        (dead_letter.queue.as_str(), dead_letter.max_receive_count),
        ("transactions-dlq", 3)
    );
    let dlq = bp.queue("transactions-dlq").unwrap();
    assert_eq!(dlq.retention.as_secs(), 14 * 86_400);
    assert_eq!(dlq.encryption.kind, QueueEncryptionKind::Kms);
    let group = bp.auto_scaling_group("workers").unwrap();
    assert_eq!((group.min_size, group.max_size), (2, 10));
    assert!(
        group
            .instances_distribution
            .as_ref()
            .unwrap()
            .on_demand_percentage_above_base
            < 100
    );
    let policy = &bp.spec.scaling_policies[0];
    assert_eq!(policy.target_backlog_per_instance, Some(100));
    assert_eq!(policy.scale_in_cooldown.as_secs(), 300);
    for table in &bp.spec.tables {
        assert_eq!(table.encryption.kind, TableEncryptionKind::Kms);
        assert!(table.point_in_time_recovery);
    }
    let alarms: Vec<(&str, &str, String)> = bp
        .spec
        .alarms
        .iter()
        .map(|a| {
            let op = match a.comparison {
                Comparison::GreaterThan => ">",
                Comparison::LessThan => "<",
                _ => "?",
            };
            (a.metric.metric.as_str(), op, a.threshold.to_string())
        })
        .collect();
    assert_eq!(
        alarms,
        [
            (
                "ApproximateNumberOfMessagesVisible",
                ">",
                "1000".to_string()
            ),
            ("ApproximateAgeOfOldestMessage", ">", "300".to_string()),
            ("HeldTransactionOldestAgeSeconds", ">", "14400".to_string()),
            ("BillOverdueOldestAgeSeconds", ">", "7200".to_string()),
            ("ApproximateNumberOfMessagesVisible", ">", "10".to_string()),
            ("GroupInServiceInstances", "<", "2".to_string()),
            ("ProcessingErrors", ">", "50".to_string()),
        ]
    );
    assert!(safety_overrides(&bp).is_empty());
    let order = dependency_order(&bp);
    let position = |kind, name: &str| {
        order
            .iter()
            .position(|r| *r == ResourceId::new(kind, name))
            .unwrap()
    };
    assert!(
        position(ResourceKind::KmsKey, "data") < position(ResourceKind::Queue, "transactions-dlq")
    );
    assert!(
        position(ResourceKind::Queue, "transactions-dlq")
            < position(ResourceKind::Queue, "transactions")
    );
    assert!(
        position(ResourceKind::LaunchTemplate, "worker")
            < position(ResourceKind::AutoScalingGroup, "workers")
    );
    assert!(
        position(ResourceKind::Subnet, "private-a") < position(ResourceKind::VpcEndpoint, "sqs")
    );
}

#[test]
fn safety_defaults_switched_off_are_named() {
    let source = "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: s, region: us-east-1}\nspec:\n  queues:\n    - name: q\n      encryption: {type: none}\n      tlsOnly: false\n  launchTemplates:\n    - name: lt\n      imageId: ami-1\n      instanceTypes: [t3.micro]\n      metadataHttpTokens: optional\n      associatePublicIpAddress: true\n";
    let bp = ballast_blueprint::parse("s.yaml", source)
        .unwrap()
        .blueprint;
    let fields: Vec<&str> = ballast_blueprint::safety_overrides(&bp)
        .iter()
        .map(|o| o.field)
        .collect();
    assert_eq!(
        fields,
        [
            "encryption.type",
            "tlsOnly",
            "metadataHttpTokens",
            "associatePublicIpAddress"
        ]
    );
}

/// The warnings of a blueprint that parses, rendered as `validate` prints them.
fn rendered_warnings(source: &str) -> Vec<String> {
    let loaded = ballast_blueprint::parse("s.yaml", source).unwrap();
    loaded.warnings.iter().map(|w| w.render("s.yaml")).collect()
}

/// Asserts `source` has exactly one warning, starting with `message` and giving `hint`.
fn assert_one_warning(source: &str, message: &str, hint: &str) {
    let rendered = rendered_warnings(source);
    assert_eq!(rendered.len(), 1, "{rendered:?}");
    assert!(rendered[0].starts_with(message), "{rendered:?}");
    assert!(
        rendered[0].contains(&format!("hint: {hint}")),
        "{rendered:?}"
    );
}

#[test]
fn a_plain_http_dead_letter_queue_of_a_tls_only_queue_is_warned_about_where_it_is_named() {
    let source = "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: s, region: us-east-1}\nspec:\n  queues:\n    - name: q\n      deadLetter: {queue: dlq, maxReceiveCount: 3}\n    - name: dlq\n      tlsOnly: false\n";
    assert_one_warning(
        source,
        "s.yaml:7:27: warning: dead-letter queue `dlq` accepts plain HTTP (`tlsOnly: false`) but this queue is TLS-only",
        "messages moved to `dlq` can be read without TLS",
    );
    // Both plain HTTP: nothing is weakened by the move, so nothing to warn about.
    let both = source.replace("    - name: q\n", "    - name: q\n      tlsOnly: false\n");
    assert!(rendered_warnings(&both).is_empty());
}

#[test]
fn a_latency_objective_shorter_than_the_boot_time_is_warned_about() {
    let source = "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: s, region: us-east-1}\nspec:\n  queues: [{name: q}]\n  scalingPolicies:\n    - name: p\n      queue: q\n      deployment: {namespace: ns, name: workers}\n      minReplicas: 1\n      maxReplicas: 3\n      targetBacklogPerInstance: 100\n      mode: queueing\n      latencyObjective: 20s\n";
    assert_one_warning(
        source,
        "s.yaml:14:25: warning: `latencyObjective` 20s is shorter than `bootTime` 90s",
        "the policy will launch for bursts",
    );
    // At the boot time, without it, or in `mode: backlog` (where 20s at 5 msg/s per instance is
    // the target given, 100): no warning.
    for quiet in [
        source.replace("latencyObjective: 20s", "latencyObjective: 90s"),
        source.replace("      latencyObjective: 20s\n", ""),
        source.replace("mode: queueing", "mode: backlog"),
    ] {
        assert!(rendered_warnings(&quiet).is_empty(), "{quiet}");
    }
}

/// `mode: backlog` with a target and an objective that asks for another one: the target decides,
/// and `validate` says so where the target is written, with both ways out.
#[test]
fn a_target_the_latency_objective_contradicts_is_warned_about() {
    let source = "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: s, region: us-east-1}\nspec:\n  queues: [{name: q}]\n  scalingPolicies:\n    - name: p\n      queue: q\n      deployment: {namespace: ns, name: workers}\n      minReplicas: 1\n      maxReplicas: 3\n      targetBacklogPerInstance: 100\n      latencyObjective: 60s\n";
    assert_one_warning(
        source,
        "s.yaml:12:33: warning: `targetBacklogPerInstance` 100 is not what `latencyObjective` 60s \
         asks for at `serviceRatePerInstance` 5 msg/s (300); in `mode: backlog` the target decides",
        "omit `targetBacklogPerInstance` to scale for 60s, or omit `latencyObjective` (a target \
         of 100 holds about 20s of work per instance)",
    );
    // The two agree (20s or 300 at 5 msg/s, 120 at 2 msg/s), or `mode: queueing` scales to the
    // objective and keeps the target for the dead-man's switch: no warning.
    for quiet in [
        source.replace("latencyObjective: 60s", "latencyObjective: 20s"),
        source.replace(
            "targetBacklogPerInstance: 100",
            "targetBacklogPerInstance: 300",
        ),
        source
            .replace(
                "latencyObjective: 60s\n",
                "latencyObjective: 60s\n      serviceRatePerInstance: 2\n",
            )
            .replace(
                "targetBacklogPerInstance: 100",
                "targetBacklogPerInstance: 120",
            ),
        source.replace(
            "latencyObjective: 60s\n",
            "latencyObjective: 120s\n      mode: queueing\n",
        ),
    ] {
        assert!(rendered_warnings(&quiet).is_empty(), "{quiet}");
    }
}

/// AWS's guidance: the target backlog per instance is the acceptable latency ÷ the time one
/// message takes, so `latencyObjective: 20s` at 5 msg/s per instance is the seed's 100.
#[test]
fn the_target_backlog_follows_from_the_latency_objective_when_omitted() {
    let source = "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: s, region: us-east-1}\nspec:\n  queues: [{name: q}]\n  scalingPolicies:\n    - name: p\n      queue: q\n      deployment: {namespace: ns, name: workers}\n      minReplicas: 1\n      maxReplicas: 3\n      latencyObjective: 20s\n";
    let target = |source: &str| {
        let loaded = ballast_blueprint::parse("s.yaml", source).unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let policy = &loaded.blueprint.spec.scaling_policies[0];
        assert_eq!(policy.target_backlog_per_instance, None);
        policy.target_backlog_in_force()
    };
    assert_eq!(target(source), 100);
    let slower = source.replace(
        "latencyObjective: 20s\n",
        "latencyObjective: 20s\n      serviceRatePerInstance: 3\n",
    );
    assert_eq!(target(&slower), 60);
    assert_eq!(target(&source.replace("20s", "2m")), 600);
    // `mode: queueing` needs neither: its objective defaults to `bootTime` (90s here).
    let queueing = source.replace("latencyObjective: 20s\n", "mode: queueing\n");
    assert_eq!(target(&queueing), 450);
}

/// A blueprint queue a blueprint topic delivers to, by name or by ARN: its policy lets the
/// topic send (the controller writes the statement), so there is nothing to warn about.
#[test]
fn an_sqs_subscription_to_a_blueprint_queue_makes_the_topic_deliver_to_it() {
    let source = "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: s, region: us-east-1}\nspec:\n  queues: [{name: alerts}, {name: quiet}]\n  topics:\n    - name: oncall\n      subscriptions:\n        - {protocol: sqs, endpoint: alerts}\n    - name: audit\n      subscriptions:\n        - {protocol: sqs, endpoint: 'arn:aws:sqs:us-east-1:123456789012:s-alerts'}\n        - {protocol: sqs, endpoint: 'arn:aws:sqs:us-east-1:123456789012:elsewhere'}\n";
    let loaded = ballast_blueprint::parse("s.yaml", source).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let bp = loaded.blueprint;
    let delivering = |queue: usize| -> Vec<&str> {
        bp.topics_delivering_to(&bp.spec.queues[queue])
            .map(|t| t.name.as_str())
            .collect()
    };
    assert_eq!(delivering(0), ["oncall", "audit"]);
    assert!(delivering(1).is_empty());
}

#[test]
fn defaults_are_secure() {
    let source = "apiVersion: ballast.dev/v1\nkind: Blueprint\nmetadata: {name: s, region: us-east-1}\nspec:\n  queues: [{name: q}]\n  tables: [{name: t, hashKey: {name: id, type: S}}]\n  kmsKeys: [{name: k}]\n  launchTemplates: [{name: lt, imageId: ami-1, instanceTypes: [t3.micro]}]\n";
    let bp = ballast_blueprint::parse("s.yaml", source)
        .unwrap()
        .blueprint;
    assert_eq!(
        bp.spec.queues[0].encryption.kind,
        ballast_blueprint::QueueEncryptionKind::SqsManaged
    );
    assert!(bp.spec.queues[0].tls_only);
    assert!(bp.spec.tables[0].point_in_time_recovery);
    assert!(bp.spec.kms_keys[0].rotation);
    let lt = &bp.spec.launch_templates[0];
    assert_eq!(
        lt.metadata_http_tokens,
        ballast_blueprint::HttpTokens::Required
    );
    assert!(!lt.associate_public_ip_address && lt.encrypted_volumes);
    assert!(ballast_blueprint::safety_overrides(&bp).is_empty());
    assert_eq!(bp.queue_name(&bp.spec.queues[0]), "s-q");
    assert_eq!(bp.key_alias(&bp.spec.kms_keys[0]), "alias/s-k");
}

/// `banking.yaml` for another environment: a values file renames the stack, resizes the fleet
/// and adds a queue; a value it gets wrong is reported in the values file, at that value, and
/// the blueprint's own problems stay in the blueprint.
#[test]
fn values_files_make_an_environment_and_their_problems_point_into_them() {
    let root = workspace_root();
    let base = std::fs::read_to_string(root.join("blueprints/banking.yaml")).unwrap();
    let prod = "metadata:\n  name: banking-prod\nspec:\n  autoScalingGroups:\n    - name: workers\n      maxSize: 20\n  queues:\n    - name: audit\n";
    let loaded = ballast_blueprint::parse_with_values(
        "banking.yaml",
        &base,
        &[("prod.yaml".to_string(), prod.to_string())],
    )
    .unwrap_or_else(|d| panic!("{d}"));
    let bp = &loaded.blueprint;
    assert_eq!(bp.metadata.name, "banking-prod");
    assert_eq!(bp.metadata.region, "us-east-1", "kept from the blueprint");
    let workers = bp.auto_scaling_group("workers").unwrap();
    assert_eq!((workers.min_size, workers.max_size), (2, 20));
    assert!(bp.queue("audit").is_some());
    assert!(bp.queue("transactions").is_some());
    let id = ballast_blueprint::ResourceId::new(
        ballast_blueprint::ResourceKind::AutoScalingGroup,
        "workers",
    );
    let max = loaded.declared_at(&id, Some("maxSize")).unwrap();
    assert_eq!(loaded.file_of(max), "prod.yaml");
    assert_eq!((max.line, max.column), (6, 16));
    let min = loaded.declared_at(&id, Some("minSize")).unwrap();
    assert_eq!(loaded.file_of(min), "banking.yaml");

    // Wrong values: each reported where it is written.
    let wrong = "spec:\n  autoScalingGroups:\n    - name: workers\n      maxSize: 1\n  queues:\n    - name: transactions\n      visibiltyTimeout: 90s\n";
    let diagnostics = ballast_blueprint::parse_with_values(
        "banking.yaml",
        &base,
        &[
            ("prod.yaml".to_string(), prod.to_string()),
            ("wrong.yaml".to_string(), wrong.to_string()),
        ],
    )
    .unwrap_err();
    let rendered = diagnostics.to_string();
    assert!(
        rendered.contains("wrong.yaml:7:7: error: unknown field `visibiltyTimeout`"),
        "{rendered}"
    );
    // A rule across two fields is reported at the field it names, here in the blueprint.
    let min_line = 1 + base.lines().position(|l| l.trim() == "minSize: 2").unwrap();
    assert!(
        rendered.contains(&format!(
            "banking.yaml:{min_line}:16: error: `minSize` 2 is greater than `maxSize` 1"
        )),
        "{rendered}"
    );

    // A values file that is not a mapping, or is not YAML, is refused in its own name.
    for (text, message) in [
        (
            "- just a list\n",
            "wrong.yaml:1:1: error: a values file is a mapping",
        ),
        ("spec: [\n", "wrong.yaml:"),
    ] {
        let diagnostics = ballast_blueprint::parse_with_values(
            "banking.yaml",
            &base,
            &[("wrong.yaml".to_string(), text.to_string())],
        )
        .unwrap_err();
        assert!(diagnostics.to_string().contains(message), "{diagnostics}");
    }

    // At most MAX_VALUES_FILES are laid over one blueprint: one more is refused before any is
    // parsed, and the message says how many.
    let many = |n: usize| -> Vec<(String, String)> {
        (1..=n)
            .map(|i| (format!("v{i}.yaml"), "metadata: {}\n".to_string()))
            .collect()
    };
    let limit = ballast_blueprint::MAX_VALUES_FILES;
    ballast_blueprint::parse_with_values("banking.yaml", &base, &many(limit))
        .unwrap_or_else(|d| panic!("{d}"));
    let refused =
        ballast_blueprint::parse_with_values("banking.yaml", &base, &many(limit + 1)).unwrap_err();
    assert!(
        refused.to_string().contains(&format!(
            "{} values files; at most {limit} are laid over one blueprint",
            limit + 1
        )),
        "{refused}"
    );
}
