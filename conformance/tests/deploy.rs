//! The deployment files under `deploy/` checked with the tools their
//! platforms use, offline: `systemd-analyze verify` for the systemd unit,
//! `promtool check rules` / `promtool test rules` for the alert rules,
//! `kubernetes-validate --strict` for the Kubernetes core objects; the
//! custom resources (ServiceMonitor, PrometheusRule, cert-manager
//! ClusterIssuer), which it has no schemas for, and the Containerfile are
//! checked structurally here. A missing tool fails the test with a pointer
//! to `scripts/install-test-deps.sh`; nothing is skipped.
//!
//! Run: `cargo test -p ironseal-conformance --test deploy`

#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ironseal_conformance::{clients, proc, server};
use serde_yaml::Value;

fn root() -> PathBuf {
    server::workspace_root()
}

fn deploy(rel: &str) -> PathBuf {
    root().join("deploy").join(rel)
}

/// Runs a tool; a tool that cannot start fails with the install hint.
fn tool(program: &Path, args: &[&str], cwd: Option<&Path>) -> proc::Output {
    let mut c = Command::new(program);
    c.args(args);
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    let o = proc::run(c, Duration::from_secs(120));
    assert!(
        !o.stderr.starts_with("spawn failed"),
        "{} could not run: run scripts/install-test-deps.sh\n{}",
        program.display(),
        o.describe()
    );
    assert!(o.status.is_some(), "{} timed out", program.display());
    o
}

fn system_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found on PATH: run scripts/install-test-deps.sh"))
}

fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            serde_yaml::Value::deserialize(d).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

use serde::Deserialize as _;

fn s<'a>(v: &'a Value, path: &str) -> &'a Value {
    let mut cur = v;
    for k in path.split('.') {
        cur = match k.parse::<usize>() {
            Ok(i) => &cur[i],
            Err(_) => &cur[k],
        };
    }
    cur
}

fn str_at<'a>(v: &'a Value, path: &str, what: &str) -> &'a str {
    s(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {path} missing or not a string"))
}

// ---------------------------------------------------------------------------
// Prometheus
// ---------------------------------------------------------------------------

#[test]
fn promtool_checks_the_alert_rules() {
    let promtool = system_tool("promtool");
    let o = tool(
        &promtool,
        &["check", "rules", "ironseal-alerts.yml"],
        Some(&deploy("prometheus")),
    );
    assert!(o.success(), "promtool check rules:\n{}", o.describe());
}

#[test]
fn promtool_unit_tests_pass() {
    let promtool = system_tool("promtool");
    let o = tool(
        &promtool,
        &["test", "rules", "ironseal-alerts.test.yml"],
        Some(&deploy("prometheus")),
    );
    assert!(o.success(), "promtool test rules:\n{}", o.describe());
    assert!(o.stdout.contains("SUCCESS"), "{}", o.describe());
}

/// Every alert the issue asks for exists, and every alert has a unit test.
#[test]
fn every_alert_is_present_and_unit_tested() {
    let rules = &yaml_docs(&deploy("prometheus/ironseal-alerts.yml"))[0];
    let tests = std::fs::read_to_string(deploy("prometheus/ironseal-alerts.test.yml")).unwrap();
    let mut names = Vec::new();
    for g in rules["groups"].as_sequence().expect("groups") {
        for r in g["rules"].as_sequence().expect("rules") {
            let name = str_at(r, "alert", "rule");
            str_at(r, "expr", name);
            str_at(r, "labels.severity", name);
            str_at(r, "annotations.summary", name);
            assert!(
                tests.contains(&format!("alertname: {name}")),
                "alert {name} has no promtool unit test"
            );
            names.push(name.to_string());
        }
    }
    for want in [
        "IronsealCACertificateExpiringSoon",
        "IronsealCACertificateExpiryCritical",
        "IronsealCRLNotRefreshed",
        "IronsealCRLPastNextUpdate",
        "IronsealOCSPResponderCertificateExpiring",
        "IronsealIssuanceFailureRatioHigh",
        "IronsealValidationFailureSpike",
        "IronsealApprovalWaitingTooLong",
        "IronsealStorageErrors",
        "IronsealCertificatesExpiringWithoutRenewal",
    ] {
        assert!(names.iter().any(|n| n == want), "alert {want} missing");
    }
}

/// deploy/kubernetes/prometheusrule.yaml carries exactly the rule groups of
/// deploy/prometheus/ironseal-alerts.yml, and the generator agrees.
#[test]
fn prometheusrule_is_in_sync_with_the_rules_file() {
    let rules = &yaml_docs(&deploy("prometheus/ironseal-alerts.yml"))[0];
    let pr = &yaml_docs(&deploy("kubernetes/prometheusrule.yaml"))[0];
    assert_eq!(
        str_at(pr, "apiVersion", "PrometheusRule"),
        "monitoring.coreos.com/v1"
    );
    assert_eq!(str_at(pr, "kind", "PrometheusRule"), "PrometheusRule");
    str_at(pr, "metadata.name", "PrometheusRule");
    assert!(
        pr["spec"]["groups"] == rules["groups"],
        "PrometheusRule differs from the rules file: run scripts/gen-prometheusrule.sh"
    );
    let o = tool(
        Path::new("bash"),
        &[
            root()
                .join("scripts/gen-prometheusrule.sh")
                .to_str()
                .unwrap(),
            "--check",
        ],
        None,
    );
    assert!(
        o.success(),
        "gen-prometheusrule.sh --check:\n{}",
        o.describe()
    );
}

