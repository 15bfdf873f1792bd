//! Codec throughput in bytes per second: text and framed, encoding a chat line and decoding a
//! stream of messages. Framed encoding and decoding include the SHA-224 digest of every text.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use chatd::proto::framed::{ClientFrame, ServerFrameDecoder, MAX_FRAME_CAP};
use chatd::proto::msg::{ServerMsg, Stamp};
use chatd::proto::{self, text, Decoder, Limits, Mode};

/// Text lengths, in bytes: a typical line and a pasted paragraph.
const TEXT_LENGTHS: [usize; 2] = [64, 1024];
/// Messages per decoded stream.
const STREAM_MESSAGES: usize = 1000;

fn chat_msg(len: usize) -> ServerMsg {
    ServerMsg::Chat {
        at: Stamp::new(1_700_000_000, 12, 34, 56),
        from: "alice".into(),
        text: "x".repeat(len),
    }
}

fn encoded(mode: Mode, msg: &ServerMsg) -> Vec<u8> {
    let mut out = Vec::new();
    proto::encode(mode, msg, &mut out);
    out
}

/// Decodes every message in `stream` as a server does; returns how many there were.
fn decode_all(stream: &[u8]) -> usize {
    let mut decoder = Decoder::new(Limits::default());
    let mut rest = stream;
    let mut count = 0;
    loop {
        let step = decoder.decode(rest);
        rest = &rest[step.used..];
        let Some(item) = step.item else {
            return count;
        };
        black_box(item.is_ok());
        count += 1;
    }
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_chat");
    for len in TEXT_LENGTHS {
        let msg = chat_msg(len);
        for (name, mode) in [
            ("text", Mode::Text),
            ("framed", Mode::Framed),
            ("web", Mode::Web),
        ] {
            group.throughput(Throughput::Bytes(encoded(mode, &msg).len() as u64));
            let mut out = Vec::with_capacity(2 * len);
            group.bench_with_input(BenchmarkId::new(name, len), &msg, |b, msg| {
                b.iter(|| {
                    out.clear();
                    proto::encode(mode, black_box(msg), &mut out);
                    black_box(out.len())
                })
            });
        }
    }
    group.finish();
}

fn decode_client_streams(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_client_stream");
    for len in TEXT_LENGTHS {
        let line = "x".repeat(len);
        let text_stream = format!("{line}\n").repeat(STREAM_MESSAGES).into_bytes();
        let mut framed_stream = Vec::new();
        for id in 0..STREAM_MESSAGES as u32 {
            ClientFrame::say(id, &line).encode(&mut framed_stream);
        }
        for (name, stream) in [("text", &text_stream), ("framed", &framed_stream)] {
            assert_eq!(decode_all(stream), STREAM_MESSAGES);
            group.throughput(Throughput::Bytes(stream.len() as u64));
            group.bench_with_input(BenchmarkId::new(name, len), stream, |b, stream| {
                b.iter(|| decode_all(black_box(stream)))
            });
        }
    }
    group.finish();
}

fn decode_server_stream(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_server_stream");
    for len in TEXT_LENGTHS {
        let mut stream = Vec::new();
        text::encode(
            &ServerMsg::Greeting { online: 3 },
            text::CLIENT_EOL,
            &mut stream,
        );
        for _ in 0..STREAM_MESSAGES {
            proto::encode(Mode::Framed, &chat_msg(len), &mut stream);
        }
        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_with_input(BenchmarkId::new("framed", len), &stream, |b, stream| {
            b.iter(|| {
                let mut decoder = ServerFrameDecoder::new(MAX_FRAME_CAP);
                let mut rest = &stream[..];
                let mut count = 0;
                loop {
                    let step = decoder.decode(rest);
                    rest = &rest[step.used..];
                    let Some(item) = step.item else {
                        break count;
                    };
                    black_box(item.is_ok());
                    count += 1;
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encode, decode_client_streams, decode_server_stream);
criterion_main!(benches);
