//! Durable create throughput of a store, without the apiserver:
//! `cargo run --release -p noderun-controlplane --example store_bench -- [--store URL] [WRITERS] [CREATES]`.
//!
//! `--store embedded` (the default) writes into a fresh dir under the
//! system temp dir and removes it afterwards; `--store etcd://HOST:PORT/PREFIX`
//! writes under PREFIX of a running etcd (give each run its own prefix).

mod common;

use noderun_controlplane::store::{EmbeddedOptions, EmbeddedStore, EtcdOptions, EtcdStore, Store};
use noderun_core::{Object, ObjectMeta, Pod};
use std::sync::Arc;
use std::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn bench<S: Store>(store: Arc<S>, writers: usize, creates: usize) -> Result<f64, BoxError> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in (w..creates).step_by(writers) {
                let pod = Object::Pod(Pod {
                    metadata: ObjectMeta {
                        name: format!("p{i}"),
                        namespace: "default".into(),
                        ..ObjectMeta::default()
                    },
                    ..Pod::default()
                });
                store.create(pod).await?;
            }
            Ok::<_, noderun_controlplane::store::StoreError>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed().as_secs_f64())
}

fn main() -> Result<(), BoxError> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let url = common::take_store_arg(&mut args)?;
    let mut args = args.into_iter();
    let writers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1);
    let creates: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let dir = std::env::temp_dir().join(format!("noderun-store-bench-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        if url == "embedded" {
            let store = EmbeddedStore::open(&EmbeddedOptions {
                data_dir: dir.clone(),
            })?;
            bench(Arc::new(store), writers, creates).await
        } else {
            let store = EtcdStore::connect(&EtcdOptions::from_url(&url)?).await?;
            bench(Arc::new(store), writers, creates).await
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    let secs = result?;
    let label = if url == "embedded" {
        "embedded"
    } else {
        "etcd"
    };
    println!(
        "{label:<8} {creates} durable creates, {writers:>2} writers: {secs:.2} s, {:.0} creates/s",
        creates as f64 / secs
    );
    Ok(())
}
