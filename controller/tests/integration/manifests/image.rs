//! The Dockerfile agrees with the manifests: each Deployment's image is built by the Dockerfile
//! target of the same name, which puts the binary at the path the container's command runs, as
//! the user the pod runs as, exposing the ports the container declares, with a default command
//! line the binary accepts. `make image` (scripts/build-image.sh) builds those targets; where no
//! build tool works it must say so and fail.

use std::collections::BTreeSet;
use std::process::Command;

use clap::{CommandFactory, Parser};

use super::{CONTROLLER, WORKER, deployment, load, only_container, pod_spec, repo};

/// One stage of a Dockerfile: what the image checks need of it.
#[derive(Debug, Default)]
struct Stage {
    /// The stage's name (`FROM … AS name`).
    name: String,
    base: String,
    /// `COPY` instructions, flags and arguments, as written.
    copies: Vec<Vec<String>>,
    runs: Vec<String>,
    user: Option<String>,
    exposed: Vec<u16>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
}

/// The Dockerfile's instructions, one per logical line: comments and blank lines dropped, `\`
/// continuations joined. Each is (line number, INSTRUCTION, arguments).
fn instructions(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if pending.is_none() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        // A comment inside a continued instruction is skipped by the Dockerfile parser too.
        if pending.is_some() && trimmed.starts_with('#') {
            continue;
        }
        let (start, mut text) = pending.take().unwrap_or((i + 1, String::new()));
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                text.push_str(part);
                text.push(' ');
                pending = Some((start, text));
            }
            None => {
                text.push_str(trimmed);
                let (instruction, arguments) =
                    text.split_once(char::is_whitespace).unwrap_or((&text, ""));
                out.push((
                    start,
                    instruction.to_ascii_uppercase(),
                    arguments.trim().to_owned(),
                ));
            }
        }
    }
    assert!(
        pending.is_none(),
        "the Dockerfile ends inside a continued line"
    );
    out
}

/// An exec-form (JSON array) ENTRYPOINT or CMD; the shell form needs a shell the image lacks.
fn exec_form(line: usize, instruction: &str, arguments: &str) -> Vec<String> {
    serde_json::from_str(arguments).unwrap_or_else(|e| {
        panic!(
            "Dockerfile:{line}: {instruction} must be a JSON array (exec form: the runtime image \
             has no shell): {e}"
        )
    })
}

fn stages(text: &str) -> Vec<Stage> {
    let mut stages: Vec<Stage> = Vec::new();
    for (line, instruction, arguments) in instructions(text) {
        if instruction == "FROM" {
            let words: Vec<&str> = arguments.split_whitespace().collect();
            let (base, name) = match words.as_slice() {
                [base, as_, name] if as_.eq_ignore_ascii_case("as") => (*base, *name),
                _ => panic!("Dockerfile:{line}: every stage is named: `FROM image AS name`"),
            };
            stages.push(Stage {
                name: name.to_owned(),
                base: base.to_owned(),
                ..Stage::default()
            });
            continue;
        }
        let stage = stages
            .last_mut()
            .unwrap_or_else(|| panic!("Dockerfile:{line}: {instruction} before FROM"));
        match instruction.as_str() {
            "COPY" => stage
                .copies
                .push(arguments.split_whitespace().map(str::to_owned).collect()),
            "RUN" => stage.runs.push(arguments),
            "USER" => stage.user = Some(arguments),
            "EXPOSE" => stage
                .exposed
                .extend(arguments.split_whitespace().map(|port| {
                    port.trim_end_matches("/tcp")
                        .parse::<u16>()
                        .unwrap_or_else(|e| panic!("Dockerfile:{line}: EXPOSE {port}: {e}"))
                })),
            "ENTRYPOINT" => stage.entrypoint = Some(exec_form(line, &instruction, &arguments)),
            "CMD" => stage.cmd = Some(exec_form(line, &instruction, &arguments)),
            "WORKDIR" | "ARG" | "ENV" | "LABEL" => {}
            other => panic!("Dockerfile:{line}: {other} is not modelled by this test"),
        }
    }
    stages
}

fn dockerfile() -> Vec<Stage> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    stages(&text)
}

fn stage<'a>(stages: &'a [Stage], name: &str) -> &'a Stage {
    stages
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("the Dockerfile has no target `{name}`"))
}

/// The value following `flag` in an argv (`--flag VALUE` or `--flag=VALUE`).
fn metrics_port(argv: &[String]) -> u16 {
    let addr: std::net::SocketAddr = super::flag_value(argv, "--metrics-addr")
        .unwrap_or_else(|| panic!("{argv:?} sets no --metrics-addr"))
        .parse()
        .unwrap();
    addr.port()
}

#[test]
fn the_build_stage_builds_both_binaries_in_release_from_the_lock_file() {
    let stages = dockerfile();
    let build = stage(&stages, "build");
    let cargo = build
        .runs
        .iter()
        .find(|r| r.contains("cargo build"))
        .expect("the build stage runs cargo build");
    for flag in [
        "--release",
        "--locked",
        "--bin ballast ",
        "--bin ballast-worker",
    ] {
        assert!(
            format!("{cargo} ").contains(flag),
            "`{cargo}` lacks `{flag}`"
        );
    }
    // The builder and the runtime are the same Debian release (glibc).
    assert!(build.base.ends_with("-bookworm"), "{}", build.base);
    for target in ["ballast", "ballast-worker"] {
        let runtime = stage(&stages, target);
        assert!(
            runtime.base.starts_with("gcr.io/distroless/cc-debian12"),
            "`{target}` runs on distroless cc (Debian 12): {}",
            runtime.base
        );
        assert!(
            runtime.runs.is_empty(),
            "`{target}`: no RUN in a runtime image without a shell"
        );
    }

    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    let ignored: BTreeSet<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for entry in ["target/", ".git/", ".venv/"] {
        assert!(
            ignored.contains(entry),
            ".dockerignore keeps `{entry}` out of the build context"
        );
    }
}

