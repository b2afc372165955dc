//! The study list's QIDO-RS extensions on the real binary: `orderby`,
//! `institution` and the `X-Total-Count` of a paged search, over the demo
//! region's studies.

use yunying_test_support::TestServer;

const BIN: &str = env!("CARGO_BIN_EXE_yunying");

fn text(study: &serde_json::Value, tag: &str) -> String {
    let v = &study[tag]["Value"][0];
    match v {
        serde_json::Value::Object(pn) => pn["Alphabetic"].as_str().unwrap_or("").to_string(),
        other => other.as_str().unwrap_or("").to_string(),
    }
}

async fn search(server: &TestServer, query: &str) -> (Vec<serde_json::Value>, Option<u64>) {
    let r = server
        .client()
        .get(format!("{}/studies?{query}", server.dicomweb()))
        .header("accept", "application/dicom+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{query}");
    let total = r.headers().get("x-total-count").map(|v| v.to_str().unwrap().parse().unwrap());
    (r.json().await.unwrap(), total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_institutions_and_totals() {
    let mut server =
        TestServer::start(std::path::Path::new(BIN), &["--dicom", "off", "--demo", "--demo-studies", "6", "--demo-slices", "4"], &[])
            .await;
    let (all, total) = search(&server, "").await;
    assert_eq!(all.len(), 6);
    assert_eq!(total, None, "no paging, no count");

    // Patient ID ascending, paged: the pages join into the sorted list, with the total.
    let mut want: Vec<String> = all.iter().map(|s| text(s, "00100020")).collect();
    want.sort();
    let mut got = Vec::new();
    for offset in [0, 4] {
        let (page, total) = search(&server, &format!("orderby=PatientID&limit=4&offset={offset}")).await;
        assert_eq!(total, Some(6), "offset {offset}");
        got.extend(page.iter().map(|s| text(s, "00100020")));
    }
    assert_eq!(got, want);

    // Descending dates are the default order; ascending is its reverse.
    let (desc, _) = search(&server, "orderby=-StudyDate").await;
    let uids = |v: &[serde_json::Value]| v.iter().map(|s| text(s, "0020000D")).collect::<Vec<_>>();
    assert_eq!(uids(&desc), uids(&all));
    let dates: Vec<String> = desc.iter().map(|s| text(s, "00080020")).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "{dates:?}");
    let (asc, _) = search(&server, "orderby=StudyDate").await;
    let asc_dates: Vec<String> = asc.iter().map(|s| text(s, "00080020")).collect();
    assert!(asc_dates.windows(2).all(|w| w[0] <= w[1]), "{asc_dates:?}");

    // Each study belongs to one member institution: the narrowings partition the list.
    let institutions: serde_json::Value =
        server.client().get(format!("{}/api/institutions", server.base)).send().await.unwrap().json().await.unwrap();
    let mut seen = 0;
    for inst in institutions["institutions"].as_array().unwrap() {
        let code = inst["code"].as_str().unwrap();
        let (some, total) = search(&server, &format!("institution={code}&limit=10")).await;
        assert_eq!(total, Some(some.len() as u64), "{code}");
        seen += some.len();
    }
    assert_eq!(seen, 6);
    let (none, total) = search(&server, "institution=NO-SUCH-PLACE&limit=10").await;
    assert!(none.is_empty());
    assert_eq!(total, Some(0));

    let r = server.client().get(format!("{}/studies?orderby=Height", server.dicomweb())).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("orderby"));
    server.stop();
}
