//! `yunying ae`: the registry of remote DICOM application entities (the
//! modalities, PACS and workstations that talk to us) from the command line:
//! register or update one, list them, remove one.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use yunying_index::{ApplicationEntity, Index, NewApplicationEntity};

/// The `ae` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum AeCommand {
    /// Registers or updates a remote AE.
    Add {
        /// Its AE title (1-16 characters; padding spaces are dropped).
        ae_title: String,
        /// Code of the institution its objects are attributed to.
        #[arg(long, value_name = "CODE")]
        institution: String,
        /// Host name or address where it listens (needed as a C-MOVE destination).
        #[arg(long)]
        host: Option<String>,
        /// Port where it listens.
        #[arg(long)]
        port: Option<u16>,
        /// What it may do: any of store, query, retrieve (comma-separated; "" for nothing).
        #[arg(long, value_delimiter = ',', default_value = "store,query")]
        allow: Vec<String>,
        /// Free text, e.g. the room or the vendor.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Lists registered AEs.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Removes a remote AE.
    Remove {
        /// Its AE title.
        ae_title: String,
    },
}

/// Runs one `ae` subcommand against the catalog, writing its report to `out`.
pub async fn run(index: Arc<dyn Index>, cmd: AeCommand, out: &mut dyn Write) -> Result<(), String> {
    match cmd {
        AeCommand::Add { ae_title, institution, host, port, allow, description } => {
            let policy = Policy::parse(&allow)?;
            let inst = index
                .institution_by_code(&institution)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no institution with code {institution:?}"))?;
            let known = index.application_entity(&ae_title).await.map_err(|e| e.to_string())?.is_some();
            let ae = index
                .upsert_application_entity(&NewApplicationEntity {
                    ae_title,
                    institution_id: inst.id,
                    host,
                    port,
                    may_store: policy.store,
                    may_query: policy.query,
                    may_retrieve: policy.retrieve,
                    description,
                })
                .await
                .map_err(|e| e.to_string())?;
            let verb = if known { "updated" } else { "registered" };
            writeln!(out, "{verb} {} for {} ({})", ae.ae_title, inst.code, Policy::of(&ae)).map_err(write_err)
        }
        AeCommand::List { json } => {
            let entities = index.application_entities().await.map_err(|e| e.to_string())?;
            let codes: HashMap<i64, String> =
                index.institutions().await.map_err(|e| e.to_string())?.into_iter().map(|i| (i.id.0, i.code)).collect();
            let code_of = |ae: &ApplicationEntity| {
                codes.get(&ae.institution_id.0).cloned().unwrap_or_else(|| format!("#{}", ae.institution_id.0))
            };
            if json {
                for ae in &entities {
                    let line = serde_json::json!({
                        "ae_title": ae.ae_title,
                        "institution": code_of(ae),
                        "host": ae.host,
                        "port": ae.port,
                        "may_store": ae.may_store,
                        "may_query": ae.may_query,
                        "may_retrieve": ae.may_retrieve,
                        "description": ae.description,
                        "created_at": ae.created_at,
                        "updated_at": ae.updated_at,
                    });
                    writeln!(out, "{line}").map_err(write_err)?;
                }
                return Ok(());
            }
            if entities.is_empty() {
                return writeln!(out, "no remote AE is registered").map_err(write_err);
            }
            let rows: Vec<[String; 5]> = entities
                .iter()
                .map(|ae| {
                    [ae.ae_title.clone(), code_of(ae), address(ae), Policy::of(ae).to_string(), ae.description.clone()]
                })
                .collect();
            write_table(out, ["AE TITLE", "INSTITUTION", "ADDRESS", "POLICY", "DESCRIPTION"], &rows).map_err(write_err)
        }
        AeCommand::Remove { ae_title } => {
            if index.remove_application_entity(&ae_title).await.map_err(|e| e.to_string())? {
                writeln!(out, "removed {}", ae_title.trim_matches(' ')).map_err(write_err)
            } else {
                Err(format!("no remote AE with title {ae_title:?} is registered"))
            }
        }
    }
}

fn write_err(e: std::io::Error) -> String {
    format!("cannot write the output: {e}")
}

/// What a remote AE may do, as the `--allow` words name it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Policy {
    store: bool,
    query: bool,
    retrieve: bool,
}

impl Policy {
    /// Parses `--allow` words (case-insensitive; empty words are ignored, so
    /// `--allow ""` allows nothing).
    fn parse(words: &[String]) -> Result<Policy, String> {
        let mut policy = Policy::default();
        for word in words.iter().map(|w| w.trim()).filter(|w| !w.is_empty()) {
            match word.to_ascii_lowercase().as_str() {
                "store" => policy.store = true,
                "query" => policy.query = true,
                "retrieve" => policy.retrieve = true,
                _ => return Err(format!("unknown --allow word {word:?}: expected store, query or retrieve")),
            }
        }
        Ok(policy)
    }

    fn of(ae: &ApplicationEntity) -> Policy {
        Policy { store: ae.may_store, query: ae.may_query, retrieve: ae.may_retrieve }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words: Vec<&str> = [(self.store, "store"), (self.query, "query"), (self.retrieve, "retrieve")]
            .into_iter()
            .filter_map(|(allowed, word)| allowed.then_some(word))
            .collect();
        if words.is_empty() { f.write_str("-") } else { f.write_str(&words.join(",")) }
    }
}

/// `host:port`, whichever part is known, or `-`.
fn address(ae: &ApplicationEntity) -> String {
    match (&ae.host, ae.port) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.clone(),
        (None, Some(port)) => format!(":{port}"),
        (None, None) => "-".into(),
    }
}

