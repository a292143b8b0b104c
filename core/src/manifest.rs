//! Manifests: objects as users write them, in YAML or JSON with Kubernetes'
//! camelCase field names, `apiVersion` and `kind`. One file may hold several
//! documents (`---`) or a `kind: List` with `items`.
//!
//! Reading is strict: an unknown field (`contianers`) or a wrong type is an
//! error naming the document and the field path. Writing leaves out what is
//! empty, as `kubectl get -o yaml` does.

use crate::model::{Kind, Object};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::string::{String, ToString};
use std::vec::Vec;

/// Why a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("document {doc}: not valid YAML or JSON: {message}")]
    Syntax { doc: usize, message: String },
    #[error("document {doc}: expected a mapping with apiVersion, kind, metadata and spec")]
    NotAMapping { doc: usize },
    #[error("document {doc}: `kind` is missing (for example `kind: Pod`)")]
    MissingKind { doc: usize },
    #[error("document {doc}: kind {kind:?} is not supported (supported: Pod, ReplicaSet, Node, Namespace, Lease)")]
    UnknownKind { doc: usize, kind: String },
    #[error("document {doc}: apiVersion {got:?} does not serve kind {kind}; use {expected:?}")]
    ApiVersion {
        doc: usize,
        kind: Kind,
        expected: &'static str,
        got: String,
    },
    #[error("document {doc} ({kind}): {path}: {message}")]
    Field {
        doc: usize,
        kind: Kind,
        path: String,
        message: String,
    },
    #[error("the manifest holds no objects")]
    Empty,
}

/// Read every object from a YAML or JSON text (documents are numbered from 1).
/// Text that starts with `{` is JSON (one or more values in a row), anything
/// else YAML: JSON is not quite a subset of YAML (it allows raw control
/// characters that YAML refuses), so it gets its own parser.
pub fn parse_objects(text: &str) -> Result<Vec<Object>, ManifestError> {
    let syntax = |doc, e: &dyn core::fmt::Display| ManifestError::Syntax {
        doc,
        message: e.to_string(),
    };
    let documents: Vec<Value> = if text.trim_start().starts_with('{') {
        serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .enumerate()
            .map(|(i, v)| v.map_err(|e| syntax(i + 1, &e)))
            .collect::<Result<_, _>>()?
    } else {
        serde_yaml_ng::Deserializer::from_str(text)
            .enumerate()
            .map(|(i, doc)| Value::deserialize(doc).map_err(|e| syntax(i + 1, &e)))
            .collect::<Result<_, _>>()?
    };
    let mut objects = Vec::new();
    for (i, value) in documents.into_iter().enumerate() {
        let doc_no = i + 1;
        match value {
            Value::Null => continue,
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                let items = map
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for item in items {
                    objects.push(object_from_value(doc_no, item)?);
                }
            }
            other => objects.push(object_from_value(doc_no, other)?),
        }
    }
    if objects.is_empty() {
        return Err(ManifestError::Empty);
    }
    Ok(objects)
}

/// Read exactly one object.
pub fn parse_object(text: &str) -> Result<Object, ManifestError> {
    let mut objects = parse_objects(text)?;
    Ok(objects.swap_remove(0))
}

fn object_from_value(doc: usize, value: Value) -> Result<Object, ManifestError> {
    let Value::Object(mut map) = value else {
        return Err(ManifestError::NotAMapping { doc });
    };
    let kind_text = match map.remove("kind") {
        Some(Value::String(k)) => k,
        _ => return Err(ManifestError::MissingKind { doc }),
    };
    let kind = Kind::ALL
        .into_iter()
        .find(|k| k.name() == kind_text)
        .ok_or(ManifestError::UnknownKind {
            doc,
            kind: kind_text,
        })?;
    let api_version = map.remove("apiVersion");
    let expected = kind.api_version();
    match api_version {
        Some(Value::String(v)) if v == expected => {}
        None => {}
        Some(other) => {
            let got = other
                .as_str()
                .map_or_else(|| other.to_string(), String::from);
            return Err(ManifestError::ApiVersion {
                doc,
                kind,
                expected,
                got,
            });
        }
    }
    let body = Value::Object(map);
    let field = |e: serde_path_to_error::Error<serde_json::Error>| ManifestError::Field {
        doc,
        kind,
        path: e.path().to_string(),
        message: e.inner().to_string(),
    };
    Ok(match kind {
        Kind::Pod => Object::Pod(serde_path_to_error::deserialize(body).map_err(field)?),
        Kind::Node => Object::Node(serde_path_to_error::deserialize(body).map_err(field)?),
        Kind::ReplicaSet => {
            Object::ReplicaSet(serde_path_to_error::deserialize(body).map_err(field)?)
        }
        Kind::Namespace => {
            Object::Namespace(serde_path_to_error::deserialize(body).map_err(field)?)
        }
        Kind::Lease => Object::Lease(serde_path_to_error::deserialize(body).map_err(field)?),
    })
}

