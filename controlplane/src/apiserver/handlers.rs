//! The request pipeline for everything but watch streams: authorize the
//! identity, admit the object, then the store. Each verb is one method;
//! [`Apiserver::handle`] dispatches to them.

use super::admission::{admit_create, admit_status, admit_update, has_status};
use super::authz::{authorize, check_pod_binding, check_status_change, Grant, Target, Verb};
use super::errors::from_store;
use super::{ids, Apiserver, Identity};
use crate::store::{Store, StoreError, WatchFilter};
use noderun_core::defaults::default_metadata;
use noderun_core::proto::{ApiError, ErrorCode, Request, Response};
use noderun_core::validate::validate_update;
use noderun_core::{Kind, LabelSelector, Object, ObjectMeta, Time};
use std::fmt;

/// How many generated names a create tries before giving up.
const GENERATE_NAME_ATTEMPTS: usize = 8;

/// What a request is doing, for logs and errors: `create Pod default/web
/// (admin)`.
pub(super) struct Doing<'a> {
    pub verb: Verb,
    pub target: Target<'a>,
    pub identity: &'a Identity,
}

impl<'a> Doing<'a> {
    /// `verb` on the object `meta` describes.
    pub fn on_object(verb: Verb, kind: Kind, meta: &'a ObjectMeta, identity: &'a Identity) -> Self {
        Doing {
            verb,
            target: Target {
                kind,
                namespace: &meta.namespace,
                name: &meta.name,
                node_name: None,
            },
            identity,
        }
    }
}

impl fmt::Display for Doing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.verb, self.target, self.identity)
    }
}

impl<S: Store> Apiserver<S> {
    /// Answer one request (watch streams are opened by the connection with
    /// [`Apiserver::open_watch`]).
    pub async fn handle(&self, identity: &Identity, request: Request) -> Response {
        let result = match request {
            Request::Get {
                kind,
                namespace,
                name,
            } => self.get(identity, kind, &namespace, &name).await,
            Request::List {
                kind,
                namespace,
                label_selector,
                node_name,
                revision,
            } => {
                let node = node_name.as_deref();
                self.list(identity, kind, &namespace, label_selector, node, revision)
                    .await
            }
            Request::Create { object } => self.create(identity, object).await,
            Request::Update { object } => self.update(identity, object).await,
            Request::UpdateStatus { object } => self.update_status(identity, object).await,
            Request::Delete {
                kind,
                namespace,
                name,
                preconditions,
                grace_period_seconds,
            } => {
                let target = Target {
                    kind,
                    namespace: &namespace,
                    name: &name,
                    node_name: None,
                };
                self.delete(identity, target, preconditions, grace_period_seconds)
                    .await
            }
            Request::Bind {
                namespace,
                name,
                node_name,
                resource_version,
            } => {
                self.bind(identity, &namespace, &name, &node_name, resource_version)
                    .await
            }
            Request::Ping => Ok(Response::Pong),
            Request::Watch { .. }
            | Request::CancelWatch { .. }
            | Request::OpenStream(_)
            | Request::ServeStreams => Err(ApiError::new(
                ErrorCode::BadRequest,
                "watch and stream requests belong to a connection",
            )),
        };
        result.unwrap_or_else(Response::Error)
    }

    /// Read the stored object `doing` names, checking a node's grant on it.
    pub(super) async fn read_authorized(
        &self,
        doing: &Doing<'_>,
        grant: &Grant,
    ) -> Result<Object, ApiError> {
        let t = &doing.target;
        let (object, _) = self
            .store
            .get(t.kind, t.namespace, t.name)
            .await
            .map_err(|e| from_store(e, doing))?;
        check_pod_binding(doing.identity, doing.verb, grant, &object)?;
        Ok(object)
    }

