//! Resolving the queue, tables, fleet and AWS settings from the blueprint and the flags.

use std::path::PathBuf;
use std::sync::Arc;

use ballast_aws::{AwsError, AwsOptions, SdkResultExt};
use ballast_blueprint::{Blueprint, LifecycleTransition};

/// Why the worker's targets cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The blueprint cannot be loaded.
    #[error(transparent)]
    Blueprint(#[from] ballast_blueprint::LoadError),
    /// The blueprint has no such queue.
    #[error("the blueprint has no queue named `{name}`; it has: {available}")]
    UnknownQueue {
        /// The requested name.
        name: String,
        /// The queues it has.
        available: String,
    },
    /// The blueprint has no such table.
    #[error("the blueprint has no table named `{name}`; it has: {available}")]
    UnknownTable {
        /// The requested name.
        name: String,
        /// The tables it has.
        available: String,
    },
    /// `--values` without `--blueprint`.
    #[error("--values needs --blueprint; hint: values files are laid over a blueprint")]
    ValuesWithoutBlueprint,
    /// Neither a blueprint nor an explicit value.
    #[error("no {what} configured; hint: pass --blueprint FILE or {flag}")]
    Missing {
        /// What is missing.
        what: &'static str,
        /// The flag that sets it.
        flag: &'static str,
    },
    /// A target that the command needs could not be resolved (the error found when the
    /// targets were resolved, kept until a command asks for that target).
    #[error(transparent)]
    Unresolved(Arc<ConfigError>),
    /// An AWS lookup failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// Where the queue and tables are: blueprint names, or explicit physical names (built by the
/// commands from their flags; this module knows nothing of the command line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetConfig {
    /// Blueprint file naming the queue and tables.
    pub blueprint: Option<PathBuf>,
    /// Values files laid over the blueprint, in order.
    pub values: Vec<PathBuf>,
    /// Blueprint name of the transactions queue.
    pub queue: String,
    /// Blueprint name of the accounts table.
    pub accounts_table: String,
    /// Blueprint name of the transactions (results) table.
    pub transactions_table: String,
    /// Queue URL; overrides the blueprint.
    pub queue_url: Option<String>,
    /// Dead-letter queue URL; overrides the queue's RedrivePolicy.
    pub dlq_url: Option<String>,
    /// Physical accounts table name; overrides the blueprint.
    pub accounts_table_name: Option<String>,
    /// Physical transactions table name; overrides the blueprint.
    pub transactions_table_name: Option<String>,
    /// AWS client options.
    pub aws: AwsOptions,
}

/// A queue, known by URL or by physical name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueRef {
    /// The queue URL.
    Url(String),
    /// The physical queue name (resolved with GetQueueUrl).
    Name(String),
}

impl QueueRef {
    /// The queue URL, looking it up by name if needed.
    pub async fn url(&self, sqs: &aws_sdk_sqs::Client) -> Result<String, AwsError> {
        match self {
            QueueRef::Url(url) => Ok(url.clone()),
            QueueRef::Name(name) => Ok(sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .classify("sqs:GetQueueUrl")?
                .queue_url
                .unwrap_or_default()),
        }
    }
}

/// Physical targets of the worker.
#[derive(Debug, Clone)]
pub struct Targets {
    /// AWS client options.
    pub aws: AwsOptions,
    /// Region to fall back on (the blueprint's).
    pub default_region: Option<String>,
    /// The transactions queue (an error if it cannot be resolved).
    pub queue: Result<QueueRef, Arc<ConfigError>>,
    /// The dead-letter queue, when known without asking SQS.
    pub dlq: Option<QueueRef>,
    /// Physical accounts table (an error if it cannot be resolved).
    pub accounts_table: Result<String, Arc<ConfigError>>,
    /// Physical transactions table (an error if it cannot be resolved).
    pub transactions_table: Result<String, Arc<ConfigError>>,
    /// The blueprint's Auto Scaling group, when it has exactly one.
    pub fleet_name: Option<String>,
    /// That group's terminating lifecycle hook.
    pub lifecycle_hook: Option<String>,
}

