//! The node's Node object: made at start (or found, when the node was
//! registered before), then its status (capacity, allocatable, the Ready
//! condition and the pressure conditions, addresses, system info) sent at
//! start and every `status_every`, at once when someone else (the node
//! lifecycle controller) changed the Ready condition, and at once when
//! the pressure changes.
//!
//! Allocatable is capacity less `--system-reserved`, `--kube-reserved`
//! and, for memory, the hard `memory.available` eviction threshold, as the
//! kubelet computes it.

use super::eviction::conditions::{pressure_conditions, PRESSURE_CONDITIONS};
use super::{facts, NodeContext, NodeError};
use noderun_core::proto::ErrorCode;
use noderun_core::{
    resource, ConditionStatus, Kind, Node, NodeAddress, NodeAddressType, NodeCondition,
    NodeConditionType, NodeSpec, NodeStatus, Object, ObjectMeta, Quantity, ResourceList, Time,
};

/// The status this node reports now; `previous` keeps the Ready
/// condition's transition time when it was already True.
pub fn node_status(
    ctx: &NodeContext,
    capacity: facts::Capacity,
    previous: &NodeStatus,
    now: Time,
) -> NodeStatus {
    let config = &ctx.config;
    let list = |cpu_millis: i64, memory: i64| -> ResourceList {
        [
            (resource::CPU.to_string(), cpu_quantity(cpu_millis)),
            (resource::MEMORY.to_string(), Quantity::from_bytes(memory)),
            (
                resource::PODS.to_string(),
                Quantity::from_units(config.max_pods),
            ),
        ]
        .into()
    };
    let was_ready = previous
        .condition(NodeConditionType::Ready)
        .filter(|c| c.status == ConditionStatus::True);
    let ready = NodeCondition {
        type_: NodeConditionType::Ready,
        status: ConditionStatus::True,
        last_heartbeat_time: Some(now),
        last_transition_time: was_ready.and_then(|c| c.last_transition_time).or(Some(now)),
        reason: "NodeReady".into(),
        message: "noderun is posting ready status".into(),
    };
    let pressure = pressure_conditions(&previous.conditions, *ctx.pressure.borrow(), now);
    // Other conditions (set by others) are kept as they are.
    let ours = |c: &NodeCondition| {
        c.type_ == NodeConditionType::Ready || PRESSURE_CONDITIONS.contains(&c.type_)
    };
    let others = previous.conditions.iter().filter(|c| !ours(c)).cloned();
    let conditions: Vec<NodeCondition> = std::iter::once(ready)
        .chain(pressure)
        .chain(others)
        .collect();
    let reserved = config.reserved;
    let memory_reserve =
        reserved.memory_bytes + config.eviction.memory_reserve(capacity.memory_bytes);
    NodeStatus {
        capacity: list(capacity.cpus * 1000, capacity.memory_bytes),
        allocatable: list(
            (capacity.cpus * 1000 - reserved.cpu_millis).max(0),
            (capacity.memory_bytes - memory_reserve).max(0),
        ),
        conditions,
        addresses: vec![
            NodeAddress {
                type_: NodeAddressType::InternalIp,
                address: config.node_ip.to_string(),
            },
            NodeAddress {
                type_: NodeAddressType::Hostname,
                address: facts::hostname(),
            },
        ],
        node_info: facts::system_info(),
    }
}

/// Whole cores as `2`, fractions as `1900m`.
fn cpu_quantity(millis: i64) -> Quantity {
    if millis % 1000 == 0 {
        Quantity::from_units(millis / 1000)
    } else {
        Quantity::from_millis(millis)
    }
}

fn new_node(ctx: &NodeContext) -> Node {
    let config = &ctx.config;
    let mut metadata = ObjectMeta::named("", &config.node_name);
    metadata.labels = config.labels.clone();
    metadata
        .labels
        .insert("kubernetes.io/hostname".into(), config.node_name.clone());
    metadata
        .labels
        .insert("kubernetes.io/os".into(), "linux".into());
    Node {
        metadata,
        spec: NodeSpec {
            pod_cidr: config.pod_cidr.clone(),
            pod_cidrs: vec![config.pod_cidr.clone()],
            unschedulable: false,
            taints: config.taints.clone(),
        },
        status: NodeStatus::default(),
    }
}

/// Create the Node (or find it) and send its status.
pub async fn register(ctx: &NodeContext) -> Result<(), NodeError> {
    let client = ctx.api.client().await;
    let name = &ctx.config.node_name;
    let node = match client.create(Object::Node(new_node(ctx))).await {
        Ok(o) => o,
        Err(e) if e.code() == Some(ErrorCode::AlreadyExists) => {
            tracing::info!(node = %name, "node registered before; its labels and taints stay as they are");
            client
                .get(Kind::Node, "", name)
                .await
                .map_err(NodeError::api(format!("reading node {name}")))?
        }
        Err(e) => return Err(NodeError::api(format!("registering node {name}"))(e)),
    };
    let Object::Node(node) = node else {
        unreachable!("the apiserver answered a node get with another kind");
    };
    send_status(ctx, node).await
}

/// Send the node's status on top of `node` (retrying a lost
/// compare-and-swap on a fresh read).
async fn send_status(ctx: &NodeContext, mut node: Node) -> Result<(), NodeError> {
    let name = &ctx.config.node_name;
    let capacity = facts::capacity()?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        node.status = node_status(ctx, capacity, &node.status, Time::now());
        let client = ctx.api.client().await;
        match client.update_status(Object::Node(node.clone())).await {
            Ok(_) => return Ok(()),
            Err(e) if e.code() == Some(ErrorCode::Conflict) && attempts < 5 => {
                if let Object::Node(fresh) = client
                    .get(Kind::Node, "", name)
                    .await
                    .map_err(NodeError::api(format!("reading node {name}")))?
                {
                    node = fresh;
                }
            }
            Err(e) => {
                ctx.api.recover(&e).await;
                return Err(NodeError::api(format!(
                    "updating the status of node {name}"
                ))(e));
            }
        }
    }
}

/// Read the Node and send its status again.
pub async fn refresh(ctx: &NodeContext) -> Result<(), NodeError> {
    let name = &ctx.config.node_name;
    let client = ctx.api.client().await;
    match client.get(Kind::Node, "", name).await {
        Ok(Object::Node(node)) => send_status(ctx, node).await,
        Ok(_) => unreachable!("the apiserver answered a node get with another kind"),
        // Deleted by an admin: register again, as the kubelet does.
        Err(e) if e.code() == Some(ErrorCode::NotFound) => register(ctx).await,
        Err(e) => {
            ctx.api.recover(&e).await;
            Err(NodeError::api(format!("reading node {name}"))(e))
        }
    }
}