    async fn get(
        &self,
        identity: &Identity,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Response, ApiError> {
        let doing = Doing {
            verb: Verb::Get,
            target: Target {
                kind,
                namespace,
                name,
                node_name: None,
            },
            identity,
        };
        let grant = authorize(identity, doing.verb, &doing.target)?;
        Ok(Response::Object(
            self.read_authorized(&doing, &grant).await?,
        ))
    }

    async fn list(
        &self,
        identity: &Identity,
        kind: Kind,
        namespace: &str,
        selector: LabelSelector,
        node_name: Option<&str>,
        revision: u64,
    ) -> Result<Response, ApiError> {
        let doing = Doing {
            verb: Verb::List,
            target: Target {
                kind,
                namespace,
                name: "",
                node_name,
            },
            identity,
        };
        authorize(identity, doing.verb, &doing.target)?;
        let ns = (!namespace.is_empty()).then_some(namespace);
        let at = (revision != 0).then_some(revision);
        let (mut items, revision) = self
            .store
            .list(kind, ns, &selector, at)
            .await
            .map_err(|e| from_store(e, &doing))?;
        if let Some(node) = node_name {
            let filter = WatchFilter {
                node_name: Some(node.to_owned()),
                ..WatchFilter::kind(kind)
            };
            items.retain(|o| filter.matches(o));
        }
        Ok(Response::List { items, revision })
    }

    async fn create(&self, identity: &Identity, mut object: Object) -> Result<Response, ApiError> {
        let kind = object.kind();
        default_metadata(kind, object.metadata_mut());
        let meta = object.metadata().clone();
        let doing = Doing::on_object(Verb::Create, kind, &meta, identity);
        authorize(identity, doing.verb, &doing.target)?;
        if kind.is_namespaced() {
            self.require_namespace(&meta.namespace, &doing).await?;
        }
        admit_create(&mut object, ids::new_uid(), Time::now())?;
        if !meta.name.is_empty() {
            let created = self.store.create(object).await;
            return Ok(Response::Object(
                created.map_err(|e| from_store(e, &doing))?,
            ));
        }
        // generateName: a fresh suffix until a free name turns up.
        for _ in 0..GENERATE_NAME_ATTEMPTS {
            object.metadata_mut().name = format!("{}{}", meta.generate_name, ids::name_suffix());
            match self.store.create(object.clone()).await {
                Err(StoreError::AlreadyExists { .. }) => continue,
                created => {
                    return Ok(Response::Object(
                        created.map_err(|e| from_store(e, &doing))?,
                    ))
                }
            }
        }
        Err(ApiError::new(
            ErrorCode::AlreadyExists,
            format!(
                "{doing}: no free name found for generateName {:?}; use a longer prefix or a name",
                meta.generate_name
            ),
        ))
    }

    async fn require_namespace(&self, namespace: &str, doing: &Doing<'_>) -> Result<(), ApiError> {
        match self.store.get(Kind::Namespace, "", namespace).await {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound { .. }) => Err(ApiError::new(
                ErrorCode::NotFound,
                format!("{doing}: namespace {namespace:?} does not exist; create it first"),
            )
            .with_cause("metadata.namespace", "namespace not found")),
            Err(e) => Err(from_store(e, doing)),
        }
    }

    async fn update(&self, identity: &Identity, mut object: Object) -> Result<Response, ApiError> {
        let kind = object.kind();
        default_metadata(kind, object.metadata_mut());
        let meta = object.metadata().clone();
        let doing = Doing::on_object(Verb::Update, kind, &meta, identity);
        let grant = authorize(identity, doing.verb, &doing.target)?;
        let stored = self.read_authorized(&doing, &grant).await?;
        admit_update(&stored, &mut object)?;
        let updated = self.store.update(object).await;
        Ok(Response::Object(
            updated.map_err(|e| from_store(e, &doing))?,
        ))
    }

    async fn update_status(
        &self,
        identity: &Identity,
        object: Object,
    ) -> Result<Response, ApiError> {
        let doing = Doing::on_object(
            Verb::UpdateStatus,
            object.kind(),
            object.metadata(),
            identity,
        );
        let grant = authorize(identity, doing.verb, &doing.target)?;
        if !has_status(&object) {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!(
                    "{doing}: {} has no status; update the object itself",
                    object.kind()
                ),
            ));
        }
        // Only the status is taken from the request: a node cannot move
        // its pod elsewhere through it.
        let stored = self.read_authorized(&doing, &grant).await?;
        let next = admit_status(&stored, &object)?;
        check_status_change(identity, &grant, &stored, &next)?;
        let updated = self.store.update(next).await;
        Ok(Response::Object(
            updated.map_err(|e| from_store(e, &doing))?,
        ))
    }

    /// Set `spec.nodeName` of an unbound pod, as a compare-and-swap on
    /// `resource_version` (0: on whatever version is read now).
    async fn bind(
        &self,
        identity: &Identity,
        namespace: &str,
        name: &str,
        node_name: &str,
        resource_version: u64,
    ) -> Result<Response, ApiError> {
        let doing = Doing {
            verb: Verb::Bind,
            target: Target {
                kind: Kind::Pod,
                namespace,
                name,
                node_name: None,
            },
            identity,
        };
        let grant = authorize(identity, doing.verb, &doing.target)?;
        let stored = self.read_authorized(&doing, &grant).await?;
        let Object::Pod(pod) = &stored else {
            return Err(ApiError::new(
                ErrorCode::Internal,
                format!("{doing}: not a pod"),
            ));
        };
        let conflict = |why: String| ApiError::new(ErrorCode::Conflict, format!("{doing}: {why}"));
        if !pod.spec.node_name.is_empty() {
            return Err(conflict(format!(
                "the pod is already bound to node {}",
                pod.spec.node_name
            )));
        }
        if pod.metadata.is_terminating() {
            return Err(conflict("the pod is being deleted".into()));
        }
        let stored_rv = pod.metadata.resource_version;
        if resource_version != 0 && resource_version != stored_rv {
            return Err(conflict(format!(
                "resourceVersion {resource_version} was given but the pod is at {stored_rv}; read it again"
            )));
        }
        let mut bound = pod.clone();
        bound.spec.node_name = node_name.to_owned();
        let bound = Object::Pod(bound);
        validate_update(&stored, &bound).map_err(ApiError::from)?;
        let updated = self.store.update(bound).await;
        Ok(Response::Object(
            updated.map_err(|e| from_store(e, &doing))?,
        ))
    }
}
