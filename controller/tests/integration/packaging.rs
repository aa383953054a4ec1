//! The worker on EC2: the systemd unit (`packaging/ballast-worker.service`), its settings
//! (`packaging/ballast-worker.env`), the Debian package `scripts/package-deb.sh` builds from
//! them and the debug binaries of this build, and banking.yaml's user data that installs it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a panic is a failed test (clippy.toml covers only #[test] fns, not helpers)"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use clap::{CommandFactory, Parser};

const UNIT: &str = "ballast-worker.service";
const UNIT_PATH: &str = "lib/systemd/system/ballast-worker.service";
const SETTINGS_PATH: &str = "etc/default/ballast-worker";
const WORKER_PATH: &str = "usr/bin/ballast-worker";
const CONTROLLER_PATH: &str = "usr/bin/ballast";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A unit file: section → key → every value assigned (in order; an empty assignment resets).
type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn parse_unit(text: &str) -> Unit {
    let mut unit = Unit::new();
    let mut section: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(
            !line.ends_with('\\'),
            "{UNIT}:{}: no continued lines",
            i + 1
        );
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.to_owned());
            unit.entry(name.to_owned()).or_default();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{UNIT}:{}: `{line}` is not KEY=VALUE", i + 1));
        let section = section
            .as_ref()
            .unwrap_or_else(|| panic!("{UNIT}:{}: `{line}` outside a section", i + 1));
        unit.get_mut(section)
            .unwrap()
            .entry(key.trim().to_owned())
            .or_default()
            .push(value.trim().to_owned());
    }
    unit
}

/// The one value of `section`.`key`.
fn value<'a>(unit: &'a Unit, section: &str, key: &str) -> &'a str {
    match unit
        .get(section)
        .and_then(|s| s.get(key))
        .map(Vec::as_slice)
    {
        Some([only]) => only,
        other => panic!("{UNIT}: [{section}] {key}= must be set once, is {other:?}"),
    }
}

fn the_unit() -> Unit {
    parse_unit(&std::fs::read_to_string(repo().join("packaging").join(UNIT)).unwrap())
}

/// `180s`, `3min`, `2m`, or bare seconds: the time spans this unit uses.
fn timespan(text: &str) -> Duration {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .unwrap_or_else(|e| panic!("time span `{text}`: {e}"));
    match unit {
        "" | "s" | "sec" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n * 60),
        other => panic!("time span `{text}`: unit `{other}` not modelled"),
    }
}

/// The worker's queue in banking.yaml, as the package's settings point the worker at it.
fn banking() -> ballast_blueprint::Blueprint {
    ballast_blueprint::load(&repo().join("blueprints/banking.yaml"))
        .unwrap()
        .blueprint
}