/// The object as a JSON value with `apiVersion` and `kind` first and empty
/// fields left out.
pub fn to_value(object: &Object) -> Value {
    let body = match object {
        Object::Pod(o) => serde_json::to_value(o),
        Object::Node(o) => serde_json::to_value(o),
        Object::ReplicaSet(o) => serde_json::to_value(o),
        Object::Namespace(o) => serde_json::to_value(o),
        Object::Lease(o) => serde_json::to_value(o),
    }
    .expect("model types always serialize to JSON");
    let kind = object.kind();
    let mut map = Map::new();
    map.insert(
        "apiVersion".into(),
        Value::String(kind.api_version().into()),
    );
    map.insert("kind".into(), Value::String(kind.name().into()));
    if let Value::Object(fields) = prune(body) {
        map.extend(fields);
    }
    Value::Object(map)
}

/// Several objects as one `kind: List`, as `kubectl get -o yaml` prints them.
pub fn list_to_value(objects: &[Object]) -> Value {
    let mut map = Map::new();
    map.insert("apiVersion".into(), Value::String("v1".into()));
    map.insert("kind".into(), Value::String("List".into()));
    map.insert(
        "items".into(),
        Value::Array(objects.iter().map(to_value).collect()),
    );
    Value::Object(map)
}

/// YAML text of a value from [`to_value`] or [`list_to_value`].
pub fn to_yaml(value: &Value) -> String {
    serde_yaml_ng::to_string(value).expect("JSON values always serialize to YAML")
}

/// Indented JSON text of a value from [`to_value`] or [`list_to_value`].
pub fn to_json(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("JSON values always serialize")
}

/// Drop nulls, empty strings, empty lists and maps that are empty to begin
/// with. A map that only becomes empty here is kept (`running: {}` still
/// says the container runs), so printing then reading gives the same object.
/// Entries of free-form maps are data, not fields: a label may be empty.
fn prune(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !is_empty(v))
                .map(|(k, v)| {
                    let v = if FREE_FORM_MAPS.contains(&k.as_str()) {
                        v
                    } else {
                        prune(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(prune).collect()),
        other => other,
    }
}

/// Fields of the model that hold string maps written by users.
const FREE_FORM_MAPS: [&str; 4] = ["labels", "annotations", "nodeSelector", "matchLabels"];

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PortRef, Quantity, RestartPolicy, SelectorOperator};

    const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: prod
  labels: {app: web, tier: front}
  resourceVersion: "42"
spec:
  restartPolicy: OnFailure
  nodeSelector: {disk: ssd}
  tolerations:
  - {key: gpu, operator: Exists, effect: NoSchedule}
  affinity:
    podAntiAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
      - labelSelector:
          matchExpressions: [{key: app, operator: In, values: [web]}]
        topologyKey: kubernetes.io/hostname
  containers:
  - name: nginx
    image: nginx:1.25
    command: [nginx, -g, "daemon off;"]
    env: [{name: MODE, value: prod}]
    ports: [{name: http, containerPort: 80}]
    resources:
      requests: {cpu: 250m, memory: 64Mi}
      limits: {cpu: 1, memory: 128Mi}
    readinessProbe:
      httpGet: {path: /healthz, port: http}
      periodSeconds: 5
    livenessProbe:
      tcpSocket: {port: 80}
