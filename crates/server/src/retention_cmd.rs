//! `yunying retention …`: the expiry report on the command line (CSV for a
//! spreadsheet, or a table), and recomputing every study's retention (once
//! after upgrading to a catalog with retention, or after bulk visit
//! imports). Runs as the operator on the server, audited on the node's
//! `-cli` chain like every administration command.

use std::io::Write;
use std::sync::Arc;

use yunying_archive::{Archive, Caller};
use yunying_index::lifecycle::StudyRetention;

/// `yunying retention …`
#[derive(clap::Subcommand, Debug)]
pub enum RetentionCommand {
    /// Lists the studies whose retention has ended and that are not under
    /// legal hold (deleting them is a request approved by a second person:
    /// `POST /api/retention/deletions`).
    Report {
        /// Expired before this day (YYYYMMDD: retained until an earlier day). Default: today.
        #[arg(long, value_name = "DATE")]
        before: Option<String>,
        /// `table` or `csv`.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Recomputes the retention of every study from its patient class and
    /// the patients' recorded visits.
    Recompute,
}

/// Runs a retention command, writing to `out`.
pub async fn run(archive: Arc<Archive>, command: RetentionCommand, out: &mut impl Write) -> Result<(), String> {
    let caller = Caller::cli("retention");
    match command {
        RetentionCommand::Report { before, format } => {
            if !matches!(format.as_str(), "table" | "csv") {
                return Err(format!("--format is table or csv, not {format:?}"));
            }
            let mut rows: Vec<StudyRetention> = Vec::new();
            loop {
                let page = archive
                    .expiry_report(&caller, before.as_deref(), 1000, rows.len() as u64)
                    .await
                    .map_err(|e| e.to_string())?;
                let n = page.studies.len();
                rows.extend(page.studies);
                if n < 1000 {
                    break;
                }
            }
            let w = |r: std::io::Result<()>| r.map_err(|e| e.to_string());
            if format == "csv" {
                w(writeln!(out, "study_uid,patient_id,issuer,institution,class,study_date,retain_until,size_bytes"))?;
                for s in &rows {
                    w(writeln!(
                        out,
                        "{},{},{},{},{},{},{},{}",
                        csv(&s.study_uid),
                        csv(&s.patient_id),
                        csv(&s.issuer),
                        csv(&s.institution_code),
                        s.patient_class.code(),
                        s.study_date,
                        s.retain_until.as_deref().unwrap_or(""),
                        s.size_bytes
                    ))?;
                }
            } else if rows.is_empty() {
                w(writeln!(out, "no study has expired"))?;
            } else {
                w(writeln!(
                    out,
                    "{:<44} {:<16} {:<10} {:<5} {:<10} {:<12} {:>12}",
                    "STUDY", "PATIENT", "INSTITUTION", "CLASS", "DATE", "RETAIN UNTIL", "BYTES"
                ))?;
                for s in &rows {
                    w(writeln!(
                        out,
                        "{:<44} {:<16} {:<10} {:<5} {:<10} {:<12} {:>12}",
                        s.study_uid,
                        s.patient_id,
                        s.institution_code,
                        s.patient_class.code(),
                        s.study_date,
                        s.retain_until.as_deref().unwrap_or(""),
                        s.size_bytes
                    ))?;
                }
                let bytes: i64 = rows.iter().map(|s| s.size_bytes).sum();
                w(writeln!(out, "{} expired studies, {bytes} bytes", rows.len()))?;
            }
        }
        RetentionCommand::Recompute => {
            archive.recompute_all_retention().await.map_err(|e| e.to_string())?;
            let mut e = archive.audit_event(&caller, yunying_audit::Action::ConfigChanged, yunying_audit::Outcome::Success);
            e.detail = serde_json::json!({ "command": "retention recompute" });
            archive.audit(e).await;
            writeln!(out, "retention recomputed for every study").map_err(|e| e.to_string())?;
        }
    }
    archive.audit_trail().flush().await;
    Ok(())
}

/// A CSV field, quoted when it needs to be (RFC 4180).
fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(super::csv("1.2.3"), "1.2.3");
        assert_eq!(super::csv("a,b"), "\"a,b\"");
        assert_eq!(super::csv("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
