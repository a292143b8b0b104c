//! Authorization: what each [`Identity`] may do. `admin` may do
//! everything, `viewer` may read (get, list, watch) every kind, and
//! `node:<name>` only what a node agent needs:
//!
//! - pods bound to it: get, update status, delete (the forced delete that
//!   finalizes a graceful one); list and watch only with the field
//!   selector `spec.nodeName=<name>`;
//! - its own Node: get, create (registration), update status;
//! - its own Lease (`noderun-node-lease/<name>`): get, create, update.
//!
//! `system:controllers` may do what the controllers need and no more:
//! pods: read, create, update (adopt, release), delete; replicasets: read,
//! update status; nodes: read, update (taints), update status; leases:
//! read. It never binds (the scheduler's job) nor writes a pod's status
//! (the node's).
//!
//! `system:scheduler` may read pods and nodes, bind pods, and update a
//! pod's status only to set its PodScheduled condition (why it is not
//! scheduled); nothing else.
//!
//! Everything else is `Forbidden`. Whether a pod is bound to the node, or
//! what a status update changes, is only known once the stored pod is
//! read: [`authorize`] then answers [`Grant::PodsBoundTo`] or
//! [`Grant::PodScheduledCondition`] and the handler checks it with
//! [`check_pod_binding`] or [`check_status_change`].

use super::Identity;
use noderun_core::proto::{ApiError, ErrorCode};
use noderun_core::{Kind, Object, PodConditionType, PodStatus, NODE_LEASE_NAMESPACE};
use std::fmt;

/// The operations a request performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    UpdateStatus,
    Delete,
    Bind,
    /// Read a pod container's log (`pods/log`).
    Logs,
    /// Run a command in a pod's container (`pods/exec`).
    Exec,
}

impl Verb {
    pub const ALL: [Verb; 8] = [
        Verb::Get,
        Verb::List,
        Verb::Watch,
        Verb::Create,
        Verb::Update,
        Verb::UpdateStatus,
        Verb::Delete,
        Verb::Bind,
    ];

    /// Get, list and watch change nothing.
    pub fn is_read(self) -> bool {
        matches!(self, Verb::Get | Verb::List | Verb::Watch)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::UpdateStatus => "update the status of",
            Verb::Delete => "delete",
            Verb::Bind => "bind",
            Verb::Logs => "read the logs of",
            Verb::Exec => "exec into",
        }
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request touches, as far as it is known before the store is read.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub kind: Kind,
    /// Empty for cluster-scoped kinds, and for lists across namespaces.
    pub namespace: &'a str,
    /// Empty for list and watch.
    pub name: &'a str,
    /// The `spec.nodeName=` field selector of a list or watch.
    pub node_name: Option<&'a str>,
}

impl fmt::Display for Target<'_> {
    /// `pods default/web`, `nodes n1`, `pods in all namespaces`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = self.kind.plural();
        match (self.namespace, self.name) {
            ("", "") if self.kind.is_namespaced() => write!(f, "{plural} in all namespaces"),
            ("", "") => f.write_str(plural),
            (ns, "") => write!(f, "{plural} in namespace {ns}"),
            ("", name) => write!(f, "{plural} {name}"),
            (ns, name) => write!(f, "{plural} {ns}/{name}"),
        }
    }
}

/// What the identity may do with the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Allowed outright.
    All,
    /// Allowed if the stored pod is bound to this node.
    PodsBoundTo(String),
    /// A status update allowed if it changes nothing in the stored pod's
    /// status but its PodScheduled condition.
    PodScheduledCondition,
}

/// Whether `identity` may perform `verb` on `target`.
pub fn authorize(identity: &Identity, verb: Verb, target: &Target<'_>) -> Result<Grant, ApiError> {
    if matches!(verb, Verb::Logs | Verb::Exec) {
        return authorize_stream(identity, verb, target);
    }
    match identity {
        Identity::Admin => Ok(Grant::All),
        Identity::Viewer if verb.is_read() => Ok(Grant::All),
        Identity::Viewer => Err(forbidden(identity, verb, target, "viewers may only read")),
        Identity::Node(node) => authorize_node(identity, node, verb, target),
        Identity::Controllers => authorize_controllers(identity, verb, target),
        Identity::Scheduler => authorize_scheduler(identity, verb, target),
    }
}

