//! The end-to-end tests, one module per scenario, linked into one binary (one link, one moto
//! server): `cargo test -p ballast-e2e --test e2e <module>::` runs one, e.g. `chaos::`.
mod api_worker_e2e;
mod chaos;
mod fleet_e2e;
mod iam_enforcement;
mod interrupted_apply;
mod smoke;
