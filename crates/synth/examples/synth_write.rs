//! Writes synthetic studies to a directory:
//! `cargo run -p yunying-synth --release --example synth_write -- <dir> [studies] [ct_slices] [seed]`.

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "synth-out".into()));
    let studies = args.next().and_then(|s| s.parse().ok()).unwrap_or(16);
    let ct_slices = args.next().and_then(|s| s.parse().ok()).unwrap_or(40);
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let opts = yunying_synth::SynthOptions { seed, studies, ct_slices, ..Default::default() };
    let start = std::time::Instant::now();
    let plans = yunying_synth::plan(&opts);
    let n = yunying_synth::write_to_dir(&plans, &dir)?;
    for p in &plans {
        println!(
            "{} {} {} {} {} {:?} {}",
            p.institution_code,
            p.patient_id,
            p.patient_name,
            p.study_date,
            p.study_description,
            p.modality_summary,
            p.instance_count()
        );
    }
    println!("{n} files in {:.2} s under {}", start.elapsed().as_secs_f64(), dir.display());
    Ok(())
}
