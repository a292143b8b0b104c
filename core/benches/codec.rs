//! Encode and decode throughput of a typical pod (three containers, labels,
//! resources, probes, status) in the binary protocol, and the same pod as
//! JSON for comparison. Prints both encoded sizes once at start.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use noderun_core::proto::{
    encode_frame, sample, ClientMessage, FrameDecoder, Request, DEFAULT_MAX_FRAME,
};
use noderun_core::Object;
use std::hint::black_box;

fn create_frame() -> (ClientMessage, Vec<u8>) {
    let msg = ClientMessage::Request(Request::Create {
        object: Object::Pod(sample::typical_pod()),
    });
    let mut buf = Vec::new();
    encode_frame(1, &msg, &mut buf, DEFAULT_MAX_FRAME).unwrap();
    (msg, buf)
}

fn codec(c: &mut Criterion) {
    let pod = sample::typical_pod();
    let (msg, frame) = create_frame();
    let json = serde_json::to_vec(&pod).unwrap();
    println!(
        "typical pod: binary frame {} bytes (payload {}), JSON {} bytes ({:.1}x larger)",
        frame.len(),
        frame.len() - 8,
        json.len(),
        json.len() as f64 / (frame.len() - 8) as f64
    );

    let mut g = c.benchmark_group("pod");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode/binary", |b| {
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            out.clear();
            encode_frame(1, black_box(&msg), &mut out, DEFAULT_MAX_FRAME).unwrap();
        })
    });
    g.bench_function("decode/binary", |b| {
        b.iter_batched_ref(
            FrameDecoder::default,
            |d| {
                d.extend(black_box(&frame));
                black_box(d.next_message::<ClientMessage>().unwrap().unwrap());
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("encode/json", |b| {
        b.iter(|| serde_json::to_vec(black_box(&pod)).unwrap())
    });
    g.bench_function("decode/json", |b| {
        b.iter(|| serde_json::from_slice::<noderun_core::Pod>(black_box(&json)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