/// The settings file: variable → value.
fn settings() -> BTreeMap<String, String> {
    let path = repo().join("packaging/ballast-worker.env");
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            let (key, value) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{}:{}: not VARIABLE=value", path.display(), i + 1));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

#[test]
fn the_worker_unit_restarts_drains_and_is_sandboxed() {
    let unit = the_unit();

    // It runs `ballast-worker consume`, a command line the worker accepts, with its settings.
    let exec = value(&unit, "Service", "ExecStart");
    let argv: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(argv[0], format!("/{WORKER_PATH}"), "the packaged binary");
    let cli = ballast_worker::cli::Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("`ballast-worker` rejects ExecStart {argv:?}:\n{e}"));
    assert!(
        matches!(cli.command, ballast_worker::cli::Command::Consume(_)),
        "{argv:?}"
    );
    assert_eq!(
        value(&unit, "Service", "EnvironmentFile"),
        format!("/{SETTINGS_PATH}"),
        "required settings file (no `-`)"
    );

    for (key, expected) in [
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("RestrictSUIDSGID", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
    ] {
        assert_eq!(value(&unit, "Service", key), expected, "[Service] {key}=");
    }
    assert_eq!(value(&unit, "Install", "WantedBy"), "multi-user.target");
    assert!(
        !unit["Service"].contains_key("User"),
        "DynamicUser allocates the user"
    );

    // SIGKILL comes only after the worker has drained: the queue's visibility timeout bounds
    // the drain (worker/src/consumer/mod.rs), then one AWS call (the lifecycle action) bounded by
    // the default operation timeout.
    let stop = timespan(value(&unit, "Service", "TimeoutStopSec"));
    let consume = match cli.command {
        ballast_worker::cli::Command::Consume(args) => args,
        _ => unreachable!(),
    };
    let bp = banking();
    let queue = bp.queue(&consume.target.queue).expect("the worker's queue");
    let drain = queue.visibility_timeout.std() + ballast_aws::AwsTimeouts::default().operation;
    assert!(
        stop > drain,
        "TimeoutStopSec {stop:?} must exceed the drain {drain:?} (visibility timeout + one AWS call)"
    );
}

#[test]
fn the_settings_file_sets_only_variables_the_worker_reads() {
    let command = ballast_worker::cli::Cli::command();
    let consume = command.find_subcommand("consume").unwrap();
    let known: BTreeSet<String> = command
        .get_arguments()
        .chain(consume.get_arguments())
        .filter_map(|arg| arg.get_env())
        .map(|env| env.to_string_lossy().into_owned())
        .chain([ballast_runtime::logging::LOG_ENV.to_owned()])
        .collect();
    let settings = settings();
    for key in settings.keys() {
        assert!(
            known.contains(key) || key.starts_with("AWS_"),
            "packaging/ballast-worker.env sets `{key}`, which `ballast-worker consume` does not read"
        );
    }
    assert_eq!(
        settings.get("BALLAST_BLUEPRINT").map(String::as_str),
        Some("/etc/ballast/banking.yaml"),
        "where banking.yaml's user data installs the blueprint"
    );
    let metrics: std::net::SocketAddr = settings["BALLAST_METRICS_ADDR"].parse().unwrap();
    assert_eq!(metrics.port(), 9464);

    // The worker as systemd starts it: ExecStart's arguments and only these variables. Every
    // value parses (a bad one exits 2 with the flag's name) and the worker reaches the blueprint,
    // here pointed at a missing file so that it stops before any AWS call.
    let missing = "/nonexistent/ballast/banking.yaml";
    let output = Command::new(binaries().join("ballast-worker"))
        .arg("consume")
        .env_clear()
        .envs(&settings)
        .env("BALLAST_BLUEPRINT", missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot read {missing}")),
        "{stderr}"
    );
}

/// The directory of this build's binaries (`target/debug`), where `cargo test --workspace`
/// has built both.
fn binaries() -> PathBuf {
    let controller = PathBuf::from(env!("CARGO_BIN_EXE_ballast"));
    let dir = controller.parent().unwrap().to_path_buf();
    assert!(
        dir.join("ballast-worker").is_file(),
        "{}/ballast-worker is not built: run `cargo build --workspace --bins` (or the whole \
         `cargo test --workspace`)",
        dir.display()
    );
    dir
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn scratch(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ballast-{what}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `systemd-analyze verify` on a copy of `unit` whose ExecStart runs `binary` (verify insists
/// that the binary exists on this machine), every other line as written.
fn systemd_verify(unit: &str, binary: &Path) -> Option<(Output, Output)> {
    let Ok(which) = Command::new("systemd-analyze").arg("--version").output() else {
        return None;
    };
    assert!(which.status.success());
    let dir = scratch("verify");
    let original = format!("ExecStart=/{WORKER_PATH} ");
    assert_eq!(unit.matches(&original).count(), 1, "one ExecStart");
    let copy = unit.replace(&original, &format!("ExecStart={} ", binary.display()));
    let path = dir.join(UNIT);
    std::fs::write(&path, copy).unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    // The sandbox as systemd rates it: exposure 0.0 (locked down) to 10.0; fails above 1.5.
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=15"])
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    Some((output, security))
}

#[test]
fn systemd_analyze_verifies_the_unit_and_refuses_a_broken_one() {
    let unit = std::fs::read_to_string(repo().join("packaging").join(UNIT)).unwrap();
    let worker = binaries().join("ballast-worker");
    let Some((output, security)) = systemd_verify(&unit, &worker) else {
        eprintln!(
            "systemd-analyze is not installed: the unit was checked by \
             the_worker_unit_restarts_drains_and_is_sandboxed only"
        );
        return;
    };
    // verify exits 0 on some parse errors (it ignores the bad line), so any output is a failure.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.trim().is_empty(),
        "{stderr}"
    );
    assert!(
        security.status.success(),
        "systemd-analyze security rates the sandbox above 1.5:\n{}",
        String::from_utf8_lossy(&security.stdout)
    );

    let broken = unit.replace("KillMode=mixed", "KillMode=gently");
    let (output, _) = systemd_verify(&broken, &worker).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Failed to parse kill mode"),
        "a bad value must be reported: {stderr}"
    );
}

/// `dpkg-deb --contents` lines: path (without `./`) → (mode string, owner/group).
fn contents(deb: &Path) -> BTreeMap<String, (String, String)> {
    let output = run(Command::new("dpkg-deb").arg("--contents").arg(deb));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let path = fields.last().unwrap().trim_start_matches("./").to_owned();
            (path, (fields[0].to_owned(), fields[1].to_owned()))
        })
        .collect()
}