// ---------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------

const CRD_FILES: [&str; 3] = [
    "servicemonitor.yaml",
    "prometheusrule.yaml",
    "cert-manager-clusterissuer.yaml",
];

fn k8s_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy("kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn kubernetes_core_objects_validate_offline() {
    let kv = clients::venv().join("bin/kubernetes-validate");
    assert!(
        kv.is_file(),
        "{} missing: run scripts/install-test-deps.sh",
        kv.display()
    );
    let core: Vec<PathBuf> = k8s_files()
        .into_iter()
        .filter(|p| !CRD_FILES.iter().any(|c| p.ends_with(c)))
        .collect();
    assert!(
        core.len() >= 7,
        "expected the core manifests, found {core:?}"
    );
    let mut args = vec!["--strict".to_string()];
    args.extend(core.iter().map(|p| p.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = tool(&kv, &args, None);
    assert!(o.success(), "kubernetes-validate:\n{}", o.describe());
    let all = format!("{}{}", o.stdout, o.stderr);
    assert!(!all.contains("Couldn't find schema"), "{all}");
    let kinds: Vec<String> = core
        .iter()
        .flat_map(|p| yaml_docs(p))
        .map(|d| str_at(&d, "kind", "object").to_string())
        .collect();
    for want in [
        "StatefulSet",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ConfigMap",
    ] {
        assert!(kinds.iter().any(|k| k == want), "no {want} in {kinds:?}");
    }
    let passed = all.matches("passed for resource").count();
    assert_eq!(
        passed,
        kinds.len(),
        "not every object was validated:\n{all}"
    );
}

/// The embedded store runs as one replica with its own volume, locked down.
#[test]
fn statefulset_is_single_writer_with_a_volume_and_locked_down() {
    let ss = &yaml_docs(&deploy("kubernetes/statefulset-sled.yaml"))[0];
    assert_eq!(
        s(ss, "spec.replicas").as_u64(),
        Some(1),
        "sled is single-writer"
    );
    let vct = str_at(
        ss,
        "spec.volumeClaimTemplates.0.metadata.name",
        "StatefulSet",
    );
    let c = s(ss, "spec.template.spec.containers.0");
    let mounts = c["volumeMounts"].as_sequence().unwrap();
    assert!(
        mounts
            .iter()
            .any(|m| m["name"].as_str() == Some(vct) && m["mountPath"].as_str() == Some("/data")),
        "the claim is not mounted at /data"
    );
    for doc in [
        ss.clone(),
        yaml_docs(&deploy("kubernetes/deployment-postgres.yaml"))[0].clone(),
    ] {
        let pod = s(&doc, "spec.template.spec");
        assert_eq!(s(pod, "securityContext.runAsNonRoot").as_bool(), Some(true));
        let sc = s(pod, "containers.0.securityContext");
        assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
        assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    }
    let pg = std::fs::read_to_string(deploy("kubernetes/deployment-postgres.yaml")).unwrap();
    assert!(
        pg.contains("issue 11"),
        "the PostgreSQL Deployment must say it needs issue 11"
    );
}

#[test]
fn custom_resources_have_their_required_fields() {
    let sm = &yaml_docs(&deploy("kubernetes/servicemonitor.yaml"))[0];
    assert_eq!(
        str_at(sm, "apiVersion", "ServiceMonitor"),
        "monitoring.coreos.com/v1"
    );
    assert_eq!(str_at(sm, "kind", "ServiceMonitor"), "ServiceMonitor");
    assert!(s(sm, "spec.selector.matchLabels").is_mapping());
    assert_eq!(
        str_at(sm, "spec.endpoints.0.path", "ServiceMonitor"),
        "/metrics"
    );
    let port = str_at(sm, "spec.endpoints.0.port", "ServiceMonitor");
    let svc = &yaml_docs(&deploy("kubernetes/service.yaml"))[0];
    assert!(
        svc["spec"]["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|p| p["name"].as_str() == Some(port)),
        "ServiceMonitor port {port} is not a Service port"
    );

    let ci = &yaml_docs(&deploy("kubernetes/cert-manager-clusterissuer.yaml"))[0];
    assert_eq!(
        str_at(ci, "apiVersion", "ClusterIssuer"),
        "cert-manager.io/v1"
    );
    assert_eq!(str_at(ci, "kind", "ClusterIssuer"), "ClusterIssuer");
    let server = str_at(ci, "spec.acme.server", "ClusterIssuer");
    assert!(
        server.starts_with("https://") && server.ends_with("/directory"),
        "{server}"
    );
    let ca_bundle = str_at(ci, "spec.acme.caBundle", "ClusterIssuer");
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(ca_bundle)
        .expect("caBundle is base64");
    assert!(String::from_utf8_lossy(&pem).contains("BEGIN CERTIFICATE"));
    str_at(ci, "spec.acme.privateKeySecretRef.name", "ClusterIssuer");
    str_at(
        ci,
        "spec.acme.externalAccountBinding.keyID",
        "ClusterIssuer",
    );
    str_at(
        ci,
        "spec.acme.externalAccountBinding.keySecretRef.name",
        "ClusterIssuer",
    );
    str_at(
        ci,
        "spec.acme.externalAccountBinding.keySecretRef.key",
        "ClusterIssuer",
    );
    assert!(!s(ci, "spec.acme.solvers").as_sequence().unwrap().is_empty());
}

// ---------------------------------------------------------------------------
// systemd
// ---------------------------------------------------------------------------

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(deploy("systemd/ironseal.service")).unwrap();
    let directive = |d: &str| unit.lines().any(|l| l.trim() == d);
    for d in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=ironseal",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
    ] {
        assert!(directive(d), "the unit lacks {d}");
    }
    // The capability to bind low ports is only an opt-in drop-in (a comment).
    assert!(unit
        .lines()
        .filter(|l| l.contains("CAP_NET_BIND_SERVICE"))
        .all(|l| l.trim_start().starts_with('#')));
    assert!(unit.contains("/etc/ironseal/ironseal.toml"));

    // `systemd-analyze verify` needs ExecStart to name an executable file:
    // verify a copy pointing at the built server (or, before it is built,
    // at this test binary).
    let sa = system_tool("systemd-analyze");
    let exe = server::ironseal_bin()
        .ok()
        .unwrap_or_else(|| std::env::current_exe().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("ironseal.service");
    std::fs::write(
        &copy,
        unit.replace("/usr/local/bin/ironseal", exe.to_str().unwrap()),
    )
    .unwrap();
    let o = tool(&sa, &["verify", copy.to_str().unwrap()], None);
    assert!(o.success(), "systemd-analyze verify:\n{}", o.describe());
    // verify exits 0 on unknown or unparseable directives: treat any remark
    // about the unit as a failure.
    let remarks: Vec<&str> = o
        .stderr
        .lines()
        .chain(o.stdout.lines())
        .filter(|l| l.contains("ironseal.service"))
        .collect();
    assert!(
        remarks.is_empty(),
        "systemd-analyze verify remarks:\n{}",
        remarks.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Containerfile
// ---------------------------------------------------------------------------

#[test]
fn containerfile_is_multistage_non_root_and_refers_to_real_paths() {
    let text = std::fs::read_to_string(deploy("container/Containerfile")).unwrap();
    // Join continuation lines, drop comments.
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for l in text.lines() {
        let t = l.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                cur.push_str(head);
                cur.push(' ');
            }
            None => {
                cur.push_str(t);
                lines.push(std::mem::take(&mut cur));
            }
        }
    }
    let instr = |name: &str| -> Vec<String> {
        lines
            .iter()
            .filter(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l[name.len()..].trim().to_string())
            .collect()
    };
    let froms = instr("FROM");
    assert!(froms.len() >= 2, "not multi-stage: {froms:?}");
    let stage = froms[0]
        .split_whitespace()
        .skip_while(|w| !w.eq_ignore_ascii_case("AS"))
        .nth(1)
        .expect("the build stage has a name");
    assert!(
        froms.last().unwrap().contains("slim"),
        "runtime is not a slim image"
    );
    let mut from_build = false;
    for c in instr("COPY") {
        let words: Vec<&str> = c.split_whitespace().collect();
        if words[0].starts_with("--from=") {
            assert_eq!(words[0], format!("--from={stage}"));
            from_build = true;
            continue;
        }
        for src in &words[..words.len() - 1] {
            assert!(
                root().join(src).exists(),
                "COPY source {src} does not exist in the repository"
            );
        }
    }
    assert!(
        from_build,
        "the runtime stage does not copy the build output"
    );
    // Every workspace member is copied (cargo needs them all for --locked).
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .unwrap();
    for m in members.split('"').skip(1).step_by(2) {
        assert!(
            text.contains(&format!("COPY {m} {m}")),
            "workspace member {m} not copied"
        );
    }
    let user = instr("USER");
    let user = user.last().expect("USER is set");
    let uid = user.split(':').next().unwrap();
    assert!(uid != "root" && uid != "0", "runs as root: USER {user}");
    assert!(
        instr("VOLUME").iter().any(|v| v.contains("/data")),
        "no /data volume"
    );
    let expose = instr("EXPOSE").join(" ");
    assert!(
        expose.contains("14000") && expose.contains("14080"),
        "EXPOSE {expose}"
    );
    let entry = instr("ENTRYPOINT").join(" ");
    assert!(
        entry.contains("/usr/local/bin/ironseal"),
        "ENTRYPOINT {entry}"
    );
    assert!(
        instr("COPY")
            .iter()
            .any(|c| c.ends_with("/usr/local/bin/ironseal")),
        "the entry point is not the copied binary"
    );
    assert!(text.contains("IRONSEAL_DATA_DIR=/data"));
}
