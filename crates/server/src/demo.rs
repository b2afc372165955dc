//! Demo mode (`yunying serve --demo`): the region's 16 member institutions
//! (each with a CT modality AE, `<CODE>_CT`), the default AE titles of the
//! DCMTK tools registered for trying DIMSE at once, and, on first start,
//! synthetic studies spread over them, ingested through the same road as
//! real data.

use std::sync::Arc;
use std::time::Instant;

use yunying_archive::{Archive, IngestSource};
use yunying_index::{NewApplicationEntity, NewInstitution};

use crate::app::anyhow_like::Result;

/// Creates (or updates) the region's member institutions.
pub async fn seed_institutions(archive: &Archive) -> Result<usize> {
    let members = yunying_synth::region_institutions();
    for m in &members {
        archive
            .index()
            .upsert_institution(&NewInstitution {
                code: m.code.clone(),
                name_zh: m.name_zh.clone(),
                name_en: m.name_en.clone(),
                patient_id_issuer: None,
                ae_titles: vec![format!("{}_CT", m.code)],
            })
            .await?;
    }
    // DCMTK's default calling AE titles, attributed to the first member
    // institution, so that `storescu`/`findscu`/`movescu`/`getscu` work out of the box.
    if let Some(centre) = archive.index().institution_by_code(&members[0].code).await? {
        // The consultation centre: its radiologists read the whole region.
        archive.index().set_institution_regional(centre.id, true).await?;
        for title in ["ECHOSCU", "STORESCU", "FINDSCU", "MOVESCU", "GETSCU"] {
            if archive.index().application_entity(title).await?.is_none() {
                archive
                    .index()
                    .upsert_application_entity(&NewApplicationEntity {
                        ae_title: title.into(),
                        institution_id: centre.id,
                        host: None,
                        port: None,
                        may_store: true,
                        may_query: true,
                        may_retrieve: true,
                        description: "demo: DCMTK default title".into(),
                    })
                    .await?;
            }
        }
    }
    Ok(members.len())
}

/// Seeds institutions and, when the catalog holds no study yet, loads
/// `studies` synthetic studies.
pub async fn load(archive: Arc<Archive>, data: &std::path::Path, studies: usize, slices: usize) -> Result<()> {
    let n = seed_institutions(&archive).await?;
    crate::accounts::demo_accounts(&archive, data).await?;
    tracing::info!(institutions = n, "demo: region institutions present");
    if archive.index().counts().await?.studies > 0 {
        tracing::info!("demo: the catalog already holds studies; no demo data loaded");
        return Ok(());
    }
    let opts = yunying_synth::SynthOptions {
        studies,
        ct_slices: slices,
        institutions: yunying_synth::region_institutions(),
        ..Default::default()
    };
    let plans = yunying_synth::plan(&opts);
    let total: usize = plans.iter().map(|p| p.instance_count()).sum();
    println!("yunying: loading demo data: {} studies, {total} instances", plans.len());
    let started = Instant::now();
    let institutions = archive.index().institutions().await?;
    let mut done = 0usize;
    for plan in &plans {
        let mut source = IngestSource::new("demo", "synth");
        source.institution = institutions.iter().find(|i| i.code == plan.institution_code).map(|i| i.id);
        // A few objects in flight at a time keeps memory small and the disk busy.
        let mut pending = tokio::task::JoinSet::new();
        for (_, bytes) in plan.instances() {
            let a = archive.clone();
            let s = source.clone();
            pending.spawn(async move { a.ingest_bytes(&bytes, &s).await });
            while pending.len() >= 4 {
                if let Some(r) = pending.join_next().await {
                    r.map_err(|e| crate::app::anyhow_like::Error(e.to_string()))??;
                    done += 1;
                }
            }
        }
        while let Some(r) = pending.join_next().await {
            r.map_err(|e| crate::app::anyhow_like::Error(e.to_string()))??;
            done += 1;
        }
    }
    println!("yunying: demo data loaded: {done} instances in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
