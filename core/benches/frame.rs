//! Record framing + CRC: encoding a frame and verifying one, at 100 B, 1 KiB and 64 KiB.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use zabflow_core::log::frame::{check_frame, encode_frame, FrameCheck};

const PAYLOAD_BYTES: [usize; 3] = [100, 1 << 10, 64 << 10];

fn frame(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("frame");
    for bytes in PAYLOAD_BYTES {
        let payload: Vec<u8> = (0..bytes).map(|i| (i * 31) as u8).collect();
        group.throughput(Throughput::Bytes(bytes as u64));
        let mut buffer = Vec::with_capacity(bytes + 8);
        group.bench_with_input(BenchmarkId::new("encode", bytes), &payload, |bench, payload| {
            bench.iter(|| {
                buffer.clear();
                encode_frame(&mut buffer, black_box(payload));
                black_box(buffer.len())
            })
        });
        let mut encoded = Vec::new();
        encode_frame(&mut encoded, &payload);
        group.bench_with_input(BenchmarkId::new("verify", bytes), &encoded, |bench, encoded| {
            bench.iter(|| {
                let check = check_frame(black_box(encoded));
                assert!(matches!(check, FrameCheck::Valid { .. }));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, frame);
criterion_main!(benches);