#[test]
fn each_image_runs_its_binary_as_the_deployment_expects() {
    let all = load();
    let stages = dockerfile();
    for deployment_name in [CONTROLLER, WORKER] {
        let d = deployment(&all, deployment_name);
        let c = only_container(d);
        let image = c.image.as_deref().unwrap();
        let repository = image.rsplit_once(':').unwrap().0;
        let target = repository.rsplit('/').next().unwrap();
        let stage = stage(&stages, target);
        let what = format!("Dockerfile target `{target}` (Deployment `{deployment_name}`)");

        // The binary is where the container's command runs it.
        let entrypoint = stage
            .entrypoint
            .as_ref()
            .unwrap_or_else(|| panic!("{what}: ENTRYPOINT"));
        assert_eq!(
            Some(entrypoint),
            c.command.as_ref(),
            "{what}: ENTRYPOINT is the container's command"
        );
        let [binary] = entrypoint.as_slice() else {
            panic!("{what}: ENTRYPOINT is the binary alone: {entrypoint:?}");
        };
        let copied = stage.copies.iter().any(|copy| {
            copy.first().map(String::as_str) == Some("--from=build")
                && copy.get(1) == Some(&format!("/src/target/release/{target}"))
                && copy.get(2) == Some(binary)
        });
        assert!(
            copied,
            "{what}: COPY --from=build /src/target/release/{target} {binary}"
        );

        // The user the pod runs as.
        let user = stage
            .user
            .as_deref()
            .unwrap_or_else(|| panic!("{what}: USER"));
        let (uid, gid) = user
            .split_once(':')
            .unwrap_or_else(|| panic!("{what}: USER uid:gid, numeric: `{user}`"));
        let (uid, gid): (i64, i64) = (uid.parse().unwrap(), gid.parse().unwrap());
        let pod = pod_spec(d).security_context.as_ref().unwrap();
        assert_eq!(Some(uid), pod.run_as_user, "{what}: USER uid");
        assert_eq!(Some(gid), pod.run_as_group, "{what}: USER gid");
        assert_eq!(uid, 65532, "{what}: the distroless nonroot user");

        // The ports the container declares.
        let declared: BTreeSet<u16> = c
            .ports
            .iter()
            .flatten()
            .map(|p| u16::try_from(p.container_port).unwrap())
            .collect();
        let exposed: BTreeSet<u16> = stage.exposed.iter().copied().collect();
        assert_eq!(exposed, declared, "{what}: EXPOSE is the container's ports");

        // The default command line: one the binary accepts, the subcommand the Deployment runs,
        // serving metrics on the exposed port.
        let cmd = stage.cmd.as_ref().unwrap_or_else(|| panic!("{what}: CMD"));
        let argv: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
        let subcommand = if target == "ballast" {
            ballast_controller::cli::Cli::try_parse_from(&argv)
                .unwrap_or_else(|e| panic!("{what}: `ballast` rejects CMD {argv:?}:\n{e}"));
            ballast_controller::cli::Cli::command()
                .try_get_matches_from(&argv)
                .unwrap()
                .subcommand_name()
                .map(str::to_owned)
        } else {
            ballast_worker::cli::Cli::try_parse_from(&argv)
                .unwrap_or_else(|e| panic!("{what}: `ballast-worker` rejects CMD {argv:?}:\n{e}"));
            ballast_worker::cli::Cli::command()
                .try_get_matches_from(&argv)
                .unwrap()
                .subcommand_name()
                .map(str::to_owned)
        };
        let args = c.args.as_ref().unwrap();
        assert_eq!(
            subcommand.as_deref(),
            args.first().map(String::as_str),
            "{what}: CMD runs the Deployment's subcommand"
        );
        assert!(
            exposed.contains(&metrics_port(&argv)),
            "{what}: CMD serves metrics on an exposed port"
        );
        assert!(
            exposed.contains(&metrics_port(&super::argv(d, c))),
            "{what}: the Deployment serves metrics on an exposed port"
        );
    }
}

#[test]
fn the_dockerfile_parser_reads_continuations_and_refuses_shell_form() {
    let text = "# c\nFROM a AS build\nRUN apt-get update \\\n    # note\n    && true\n\
                FROM b AS run\nUSER 65532:65532\nEXPOSE 9090 9464/tcp\nENTRYPOINT [\"/x\"]\n";
    let parsed = stages(text);
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].runs, ["apt-get update  && true"]);
    assert_eq!(parsed[1].exposed, [9090, 9464]);
    assert_eq!(
        parsed[1].entrypoint.as_deref(),
        Some(&["/x".to_owned()][..])
    );

    let shell = std::panic::catch_unwind(|| stages("FROM b AS run\nCMD /x run\n"));
    assert!(shell.is_err(), "shell-form CMD is refused");
}

#[test]
fn make_image_without_a_build_tool_fails_and_says_what_to_install() {
    // An empty PATH: no docker, podman or buildah (the script uses only bash built-ins before
    // it has found a tool).
    let empty = std::env::temp_dir().join(format!("ballast-no-tools-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let output = Command::new("/bin/bash")
        .arg(repo().join("scripts/build-image.sh"))
        .env_clear()
        .env("PATH", &empty)
        .output()
        .unwrap();
    std::fs::remove_dir(&empty).unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("none of docker, podman, buildah is installed"),
        "{stderr}"
    );
    assert!(stderr.contains("apt-get install podman"), "{stderr}");
}