/// `pods/log` and `pods/exec`: admin both; viewers read logs; a node only
/// the pods bound to it (checked against the stored pod); nobody else.
fn authorize_stream(
    identity: &Identity,
    verb: Verb,
    target: &Target<'_>,
) -> Result<Grant, ApiError> {
    if target.kind != Kind::Pod {
        return Err(forbidden(
            identity,
            verb,
            target,
            "only pods have logs and exec",
        ));
    }
    match identity {
        Identity::Admin => Ok(Grant::All),
        Identity::Viewer if verb == Verb::Logs => Ok(Grant::All),
        Identity::Node(node) => Ok(Grant::PodsBoundTo(node.clone())),
        _ => Err(forbidden(identity, verb, target, STREAM_RULE)),
    }
}

const STREAM_RULE: &str = "admins may read logs and exec, viewers may read logs, \
a node may do both only in the pods bound to it";

fn authorize_scheduler(
    identity: &Identity,
    verb: Verb,
    target: &Target<'_>,
) -> Result<Grant, ApiError> {
    match (target.kind, verb) {
        (Kind::Pod | Kind::Node, v) if v.is_read() => Ok(Grant::All),
        (Kind::Pod, Verb::Bind) => Ok(Grant::All),
        (Kind::Pod, Verb::UpdateStatus) => Ok(Grant::PodScheduledCondition),
        _ => Err(forbidden(identity, verb, target, SCHEDULER_RULE)),
    }
}

const SCHEDULER_RULE: &str = "the scheduler may read pods and nodes, bind pods, \
and set the PodScheduled condition of a pod's status";

fn authorize_controllers(
    identity: &Identity,
    verb: Verb,
    target: &Target<'_>,
) -> Result<Grant, ApiError> {
    let allowed = (verb.is_read() && target.kind != Kind::Namespace)
        || match target.kind {
            Kind::Pod => matches!(verb, Verb::Create | Verb::Update | Verb::Delete),
            Kind::ReplicaSet => verb == Verb::UpdateStatus,
            Kind::Node => matches!(verb, Verb::Update | Verb::UpdateStatus),
            Kind::Lease | Kind::Namespace => false,
        };
    if allowed {
        Ok(Grant::All)
    } else {
        Err(forbidden(identity, verb, target, CONTROLLERS_RULE))
    }
}

const CONTROLLERS_RULE: &str = "the controllers may read pods, replicasets, nodes and leases, \
create, update and delete pods, update the status of replicasets, and update nodes";

fn authorize_node(
    identity: &Identity,
    node: &str,
    verb: Verb,
    target: &Target<'_>,
) -> Result<Grant, ApiError> {
    let own_name = target.name == node;
    let allowed = match target.kind {
        Kind::Pod => match verb {
            Verb::Get | Verb::UpdateStatus | Verb::Delete => {
                return Ok(Grant::PodsBoundTo(node.to_owned()))
            }
            Verb::List | Verb::Watch if target.node_name == Some(node) => true,
            Verb::List | Verb::Watch => {
                let reason = format!("a node may only {verb} pods with spec.nodeName={node}");
                return Err(forbidden(identity, verb, target, &reason));
            }
            _ => false,
        },
        Kind::Node => own_name && matches!(verb, Verb::Get | Verb::Create | Verb::UpdateStatus),
        Kind::Lease => {
            own_name
                && target.namespace == NODE_LEASE_NAMESPACE
                && matches!(verb, Verb::Get | Verb::Create | Verb::Update)
        }
        Kind::Namespace | Kind::ReplicaSet => false,
    };
    if allowed {
        Ok(Grant::All)
    } else {
        Err(forbidden(identity, verb, target, NODE_RULE))
    }
}

const NODE_RULE: &str = "a node may read pods bound to it and update their status, \
and read, register and update the status of its own Node and Lease";

/// Check a [`Grant::PodsBoundTo`] against the stored pod.
pub fn check_pod_binding(
    identity: &Identity,
    verb: Verb,
    grant: &Grant,
    stored: &Object,
) -> Result<(), ApiError> {
    let Grant::PodsBoundTo(node) = grant else {
        return Ok(());
    };
    let bound_to = match stored {
        Object::Pod(pod) => pod.spec.node_name.as_str(),
        _ => "",
    };
    if bound_to == node {
        return Ok(());
    }
    let target = object_target(stored);
    let reason = if bound_to.is_empty() {
        "the pod is not bound to any node".to_owned()
    } else {
        format!("the pod is bound to node {bound_to}")
    };
    Err(forbidden(identity, verb, &target, &reason))
}