/// Runs scripts/package-deb.sh on this build's binaries into `out`; the package's path.
fn package_into(out: &Path) -> PathBuf {
    let bin = binaries();
    let output = run(Command::new("bash")
        .arg(repo().join("scripts/package-deb.sh"))
        .env("PROFILE", bin.file_name().unwrap())
        .env("CARGO_TARGET_DIR", bin.parent().unwrap())
        .env("DEB_OUT_DIR", out)
        // The debug binaries are large; the release package uses xz.
        .env("DEB_COMPRESSION", "none"));
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

#[test]
fn the_debian_package_holds_both_binaries_the_unit_and_its_settings() {
    let out = scratch("deb");
    let deb = package_into(&out);
    // Reproducible: the same inputs give the same bytes (owners, dates and order are fixed).
    let again = scratch("deb-again");
    run(Command::new("cmp").arg(&deb).arg(package_into(&again)));
    std::fs::remove_dir_all(&again).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        deb.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("ballast_{version}_")),
        "{}",
        deb.display()
    );

    // The control file: dpkg-deb parses it (a malformed one fails here) and each field holds.
    let field = |name: &str| {
        let output = run(Command::new("dpkg-deb").arg("--field").arg(&deb).arg(name));
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    assert_eq!(field("Package"), "ballast");
    assert_eq!(field("Version"), version);
    let arch = run(Command::new("dpkg").arg("--print-architecture"));
    assert_eq!(
        field("Architecture"),
        String::from_utf8_lossy(&arch.stdout).trim()
    );
    assert!(field("Maintainer").contains('@'));
    assert!(
        field("Depends").starts_with("libc6 (>= 2."),
        "{}",
        field("Depends")
    );
    assert!(!field("Description").is_empty());
    let info = run(Command::new("dpkg-deb").arg("--info").arg(&deb));
    let info = String::from_utf8(info.stdout).unwrap();
    for script in ["postinst", "prerm", "postrm", "conffiles"] {
        assert!(
            info.contains(script),
            "control archive lacks {script}:\n{info}"
        );
    }

    let files = contents(&deb);
    for (path, mode) in [
        (CONTROLLER_PATH, "-rwxr-xr-x"),
        (WORKER_PATH, "-rwxr-xr-x"),
        (UNIT_PATH, "-rw-r--r--"),
        (SETTINGS_PATH, "-rw-r--r--"),
        ("usr/share/doc/ballast/copyright", "-rw-r--r--"),
        // Completions and manual pages, generated by the packaged binaries.
        (
            "usr/share/bash-completion/completions/ballast",
            "-rw-r--r--",
        ),
        (
            "usr/share/bash-completion/completions/ballast-worker",
            "-rw-r--r--",
        ),
        ("usr/share/zsh/vendor-completions/_ballast", "-rw-r--r--"),
        (
            "usr/share/fish/vendor_completions.d/ballast-worker.fish",
            "-rw-r--r--",
        ),
        ("usr/share/man/man1/ballast.1.gz", "-rw-r--r--"),
        ("usr/share/man/man1/ballast-plan.1.gz", "-rw-r--r--"),
        ("usr/share/man/man1/ballast-worker.1.gz", "-rw-r--r--"),
    ] {
        let (found, owner) = files
            .get(path)
            .unwrap_or_else(|| panic!("the package lacks /{path}: {files:?}"));
        assert_eq!(found, mode, "/{path}");
        assert_eq!(owner, "root/root", "/{path}");
    }

    // Unpacked: the files are the ones in the tree, the binaries run, the unit verifies.
    let root = scratch("deb-root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    assert_eq!(
        std::fs::read(root.join(UNIT_PATH)).unwrap(),
        std::fs::read(repo().join("packaging").join(UNIT)).unwrap()
    );
    assert_eq!(
        std::fs::read(root.join(SETTINGS_PATH)).unwrap(),
        std::fs::read(repo().join("packaging/ballast-worker.env")).unwrap()
    );
    for (path, name) in [
        (WORKER_PATH, "ballast-worker"),
        (CONTROLLER_PATH, "ballast"),
    ] {
        let help = run(Command::new(root.join(path)).arg("--help"));
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(help.contains("Usage:"), "{name} --help: {help}");
    }
    let unit = std::fs::read_to_string(root.join(UNIT_PATH)).unwrap();
    if let Some((output, _)) = systemd_verify(&unit, &root.join(WORKER_PATH)) {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stderr.trim().is_empty(),
            "{stderr}"
        );
    }
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn the_package_script_refuses_missing_binaries_and_unknown_settings() {
    let empty = scratch("no-binaries");
    for (env, expected) in [
        (("PROFILE", "fast"), "PROFILE=fast: use release or debug"),
        (("DEB_COMPRESSION", "lzma"), "DEB_COMPRESSION=lzma"),
        (("PROFILE", "debug"), "ballast not found; build it first"),
    ] {
        let output = Command::new("bash")
            .arg(repo().join("scripts/package-deb.sh"))
            .env("CARGO_TARGET_DIR", &empty)
            .env(env.0, env.1)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{env:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
    }
    std::fs::remove_dir_all(&empty).unwrap();
}

#[test]
fn banking_user_data_installs_the_package_and_starts_the_worker_unit() {
    let bp = banking();
    let template = bp
        .spec
        .launch_templates
        .iter()
        .find(|t| t.name == "worker")
        .expect("banking.yaml's worker launch template");
    let script = template.user_data.as_deref().expect("user data");

    // bash parses it.
    let dir = scratch("user-data");
    let path = dir.join("user-data.sh");
    std::fs::write(&path, script).unwrap();
    run(Command::new("bash").arg("-n").arg(&path));
    std::fs::remove_dir_all(&dir).unwrap();

    assert!(
        script.starts_with("#!/bin/bash\nset -euo pipefail\n"),
        "fails fast"
    );
    let variable = |name: &str| {
        script
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("user data declares no {name}="))
    };
    let version = env!("CARGO_PKG_VERSION");
    let arch = run(Command::new("dpkg").arg("--print-architecture"));
    assert_eq!(
        variable("PACKAGE"),
        format!(
            "ballast_{version}_{}.deb",
            String::from_utf8_lossy(&arch.stdout).trim()
        ),
        "the file scripts/package-deb.sh builds"
    );
    let artifacts = variable("ARTIFACTS");
    assert!(artifacts.starts_with("https://"), "{artifacts}");
    assert!(
        artifacts.contains(&format!(".s3.{}.amazonaws.com/", bp.metadata.region)),
        "{artifacts}: the bucket in the blueprint's region"
    );
    // S3 is reachable from the private subnets through a gateway endpoint.
    let network = bp.spec.network.as_ref().expect("network");
    assert!(
        network.endpoints.iter().any(|e| e.service == "s3"),
        "an s3 endpoint for the download"
    );
    for step in [
        "dpkg -i \"$work/$PACKAGE\"",
        "install -D -m 0644 \"$work/$BLUEPRINT\" /etc/ballast/banking.yaml",
        "systemctl enable --now ballast-worker.service",
    ] {
        assert!(script.contains(step), "user data lacks `{step}`");
    }
    // IMDSv2 only (the launch template requires tokens) and no secret on a command line.
    assert_eq!(
        template.metadata_http_tokens,
        ballast_blueprint::model::HttpTokens::Required
    );
    assert!(script.contains("-K -"), "credentials reach curl on stdin");
}