/// Writes rows under a header, columns padded to their widest cell (the last
/// column is not padded).
fn write_table<const N: usize>(out: &mut dyn Write, header: [&str; N], rows: &[[String; N]]) -> std::io::Result<()> {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: [&str; N]| -> std::io::Result<()> {
        let mut text = String::new();
        for (k, cell) in cells.iter().enumerate() {
            if k + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', widths[k] - cell.chars().count() + 2));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(header)?;
    for row in rows {
        line(std::array::from_fn(|k| row[k].as_str()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use yunying_index::NewInstitution;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        ae: AeCommand,
    }

    fn parse(args: &[&str]) -> AeCommand {
        Cli::try_parse_from(std::iter::once("ae").chain(args.iter().copied())).expect("valid arguments").ae
    }

    async fn catalog(dir: &tempfile::TempDir) -> Arc<dyn Index> {
        let index = yunying_index_sqlite::open(&dir.path().join("catalog.db")).await.expect("open catalog");
        index
            .upsert_institution(&NewInstitution {
                code: "SZRMYY".into(),
                name_zh: "嵊州市人民医院".into(),
                name_en: "Shengzhou People's Hospital".into(),
                patient_id_issuer: None,
                ae_titles: vec![],
            })
            .await
            .expect("institution");
        Arc::new(index)
    }

    async fn run_to_string(index: &Arc<dyn Index>, args: &[&str]) -> Result<String, String> {
        let mut out = Vec::new();
        run(index.clone(), parse(args), &mut out).await?;
        Ok(String::from_utf8(out).expect("UTF-8 output"))
    }

    #[tokio::test]
    async fn add_list_and_remove() {
        let dir = tempfile::tempdir().unwrap();
        let index = catalog(&dir).await;
        assert_eq!(run_to_string(&index, &["list"]).await.unwrap(), "no remote AE is registered\n");

        let out = run_to_string(
            &index,
            &["add", "SZ_PACS", "--institution", "SZRMYY", "--host", "10.0.0.7", "--port", "104"],
        )
        .await
        .unwrap();
        assert_eq!(out, "registered SZ_PACS for SZRMYY (store,query)\n");
        let out = run_to_string(
            &index,
            &["add", "CT1", "--institution", "SZRMYY", "--allow", "store,retrieve", "--description", "一号CT"],
        )
        .await
        .unwrap();
        assert_eq!(out, "registered CT1 for SZRMYY (store,retrieve)\n");
        let out = run_to_string(&index, &["add", "CT1", "--institution", "SZRMYY", "--allow", "Store"]).await.unwrap();
        assert_eq!(out, "updated CT1 for SZRMYY (store)\n");
        run_to_string(&index, &["add", "WS", "--institution", "SZRMYY", "--allow", ""]).await.unwrap();

        let table = run_to_string(&index, &["list"]).await.unwrap();
        assert_eq!(
            table,
            "AE TITLE  INSTITUTION  ADDRESS       POLICY       DESCRIPTION\n\
             CT1       SZRMYY       -             store\n\
             SZ_PACS   SZRMYY       10.0.0.7:104  store,query\n\
             WS        SZRMYY       -             -\n"
        );

        let json = run_to_string(&index, &["list", "--json"]).await.unwrap();
        let lines: Vec<serde_json::Value> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["ae_title"], "SZ_PACS");
        assert_eq!(lines[1]["institution"], "SZRMYY");
        assert_eq!(lines[1]["host"], "10.0.0.7");
        assert_eq!(lines[1]["port"], 104);
        assert_eq!(lines[1]["may_query"], true);
        assert_eq!(lines[1]["may_retrieve"], false);
        assert_eq!(lines[0]["port"], serde_json::Value::Null);

        assert_eq!(run_to_string(&index, &["remove", "CT1"]).await.unwrap(), "removed CT1\n");
        let err = run_to_string(&index, &["remove", "CT1"]).await.unwrap_err();
        assert!(err.contains("CT1"), "{err}");
        assert_eq!(index.application_entities().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn refusals_name_the_culprit() {
        let dir = tempfile::tempdir().unwrap();
        let index = catalog(&dir).await;
        let err = run_to_string(&index, &["add", "CT1", "--institution", "NOPE"]).await.unwrap_err();
        assert!(err.contains("\"NOPE\""), "{err}");
        let err = run_to_string(&index, &["add", "CT1", "--institution", "SZRMYY", "--allow", "store,move"])
            .await
            .unwrap_err();
        assert!(err.contains("\"move\""), "{err}");
        let err = run_to_string(&index, &["add", "A_TITLE_OF_17_CHR", "--institution", "SZRMYY"]).await.unwrap_err();
        assert!(err.contains("A_TITLE_OF_17_CHR"), "{err}");
        let err = run_to_string(&index, &["add", "CT1", "--institution", "SZRMYY", "--port", "0"]).await.unwrap_err();
        assert!(err.contains("port"), "{err}");
        assert!(index.application_entities().await.unwrap().is_empty(), "nothing registered");
    }

    #[test]
    fn allow_defaults_to_store_and_query() {
        match parse(&["add", "CT1", "--institution", "X"]) {
            AeCommand::Add { allow, description, host, port, .. } => {
                assert_eq!(allow, vec!["store", "query"]);
                assert_eq!(description, "");
                assert_eq!((host, port), (None, None));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(Policy::parse(&["query".into(), " RETRIEVE ".into()]).unwrap().to_string(), "query,retrieve");
    }
}