/// Check a [`Grant::PodScheduledCondition`]: the status `next` (the
/// stored object with the request's status) may differ from the stored
/// one only in its PodScheduled condition.
pub fn check_status_change(
    identity: &Identity,
    grant: &Grant,
    stored: &Object,
    next: &Object,
) -> Result<(), ApiError> {
    if *grant != Grant::PodScheduledCondition {
        return Ok(());
    }
    let (Object::Pod(old), Object::Pod(new)) = (stored, next) else {
        return Err(forbidden(
            identity,
            Verb::UpdateStatus,
            &object_target(stored),
            SCHEDULER_RULE,
        ));
    };
    let others = |s: &PodStatus| {
        let mut s = s.clone();
        s.conditions
            .retain(|c| c.type_ != PodConditionType::PodScheduled);
        s
    };
    if others(&old.status) == others(&new.status) {
        return Ok(());
    }
    Err(forbidden(
        identity,
        Verb::UpdateStatus,
        &object_target(stored),
        "the scheduler may change only the PodScheduled condition of a pod's status",
    ))
}

fn object_target(object: &Object) -> Target<'_> {
    let meta = object.metadata();
    Target {
        kind: object.kind(),
        namespace: &meta.namespace,
        name: &meta.name,
        node_name: None,
    }
}