fn names<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let list: Vec<&str> = items.collect();
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.join(", ")
    }
}

impl Targets {
    /// The queue, or why it is unknown.
    pub fn queue(&self) -> Result<&QueueRef, ConfigError> {
        self.queue
            .as_ref()
            .map_err(|e| ConfigError::Unresolved(Arc::clone(e)))
    }

    /// The physical (accounts, transactions) table names, or why they are unknown.
    pub fn tables(&self) -> Result<(&str, &str), ConfigError> {
        let unresolved = |e: &Arc<ConfigError>| ConfigError::Unresolved(Arc::clone(e));
        Ok((
            self.accounts_table.as_deref().map_err(unresolved)?,
            self.transactions_table.as_deref().map_err(unresolved)?,
        ))
    }
}

/// Resolves targets: explicit flags win, then blueprint names.
pub fn resolve(args: &TargetConfig, blueprint: Option<&Blueprint>) -> Result<Targets, ConfigError> {
    let bp_queue = |name: &str| -> Result<String, ConfigError> {
        let bp = blueprint.ok_or(ConfigError::Missing {
            what: "queue",
            flag: "--queue-url",
        })?;
        let queue = bp.queue(name).ok_or_else(|| ConfigError::UnknownQueue {
            name: name.to_owned(),
            available: names(bp.spec.queues.iter().map(|q| q.name.as_str())),
        })?;
        Ok(bp.queue_name(queue))
    };
    let bp_table = |name: &str, flag: &'static str| -> Result<String, ConfigError> {
        let bp = blueprint.ok_or(ConfigError::Missing {
            what: "table",
            flag,
        })?;
        let table = bp.table(name).ok_or_else(|| ConfigError::UnknownTable {
            name: name.to_owned(),
            available: names(bp.spec.tables.iter().map(|t| t.name.as_str())),
        })?;
        Ok(bp.table_name(table))
    };

    let queue = match &args.queue_url {
        Some(url) => Ok(QueueRef::Url(url.clone())),
        None => bp_queue(&args.queue).map(QueueRef::Name),
    };
    let dlq = match (&args.dlq_url, blueprint) {
        (Some(url), _) => Some(QueueRef::Url(url.clone())),
        (None, Some(bp)) if args.queue_url.is_none() => bp
            .queue(&args.queue)
            .and_then(|q| q.dead_letter.as_ref())
            .and_then(|dl| bp.queue(&dl.queue))
            .map(|q| QueueRef::Name(bp.queue_name(q))),
        _ => None,
    };
    let accounts_table = match &args.accounts_table_name {
        Some(name) => Ok(name.clone()),
        None => bp_table(&args.accounts_table, "--accounts-table-name"),
    };
    let transactions_table = match &args.transactions_table_name {
        Some(name) => Ok(name.clone()),
        None => bp_table(&args.transactions_table, "--transactions-table-name"),
    };
    let group = blueprint.and_then(|bp| match bp.spec.auto_scaling_groups.as_slice() {
        [only] => Some((bp, only)),
        _ => None,
    });
    Ok(Targets {
        aws: args.aws.clone(),
        default_region: blueprint.map(|bp| bp.metadata.region.clone()),
        queue: queue.map_err(Arc::new),
        dlq,
        accounts_table: accounts_table.map_err(Arc::new),
        transactions_table: transactions_table.map_err(Arc::new),
        fleet_name: group.map(|(bp, g)| bp.group_name(g)),
        lifecycle_hook: group.and_then(|(_, g)| {
            g.lifecycle_hooks
                .iter()
                .find(|h| h.transition == LifecycleTransition::Terminating)
                .map(|h| h.name.clone())
        }),
    })
}

