//! The blueprint crate's integration tests in one binary: `cargo test -p ballast-blueprint
//! --test integration <module>::` runs one module.
mod fixtures;
mod proptest_load;