fn forbidden(identity: &Identity, verb: Verb, target: &Target<'_>, reason: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Forbidden,
        format!("{identity} may not {verb} {target}: {reason}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::{ConditionStatus, Pod, PodCondition, PodPhase, PodSpec};

    fn target(kind: Kind, namespace: &'static str, name: &'static str) -> Target<'static> {
        Target {
            kind,
            namespace,
            name,
            node_name: None,
        }
    }

    #[test]
    fn viewer_reads_only_and_admin_does_all() {
        let t = target(Kind::ReplicaSet, "default", "web");
        for verb in Verb::ALL {
            assert_eq!(authorize(&Identity::Admin, verb, &t), Ok(Grant::All));
            let got = authorize(&Identity::Viewer, verb, &t);
            assert_eq!(got.is_ok(), verb.is_read(), "{verb}");
        }
        let e = authorize(&Identity::Viewer, Verb::Delete, &t).unwrap_err();
        assert_eq!(e.code, ErrorCode::Forbidden);
        assert!(
            e.message
                .contains("viewer may not delete replicasets default/web"),
            "{e}"
        );
    }

    #[test]
    fn node_rules() {
        let n1 = Identity::Node("n1".into());
        let lease = target(Kind::Lease, NODE_LEASE_NAMESPACE, "n1");
        assert!(authorize(&n1, Verb::Update, &lease).is_ok());
        let other_lease = target(Kind::Lease, NODE_LEASE_NAMESPACE, "n2");
        assert!(authorize(&n1, Verb::Update, &other_lease).is_err());
        assert!(authorize(&n1, Verb::UpdateStatus, &target(Kind::Node, "", "n1")).is_ok());
        assert!(authorize(&n1, Verb::Update, &target(Kind::Node, "", "n1")).is_err());
        assert!(authorize(&n1, Verb::Get, &target(Kind::Node, "", "n2")).is_err());
        let mut pods = target(Kind::Pod, "", "");
        assert!(authorize(&n1, Verb::Watch, &pods).is_err());
        pods.node_name = Some("n1");
        assert!(authorize(&n1, Verb::Watch, &pods).is_ok());
        let grant = authorize(&n1, Verb::Get, &target(Kind::Pod, "default", "p")).unwrap();
        assert_eq!(grant, Grant::PodsBoundTo("n1".into()));
        let pod = |node: &str| {
            Object::Pod(Pod {
                spec: PodSpec {
                    node_name: node.into(),
                    ..PodSpec::default()
                },
                ..Pod::default()
            })
        };
        assert!(check_pod_binding(&n1, Verb::Get, &grant, &pod("n1")).is_ok());
        let e = check_pod_binding(&n1, Verb::Get, &grant, &pod("n2")).unwrap_err();
        assert!(e.message.contains("bound to node n2"), "{e}");
        assert!(check_pod_binding(&n1, Verb::Get, &grant, &pod("")).is_err());
    }

    /// Check `identity`'s rows: per kind, one `y`/`n` per verb in the order
    /// get list watch create update status delete bind, as in the
    /// apiserver's matrix test.
    fn assert_rows(identity: &Identity, rows: [(Kind, &str); 5]) {
        for (kind, row) in rows {
            let t = target(kind, "default", "x");
            for (verb, want) in Verb::ALL.into_iter().zip(row.chars()) {
                let got = authorize(identity, verb, &t);
                assert_eq!(
                    got.is_ok(),
                    want == 'y',
                    "{identity} {verb} {kind}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn stream_rules() {
        let pod = target(Kind::Pod, "default", "p");
        assert_eq!(
            authorize(&Identity::Admin, Verb::Exec, &pod),
            Ok(Grant::All)
        );
        assert_eq!(
            authorize(&Identity::Viewer, Verb::Logs, &pod),
            Ok(Grant::All)
        );
        let e = authorize(&Identity::Viewer, Verb::Exec, &pod).unwrap_err();
        assert!(
            e.message
                .contains("viewer may not exec into pods default/p"),
            "{e}"
        );
        for who in [Identity::Controllers, Identity::Scheduler] {
            for verb in [Verb::Logs, Verb::Exec] {
                assert_eq!(
                    authorize(&who, verb, &pod).unwrap_err().code,
                    ErrorCode::Forbidden
                );
            }
        }
        let n1 = Identity::Node("n1".into());
        let grant = authorize(&n1, Verb::Exec, &pod).unwrap();
        assert_eq!(grant, Grant::PodsBoundTo("n1".into()));
        let bound = |node: &str| {
            let mut p = Pod::default();
            p.spec.node_name = node.into();
            Object::Pod(p)
        };
        assert!(check_pod_binding(&n1, Verb::Exec, &grant, &bound("n1")).is_ok());
        let e = check_pod_binding(&n1, Verb::Exec, &grant, &bound("n2")).unwrap_err();
        assert!(
            e.message.contains("exec into") && e.message.contains("n2"),
            "{e}"
        );
        let node = target(Kind::Node, "", "n1");
        assert!(authorize(&Identity::Admin, Verb::Logs, &node).is_err());
    }

    #[test]
    fn controller_rules() {
        let c = Identity::Controllers;
        assert_rows(
            &c,
            [
                (Kind::Namespace, "nnnnnnnn"),
                (Kind::Pod, "yyyyynyn"),
                (Kind::Node, "yyynyynn"),
                (Kind::ReplicaSet, "yyynnynn"),
                (Kind::Lease, "yyynnnnn"),
            ],
        );
        let e = authorize(&c, Verb::Bind, &target(Kind::Pod, "default", "p")).unwrap_err();
        assert!(
            e.message
                .contains("system:controllers may not bind pods default/p"),
            "{e}"
        );
    }

    #[test]
    fn scheduler_rules() {
        let s = Identity::Scheduler;
        assert_rows(
            &s,
            [
                (Kind::Namespace, "nnnnnnnn"),
                (Kind::Pod, "yyynnyny"),
                (Kind::Node, "yyynnnnn"),
                (Kind::ReplicaSet, "nnnnnnnn"),
                (Kind::Lease, "nnnnnnnn"),
            ],
        );
        let grant = authorize(&s, Verb::UpdateStatus, &target(Kind::Pod, "default", "p")).unwrap();
        assert_eq!(grant, Grant::PodScheduledCondition);
        let stored = Pod::default();
        let mut scheduled = stored.clone();
        scheduled.status.conditions.push(PodCondition {
            type_: PodConditionType::PodScheduled,
            status: ConditionStatus::False,
            reason: "Unschedulable".into(),
            ..PodCondition::default()
        });
        let (stored, scheduled) = (Object::Pod(stored), Object::Pod(scheduled));
        assert!(check_status_change(&s, &grant, &stored, &scheduled).is_ok());
        let mut running = scheduled.clone();
        if let Object::Pod(p) = &mut running {
            p.status.phase = PodPhase::Running;
        }
        let e = check_status_change(&s, &grant, &stored, &running).unwrap_err();
        assert!(e.message.contains("only the PodScheduled condition"), "{e}");
        // Other identities' grants are not this check's business.
        assert!(check_status_change(&s, &Grant::All, &stored, &running).is_ok());
    }
}
