//! Median time to encode one frame losslessly with each JPEG 2000 encoder
//! (HTJ2K through openjph-core, JPEG 2000 through OpenJPEG), on one core,
//! and the sizes against the native frame.
//!
//! `cargo run --release -p yunying-pixels --example encode_bench [file.dcm]
//! [runs]` (default: pydicom-data's 512×512 CT `693_UNCR.dcm`, 14 bits
//! stored, and the same frame described as 12 bits when its values fit;
//! 20 runs). `YUNYING_TESTDATA` points at the test data as for the tests.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use yunying_dicom::frames::locate;
use yunying_dicom::{ParseOptions, parse_part10};
use yunying_pixels::{
    HtOptions, ImageInfo, NativeFrame, Samples, decode_frame, encode_htj2k, encode_j2k_lossless,
    native_bytes, resolution_ends,
};

fn median(mut t: Vec<Duration>) -> f64 {
    t.sort();
    t[t.len() / 2].as_secs_f64() * 1e3
}

fn bench(label: &str, runs: usize, mut f: impl FnMut() -> Vec<u8>) -> (f64, Vec<u8>) {
    let mut out = f(); // warm-up
    let times = (0..runs)
        .map(|_| {
            let t = Instant::now();
            out = f();
            t.elapsed()
        })
        .collect();
    let ms = median(times);
    println!("  {label:<34} median {ms:7.2} ms, {:>8} bytes", out.len());
    (ms, out)
}

fn run(frame: &NativeFrame, runs: usize) {
    let native = frame.expected_len();
    println!(
        "{}x{}, {} bits stored{}, native {native} bytes, {runs} runs",
        frame.columns,
        frame.rows,
        frame.bits_stored,
        if frame.signed { " signed" } else { "" }
    );
    for (w, h) in [(64u16, 64u16), (32, 32), (4, 1024), (1024, 4)] {
        let opts = HtOptions {
            code_block: (w, h),
            ..Default::default()
        };
        let (_, cs) = bench(&format!("HTJ2K RPCL+TLM, blocks {w}x{h}"), runs, || {
            encode_htj2k(frame, &opts).unwrap()
        });
        if (w, h) == (64, 64) {
            let ends = resolution_ends(&cs).unwrap();
            let first: Vec<String> = ends
                .iter()
                .map(|e| {
                    format!(
                        "{}x{}: {} ({:.1} %)",
                        e.columns,
                        e.rows,
                        e.bytes,
                        100.0 * e.bytes as f64 / cs.len() as f64
                    )
                })
                .collect();
            println!(
                "    ratio {:.2}:1; resolutions end at {}",
                native as f64 / cs.len() as f64,
                first.join(", ")
            );
        }
    }
    let (_, cs) = bench("JPEG 2000 (OpenJPEG), 64x64", runs, || {
        encode_j2k_lossless(frame).unwrap()
    });
    println!("    ratio {:.2}:1", native as f64 / cs.len() as f64);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().map(PathBuf::from).unwrap_or_else(|| {
        std::env::var("YUNYING_TESTDATA")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(std::env::var("HOME").unwrap_or_default())
                    .join(".cache/yunying/testdata")
            })
            .join("pydicom-data/693_UNCR.dcm")
    });
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(20);
    let bytes = std::fs::read(&path).expect("read the file");
    let obj = parse_part10(
        &mut std::io::Cursor::new(&bytes),
        bytes.len() as u64,
        &ParseOptions::default(),
    )
    .unwrap();
    let index = locate(&obj, |o| {
        bytes.get(o as usize..o as usize + 2).map(|b| [b[0], b[1]])
    });
    let stored: Vec<u8> = index
        .frame(1)
        .unwrap()
        .iter()
        .flat_map(|&(o, l)| bytes[o as usize..(o + l) as usize].to_vec())
        .collect();
    let info = ImageInfo::from_dataset(&obj.dataset, obj.encoding.big_endian).unwrap();
    let decoded = decode_frame(&info, obj.transfer_syntax(), &stored).unwrap();
    let data = native_bytes(&info, &decoded).unwrap();
    let frame = NativeFrame::new(&info, &decoded, &data).unwrap();
    println!("{}", path.display());
    run(&frame, runs);
    // The same samples described with 12 bits stored, when they fit.
    if let Samples::Gray(v) = &decoded.data
        && frame.bits_stored > 12
    {
        let (lo, hi) = (*v.iter().min().unwrap(), *v.iter().max().unwrap());
        let fits = if frame.signed {
            lo >= -2048 && hi < 2048
        } else {
            hi < 4096
        };
        if fits {
            println!("as 12 bits stored:");
            run(
                &NativeFrame {
                    bits_stored: 12,
                    ..frame
                },
                runs,
            );
        }
    }
}
