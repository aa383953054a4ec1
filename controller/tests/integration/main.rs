//! The controller's integration tests, one module per former test file, linked into one binary
//! (one link of the AWS SDK, one moto server for all of them): `cargo test -p ballast-controller
//! --test integration <module>::` runs one module.
mod cli_terminal;
mod cli_validate;
mod deployment_scale;
mod lease_dynamo;
mod lease_kube;
mod manifests;
mod packaging;
mod pause;
mod provision_banking;
mod provision_compute;
mod provision_core;
mod provision_dead_mans_switch;
mod provision_iam;
mod provision_interrupted;
mod provision_key_policy;
mod provision_monitoring;
mod provision_queue_policy;
mod provision_security_groups;
mod provision_targeting;
mod provision_topics;
mod running;
mod scale_scenarios;
mod service_run;