/// Loads the blueprint if one was given.
pub fn load_blueprint(args: &TargetConfig) -> Result<Option<Blueprint>, ConfigError> {
    match &args.blueprint {
        Some(path) => Ok(Some(
            ballast_blueprint::load_with_values(path, &args.values)?.blueprint,
        )),
        None if args.values.is_empty() => Ok(None),
        None => Err(ConfigError::ValuesWithoutBlueprint),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn banking() -> Blueprint {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../blueprints/banking.yaml");
        ballast_blueprint::load(std::path::Path::new(path))
            .unwrap()
            .blueprint
    }

    #[test]
    fn blueprint_names_resolve_to_physical_names() {
        let bp = banking();
        let args = TargetConfig {
            queue: "transactions".into(),
            accounts_table: "accounts".into(),
            transactions_table: "transactions".into(),
            ..TargetConfig::default()
        };
        let t = resolve(&args, Some(&bp)).unwrap();
        assert_eq!(
            t.queue.as_ref().ok(),
            Some(&QueueRef::Name("banking-transactions".into()))
        );
        assert_eq!(
            t.dlq,
            Some(QueueRef::Name("banking-transactions-dlq".into()))
        );
        assert_eq!(
            t.tables().unwrap(),
            ("banking-accounts", "banking-transactions")
        );
        assert_eq!(t.fleet_name.as_deref(), Some("banking-workers"));
        assert_eq!(t.lifecycle_hook.as_deref(), Some("drain"));
        assert_eq!(t.default_region.as_deref(), Some("us-east-1"));
    }

    /// A values file renames the stack: every physical name the worker uses follows; values
    /// without a blueprint are refused.
    #[test]
    fn values_files_are_laid_over_the_blueprint() {
        let dir = std::env::temp_dir().join(format!("ballast-values-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let prod = dir.join("prod.yaml");
        std::fs::write(&prod, "metadata:\n  name: banking-prod\n").unwrap();
        let args = TargetConfig {
            blueprint: Some(
                concat!(env!("CARGO_MANIFEST_DIR"), "/../blueprints/banking.yaml").into(),
            ),
            values: vec![prod],
            queue: "transactions".into(),
            accounts_table: "accounts".into(),
            transactions_table: "transactions".into(),
            ..TargetConfig::default()
        };
        let bp = load_blueprint(&args).unwrap();
        let t = resolve(&args, bp.as_ref()).unwrap();
        assert_eq!(
            t.queue.as_ref().ok(),
            Some(&QueueRef::Name("banking-prod-transactions".into()))
        );
        std::fs::remove_dir_all(&dir).unwrap();

        let without = TargetConfig {
            blueprint: None,
            ..args
        };
        assert!(matches!(
            load_blueprint(&without),
            Err(ConfigError::ValuesWithoutBlueprint)
        ));
    }

    #[test]
    fn explicit_flags_override_the_blueprint() {
        let bp = banking();
        let args = TargetConfig {
            queue: "transactions".into(),
            accounts_table: "accounts".into(),
            transactions_table: "transactions".into(),
            queue_url: Some("http://q".into()),
            dlq_url: Some("http://dlq".into()),
            accounts_table_name: Some("a".into()),
            transactions_table_name: Some("t".into()),
            ..TargetConfig::default()
        };
        let t = resolve(&args, Some(&bp)).unwrap();
        assert_eq!(
            t.queue.as_ref().ok(),
            Some(&QueueRef::Url("http://q".into()))
        );
        assert_eq!(t.dlq, Some(QueueRef::Url("http://dlq".into())));
        assert_eq!(t.tables().unwrap(), ("a", "t"));
    }

    #[test]
    fn unknown_names_and_missing_blueprint_are_errors() {
        let bp = banking();
        let args = TargetConfig {
            queue: "nope".into(),
            accounts_table: "accounts".into(),
            transactions_table: "transactions".into(),
            ..TargetConfig::default()
        };
        let err = resolve(&args, Some(&bp)).unwrap().queue().unwrap_err();
        assert!(err.to_string().contains("transactions-dlq"), "{err}");
        let err = resolve(&args, None).unwrap().tables().unwrap_err();
        assert!(err.to_string().contains("--blueprint"), "{err}");
    }
}
