//! Durable create throughput of the embedded store:
//! `cargo run --release -p noderun-controlplane --example store_bench -- [WRITERS] [CREATES]`.
//! Writes into a fresh dir under the system temp dir and removes it afterwards.

use noderun_controlplane::store::{EmbeddedOptions, EmbeddedStore, Store};
use noderun_core::{Object, ObjectMeta, Pod};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let writers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1);
    let creates: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let dir = std::env::temp_dir().join(format!("noderun-store-bench-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let store = EmbeddedStore::open(&EmbeddedOptions {
            data_dir: dir.clone(),
        })?;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let store = store.clone();
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
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{creates} durable creates, {writers} writers: {secs:.2} s, {:.0} creates/s",
            creates as f64 / secs
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    std::fs::remove_dir_all(&dir)?;
    result
}