"#;

    fn pod(objects: &[Object]) -> &crate::model::Pod {
        match &objects[0] {
            Object::Pod(p) => p,
            other => panic!("expected a pod, got {other:?}"),
        }
    }

    #[test]
    fn reads_a_kubectl_style_pod() {
        let objects = parse_objects(POD).unwrap();
        let p = pod(&objects);
        assert_eq!(p.metadata.name, "web");
        assert_eq!(p.metadata.resource_version, 42);
        assert_eq!(p.spec.restart_policy, RestartPolicy::OnFailure);
        let c = &p.spec.containers[0];
        assert_eq!(c.command[2], "daemon off;");
        assert_eq!(c.resources.requests["cpu"], Quantity::from_millis(250));
        assert_eq!(c.resources.limits["memory"].value(), 128 << 20);
        assert_eq!(c.resources.limits["cpu"].millis(), 1000);
        let probe = c
            .readiness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap();
        assert_eq!(probe.port, PortRef::Name("http".into()));
        assert_eq!(
            c.liveness_probe
                .as_ref()
                .unwrap()
                .tcp_socket
                .as_ref()
                .unwrap()
                .port,
            PortRef::Number(80)
        );
        let anti = p
            .spec
            .affinity
            .as_ref()
            .unwrap()
            .pod_anti_affinity
            .as_ref()
            .unwrap();
        let term = &anti.required_during_scheduling_ignored_during_execution[0];
        assert_eq!(
            term.label_selector.as_ref().unwrap().match_expressions[0].operator,
            SelectorOperator::In
        );
    }

    #[test]
    fn json_and_multi_document_yaml_and_lists() {
        let json = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
        assert_eq!(parse_objects(json).unwrap().len(), 1);
        let rs = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: r}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: x}}\n    spec: {containers: [{name: c, image: busybox}]}\n";
        let two = format!("{POD}---\n{rs}");
        let objs = parse_objects(&two).unwrap();
        assert_eq!(
            objs.iter().map(Object::kind).collect::<Vec<_>>(),
            [Kind::Pod, Kind::ReplicaSet]
        );
        let list = format!(r#"{{"apiVersion":"v1","kind":"List","items":[{json},{json}]}}"#);
        assert_eq!(parse_objects(&list).unwrap().len(), 2);
    }

    #[test]
    fn errors_name_the_document_and_field() {
        let typo = POD.replace("containerPort", "containrPort");
        let e = parse_objects(&typo).unwrap_err().to_string();
        assert!(
            e.contains("spec.containers[0].ports[0]") && e.contains("containrPort"),
            "{e}"
        );

        let bad_quantity = POD.replace("memory: 128Mi", "memory: 12Zi");
        let e = parse_objects(&bad_quantity).unwrap_err().to_string();
        assert!(
            e.contains("spec.containers[0].resources.limits.memory") && e.contains("12Zi"),
            "{e}"
        );

        let second = format!("{POD}---\nkind: Pod\nspec: {{containers: 3}}\n");
        let e = parse_objects(&second).unwrap_err();
        assert!(matches!(e, ManifestError::Field { doc: 2, .. }), "{e}");

        let cases = [
            ("kind: Deployment\n", "not supported"),
            ("metadata: {name: x}\n", "`kind` is missing"),
            ("apiVersion: v2\nkind: Pod\n", "use \"v1\""),
            ("- a\n- b\n", "expected a mapping"),
            ("kind: [unclosed\n", "not valid YAML"),
            ("{\"kind\": \"Pod\",", "not valid YAML or JSON"),
            ("", "no objects"),
        ];
        for (text, want) in cases {
            let e = parse_objects(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn written_yaml_leaves_out_empties_and_reads_back() {
        let objects = parse_objects(POD).unwrap();
        let yaml = to_yaml(&to_value(&objects[0]));
        assert!(
            yaml.starts_with("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n"),
            "{yaml}"
        );
        assert!(yaml.contains("resourceVersion: '42'"), "{yaml}");
        assert!(
            !yaml.contains("annotations") && !yaml.contains("null") && !yaml.contains("[]"),
            "{yaml}"
        );
        assert_eq!(parse_objects(&yaml).unwrap(), objects);
        let json = to_json(&list_to_value(&objects));
        assert_eq!(parse_objects(&json).unwrap(), objects);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn any_object_survives_yaml_and_json(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            use arbitrary::Arbitrary;
            let Ok(object) = Object::arbitrary(&mut arbitrary::Unstructured::new(&bytes)) else { return Ok(()) };
            let value = to_value(&object);
            proptest::prop_assert_eq!(&parse_object(&to_yaml(&value)).unwrap(), &object);
            proptest::prop_assert_eq!(&parse_object(&to_json(&value)).unwrap(), &object);
        }
    }
}
