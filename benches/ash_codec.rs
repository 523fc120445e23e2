//! ASH codec throughput: encoding and deframing a typical 60-byte DATA frame (an EZSP
//! `sendUnicast` carrying an OTA Image Block Response is about this size).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use zigbee_otad::ash::{Deframer, Frame, encode_frame};

fn typical_data_frame() -> Frame {
    Frame::Data {
        frm_num: 3,
        re_tx: false,
        ack_num: 6,
        payload: (0..60u8).map(|i| i.wrapping_mul(29)).collect(),
    }
}

fn ash_codec(c: &mut Criterion) {
    let frame = typical_data_frame();
    let mut wire = Vec::new();
    encode_frame(&frame, &mut wire);

    let mut group = c.benchmark_group("ash_data_60");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("encode", |b| {
        let mut out = Vec::with_capacity(128);
        b.iter(|| {
            out.clear();
            encode_frame(black_box(&frame), &mut out);
            black_box(out.len())
        })
    });
    group.bench_function("deframe", |b| {
        let mut deframer = Deframer::new();
        b.iter(|| {
            let decoded = deframer.push(black_box(&wire)).next();
            black_box(decoded)
        })
    });
    group.bench_function("encode_and_deframe", |b| {
        let mut out = Vec::with_capacity(128);
        let mut deframer = Deframer::new();
        b.iter(|| {
            out.clear();
            encode_frame(black_box(&frame), &mut out);
            let decoded = deframer.push(&out).next();
            black_box(decoded)
        })
    });
    group.finish();
}

criterion_group!(benches, ash_codec);
criterion_main!(benches);
