//! The contract every [`BlobStore`] passes.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;

use crate::{BlobError, BlobStore, Sha256Digest};

/// Runs every case against `store`; `scratch` is a local directory for staged files.
pub async fn run_all(store: Arc<dyn BlobStore>, scratch: &Path) {
    let staged = scratch.join("staged.bin");
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&staged, &content).unwrap();

    // put_file, head, get, get_range
    let key = "dicom/v1/ab/cd/1.2.3/1.2.3.4/1.2.3.4.5.0123456789abcdef.dcm";
    store.put_file(key, &staged).await.unwrap();
    assert_eq!(store.head(key).await.unwrap(), Some(content.len() as u64));
    let got: Vec<Bytes> = store.get(key).await.unwrap().try_collect().await.unwrap();
    assert_eq!(got.concat(), content, "whole blob round-trips");
    let r = store.get_range(key, 128, 4).await.unwrap();
    assert_eq!(&r[..], &content[128..132]);
    let tail = store.get_range(key, content.len() as u64 - 10, 10).await.unwrap();
    assert_eq!(&tail[..], &content[content.len() - 10..]);
    assert!(matches!(
        store.get_range(key, content.len() as u64 - 5, 10).await,
        Err(BlobError::RangeOutside { .. })
    ));
    assert_eq!(&store.get_range(key, content.len() as u64, 0).await.unwrap()[..], b"", "an empty range at the end");
    // The same key again is a no-op; other content under the same key is refused.
    store.put_file(key, &staged).await.unwrap();
    let other = scratch.join("other.bin");
    std::fs::write(&other, b"not the same size").unwrap();
    assert!(store.put_file(key, &other).await.is_err(), "a different blob under an existing key");
    assert_eq!(store.head(key).await.unwrap(), Some(content.len() as u64));

    // checksums: a recorded one (if the store keeps any) is the content's;
    // verify compares the content with it and with the expected one.
    let sha = Sha256Digest::of(&content);
    assert_eq!(store.content_sha256(key).await.unwrap(), sha);
    if let Some(recorded) = store.recorded_sha256(key).await.unwrap() {
        assert_eq!(recorded, sha, "the recorded SHA-256 is the content's");
    }
    assert_eq!(store.verify(key, Some(&sha)).await.unwrap(), sha);
    assert_eq!(store.verify(key, None).await.unwrap(), sha);
    let wrong = Sha256Digest([7; 32]);
    match store.verify(key, Some(&wrong)).await {
        Err(BlobError::ChecksumMismatch { expected, actual, .. }) => assert_eq!((expected, actual), (wrong, sha)),
        other => panic!("verify against a wrong checksum: {other:?}"),
    }
    assert!(matches!(store.recorded_sha256("dicom/none").await, Err(BlobError::NotFound(_))));
    assert!(matches!(store.verify("dicom/none", None).await, Err(BlobError::NotFound(_))));

    // put_bytes and list
    store.put_bytes("derived/v1/x/thumb.jpg", Bytes::from_static(b"jpeg")).await.unwrap();
    if let Some(recorded) = store.recorded_sha256("derived/v1/x/thumb.jpg").await.unwrap() {
        assert_eq!(recorded, Sha256Digest::of(b"jpeg"));
    }
    let mut all = store.list("").await.unwrap();
    all.sort();
    assert_eq!(all, vec!["derived/v1/x/thumb.jpg".to_string(), key.to_string()]);
    assert_eq!(store.list("dicom/").await.unwrap(), vec![key.to_string()]);
    assert_eq!(store.list("dicom/v1/ab/cd/1.2.3/").await.unwrap(), vec![key.to_string()]);
    assert_eq!(store.list("dicom/v1/ab/c").await.unwrap(), vec![key.to_string()], "a prefix ending inside a segment");
    assert_eq!(
        store.list("dicom/v1/ab/cd/1.2.3/1.2.3.4/1.2.3.4.5.0123456789abcdef.dcm").await.unwrap(),
        vec![key.to_string()]
    );
    assert!(store.list("derived/v2/").await.unwrap().is_empty());

    // absent blobs and bad keys
    assert_eq!(store.head("dicom/none").await.unwrap(), None);
    assert!(matches!(store.get("dicom/none").await.err(), Some(BlobError::NotFound(_))));
    assert!(matches!(store.get_range("dicom/none", 0, 1).await, Err(BlobError::NotFound(_))));
    assert!(matches!(store.put_bytes("../escape", Bytes::new()).await, Err(BlobError::InvalidKey(_))));

    // delete
    store.delete(key).await.unwrap();
    store.delete(key).await.unwrap();
    assert_eq!(store.head(key).await.unwrap(), None);
}
