//! `openapi.yaml` as SDK generators read it: a Python client generated with
//! `openapi-python-client` drives a live sandbox, and the README's example request bodies type
//! check against the types `openapi-typescript` generates (TypeScript 5, `tsc --noEmit`).
//! Both generators run with their default settings, as a merchant would run them.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::cli::Sandbox;
use crate::common::{artefacts, tools};

const OPENAPI_PYTHON_CLIENT: &str = "openapi-python-client==0.29.1";
const OPENAPI_TYPESCRIPT: &str = "openapi-typescript@7.13.0";
const TYPESCRIPT: &str = "typescript@5.9.3";

/// The operations a merchant SDK must not offer (the browser's, MSP's, the operators').
const NOT_MERCHANT_PATHS: &[&str] = &[
    "/pay/{token}",
    "/return/{checkout_id}",
    "/cancel/{checkout_id}",
    "/notifications/multisafepay",
    "/health/live",
    "/health/ready",
    "/metrics",
];

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty directory under the target directory.
fn scratch(name: &str) -> PathBuf {
    let dir = artefacts::target_dir()
        .join("tmp")
        .join(format!("{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `command`; panics with its output unless it succeeds. Answers its stdout.
fn run(command: &mut Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what} could not start: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout.into_owned()
}

#[test]
fn a_python_client_generated_from_the_spec_drives_a_live_sandbox() {
    let python = tools::python_venv("openapi-python-client", &[OPENAPI_PYTHON_CLIENT]);
    let bin = python.parent().unwrap().to_owned();
    let out = scratch("python-client");
    // The generator formats its output with the `ruff` it installed: the venv's bin on PATH.
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run(
        Command::new(bin.join("openapi-python-client"))
            .env("PATH", &path)
            .arg("generate")
            .arg("--path")
            .arg(repository().join("openapi.yaml"))
            .arg("--output-path")
            .arg(out.join("client"))
            .args(["--meta", "none"]),
        "openapi-python-client generate",
    );

    let sandbox = Sandbox::start(&[]);
    let said = run(
        Command::new(&python)
            .current_dir(&out)
            .env("PYTHONPATH", &out)
            .arg(repository().join("tests/api/generated_clients/drive_python_client.py"))
            .arg(&sandbox.base)
            .arg(&sandbox.key),
        "the generated Python client against the sandbox",
    );
    assert!(said.starts_with("ok chk_"), "{said}");
}

/// The README's example request bodies: each `curl` with a `-d '<json>'` body, as (the path of
/// its operation, with `$ID` as `{id}`, and the JSON).
fn readme_examples(readme: &str) -> Vec<(String, String)> {
    let mut examples = Vec::new();
    let calls: Vec<&str> = readme.split("curl -s ").skip(1).collect();
    for call in calls {
        // The URL is the first word that is one (options such as `-X POST` may come first).
        let Some(url) = call.split_whitespace().find(|w| w.contains("/v1/")) else {
            continue;
        };
        let Some((_, after)) = call.split_once("-d '") else {
            continue;
        };
        let after = spliced_variables_as_text(after);
        let body = after.split('\'').next().unwrap_or_default();
        let path = url.trim_matches('"');
        let path = path
            .find("/v1/")
            .map(|at| &path[at..])
            .unwrap_or(path)
            .split('?')
            .next()
            .unwrap_or_default()
            .replace("$ID", "{id}");
        serde_json::from_str::<Value>(body)
            .unwrap_or_else(|e| panic!("README's body for {path} is not JSON ({e}): {body}"));
        examples.push((path, body.to_owned()));
    }
    examples
}

/// A body that splices a shell variable into its single-quoted JSON (`"'"$PM"'"`, closing the
/// quote, the variable, reopening it) with the variable's name as the value's text, so that the
/// body reads as the JSON the shell sends.
fn spliced_variables_as_text(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut rest = quoted;
    while let Some(at) = rest.find("'\"$") {
        let name_start = at + 3;
        let Some(len) = rest[name_start..].find("\"'") else {
            break;
        };
        out.push_str(&rest[..at]);
        out.push_str(&rest[name_start..name_start + len]);
        rest = &rest[name_start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// The TypeScript module that types every example by its operation's request body, and checks
/// that the generated `paths` hold no operation a merchant does not call.
fn typed_examples(examples: &[(String, String)]) -> String {
    let mut ts = String::from(
        "import type { paths } from \"./api\";\n\n\
         type JsonBody<P extends keyof paths> = paths[P] extends {\n  \
           post: { requestBody?: { content: { \"application/json\": infer B } } };\n}\n  \
           ? B\n  : never;\n\n",
    );
    for (i, (path, body)) in examples.iter().enumerate() {
        ts.push_str(&format!(
            "export const example{i}: JsonBody<{}> = {body};\n",
            serde_json::to_string(path).unwrap()
        ));
    }
    let others: Vec<String> = NOT_MERCHANT_PATHS
        .iter()
        .map(|p| serde_json::to_string(p).unwrap())
        .collect();
    ts.push_str(&format!(
        "\ntype NotMerchant = {};\n\
         export const merchantOnly: [Extract<keyof paths, NotMerchant>] extends [never] ? true : false = true;\n",
        others.join(" | ")
    ));
    ts
}

/// A fresh directory holding `api.d.ts`, generated from openapi.yaml by `openapi-typescript`;
/// and the `tsc` to check modules there with.
fn generated_types(name: &str) -> (PathBuf, PathBuf) {
    let tools = tools::npm_packages("openapi-typescript", &[OPENAPI_TYPESCRIPT, TYPESCRIPT]);
    let bin = tools.join("node_modules/.bin");
    let dir = scratch(name);
    run(
        Command::new(bin.join("openapi-typescript"))
            .arg(repository().join("openapi.yaml"))
            .arg("--output")
            .arg(dir.join("api.d.ts")),
        "openapi-typescript",
    );
    let tsc = bin.join("tsc");
    let version = run(Command::new(&tsc).arg("--version"), "tsc --version");
    assert!(version.starts_with("Version 5."), "{version}");
    (dir, tsc)
}

/// `tsc --noEmit` (strict) on `examples` typed as [`typed_examples`] writes them, in `dir`.
fn type_check(tsc: &Path, dir: &Path, examples: &[(String, String)]) -> std::process::Output {
    std::fs::write(dir.join("examples.ts"), typed_examples(examples)).unwrap();
    Command::new(tsc)
        .current_dir(dir)
        .args(["--noEmit", "--strict", "--target", "es2022"])
        .args(["--module", "es2022", "--moduleResolution", "bundler"])
        .args(["examples.ts", "api.d.ts"])
        .output()
        .unwrap_or_else(|e| panic!("tsc could not start: {e}"))
}

#[test]
fn the_readmes_example_bodies_type_check_against_the_generated_typescript() {
    let readme = std::fs::read_to_string(repository().join("README.md")).unwrap();
    let examples = readme_examples(&readme);
    let paths: Vec<&str> = examples.iter().map(|(p, _)| p.as_str()).collect();
    for expected in ["/v1/checkouts", "/v1/checkouts/{id}/refunds"] {
        assert!(
            paths.contains(&expected),
            "README has no example body for {expected}: {paths:?}"
        );
    }
    let (dir, tsc) = generated_types("typescript");
    let checked = type_check(&tsc, &dir, &examples);
    assert!(
        checked.status.success(),
        "tsc refused the README's examples (or found a non-merchant operation):\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[test]
fn a_body_that_does_not_fit_the_spec_fails_the_type_check() {
    // The check itself: a refund reason the spec does not list is refused by tsc.
    let (dir, tsc) = generated_types("typescript-negative");
    let wrong = [(
        "/v1/checkouts/{id}/refunds".to_owned(),
        r#"{"amount": 500, "reason": "changed_mind"}"#.to_owned(),
    )];
    let checked = type_check(&tsc, &dir, &wrong);
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(
        !checked.status.success() && said.contains("changed_mind"),
        "tsc accepted a refund reason the spec does not list: {said}"
    );
}

#[test]
fn both_specs_are_valid_openapi_and_every_operation_is_named() {
    let python = tools::python_venv("openapi-spec-validator", &["openapi-spec-validator==0.9.0"]);
    for spec in ["openapi.yaml", "openapi-internal.yaml"] {
        run(
            Command::new(python.parent().unwrap().join("openapi-spec-validator"))
                .arg(repository().join(spec)),
            &format!("openapi-spec-validator {spec}"),
        );
        // Every operation (webhooks included) has an operationId, unique in its file,
        // and no description cites a document outside the repository.
        let script = r#"
import sys, yaml
spec = yaml.safe_load(open(sys.argv[1]))
assert spec["info"].get("contact"), "no info.contact"
for group in ("paths", "webhooks"):
    for path, item in (spec.get(group) or {}).items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                assert op.get("operationId"), f"{method} {path} has no operationId"
                print(op["operationId"])
text = open(sys.argv[1]).read()
for cited in ("design.md", "Design §", "design §"):
    assert cited not in text, f"{sys.argv[1]} cites {cited}"
"#;
        let ids = run(
            Command::new(&python)
                .args(["-c", script])
                .arg(repository().join(spec)),
            &format!("the operations of {spec}"),
        );
        let ids: Vec<&str> = ids.lines().collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            ids.len(),
            "{spec}: an operationId twice: {ids:?}"
        );
    }
}
