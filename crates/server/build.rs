//! Embeds the built web app (`web/dist`, made by `scripts/build-web.sh`) in
//! the binary, with a gzip copy of every compressible file made here once,
//! so that serving costs no compression. Without a built web app the binary
//! is still complete: it then serves a page saying how to build the app
//! (the Rust build never needs Node).
//!
//! Cargo re-runs this script when anything under `web/dist` changes; while
//! there is no `web/dist` it watches `web/index.html`, which
//! `scripts/build-web.sh` touches after a build.

use std::io::Write;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let web = manifest.join("../../web");
    let dist = match std::env::var_os("YUNYING_WEB_DIST") {
        Some(d) => PathBuf::from(d),
        None => web.join("dist"),
    };
    println!("cargo:rerun-if-env-changed=YUNYING_WEB_DIST");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let gz_dir = out.join("web-gz");
    let _ = std::fs::remove_dir_all(&gz_dir);
    std::fs::create_dir_all(&gz_dir).unwrap();
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        println!("cargo:rerun-if-changed={}", dist.display());
        collect(&dist, &dist, &mut files);
        files.sort();
    } else if web.join("index.html").is_file() {
        println!("cargo:rerun-if-changed={}", web.join("index.html").display());
    }
    let mut src = String::from("pub static EMBEDDED: &[EmbeddedAsset] = &[\n");
    for (n, rel) in files.iter().enumerate() {
        let path = dist.join(rel);
        let bytes = std::fs::read(&path).unwrap();
        let etag = format!("\"{:016x}-{:x}\"", fnv1a(&bytes), bytes.len());
        let gzip = if compressible(rel) {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(&bytes).unwrap();
            let z = e.finish().unwrap();
            if z.len() * 10 < bytes.len() * 9 {
                let gz = gz_dir.join(format!("{n}.gz"));
                std::fs::write(&gz, z).unwrap();
                format!("Some(include_bytes!({:?}))", gz.display().to_string())
            } else {
                "None".into()
            }
        } else {
            "None".into()
        };
        src.push_str(&format!(
            "    EmbeddedAsset {{ path: {:?}, bytes: include_bytes!({:?}), gzip: {gzip}, etag: {:?} }},\n",
            rel,
            path.canonicalize().unwrap().display().to_string(),
            etag
        ));
    }
    src.push_str("];\n");
    std::fs::write(out.join("web_assets.rs"), src).unwrap();
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            collect(root, &p, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn compressible(rel: &str) -> bool {
    [".js", ".mjs", ".css", ".html", ".json", ".svg", ".wasm", ".map", ".txt", ".webmanifest"].iter().any(|e| rel.ends_with(e))
}

fn fnv1a(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}
