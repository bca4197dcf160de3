//! Snapshots: the manifest that says where every block of one checkpoint of
//! a database lives.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The version of the manifest format written by this crate.
pub const FORMAT_VERSION: u32 = 1;

/// A snapshot's id: the first 20 hex digits of the SHA-256 of its manifest, so
/// that a manifest that does not hash to its name is known to be corrupt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SnapshotId(String);

impl SnapshotId {
    const LEN: usize = 20;

    /// Parses an id written by [`SnapshotId::as_str`]; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == Self::LEN && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| SnapshotId(text.to_string()))
    }

    fn of(body: &[u8]) -> Self {
        let mut hex = hex(&Sha256::digest(body));
        hex.truncate(Self::LEN);
        SnapshotId(hex)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SnapshotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a run of bytes lives: an offset in a layer object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extent {
    /// Index into [`Manifest::layers`].
    #[serde(rename = "l")]
    pub layer: u32,
    /// Byte offset in the layer.
    #[serde(rename = "o")]
    pub offset: u64,
    /// SHA-256 of the bytes, hex.
    #[serde(rename = "h")]
    pub sha256: String,
}

/// One block of the database file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    /// Where its bytes are.
    #[serde(flatten)]
    pub extent: Extent,
    /// The checksum DuckDB stored in its first 8 bytes, or 0 when the block
    /// was not whole when it was read (a free block being written); such a
    /// block is always read again by the next snapshot.
    #[serde(rename = "c")]
    pub checksum: u64,
}

/// A snapshot: one consistent state of a database file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`] of the writer.
    pub format: u32,
    /// The database this snapshot was taken of.
    pub database: String,
    /// The snapshot it was taken after, if any (for a clone, the source's).
    pub parent: Option<SnapshotId>,
    /// When it was taken, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// DuckDB's storage version of the file.
    pub storage_version: u64,
    /// DuckDB's checkpoint iteration of the file.
    pub iteration: u64,
    /// The size of each block.
    pub block_size: u64,
    /// The length of the file.
    pub file_len: u64,
    /// The layer objects this manifest points into (names under `layers/`).
    pub layers: Vec<String>,
    /// The main and database headers.
    pub header: Extent,
    /// Every block of the file, by index.
    pub blocks: Vec<BlockRef>,
}

impl Manifest {
    /// The bytes stored for this manifest and the id they hash to.
    pub fn encode(&self) -> (SnapshotId, Vec<u8>) {
        let body = serde_json::to_vec(self).expect("a manifest serializes");
        (SnapshotId::of(&body), body)
    }

    /// Parses stored bytes, checking that they hash to `id`.
    pub fn decode(id: &SnapshotId, body: &[u8]) -> Result<Self, String> {
        if SnapshotId::of(body) != *id {
            return Err("the manifest does not match its checksum".into());
        }
        let manifest: Manifest = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        if manifest.format > FORMAT_VERSION {
            return Err(format!(
                "manifest format {} is newer than this openduck reads ({FORMAT_VERSION})",
                manifest.format
            ));
        }
        let layers = manifest.layers.len() as u32;
        if manifest.header.layer >= layers || manifest.blocks.iter().any(|b| b.extent.layer >= layers) {
            return Err("the manifest points at a layer it does not list".into());
        }
        Ok(manifest)
    }

    /// The layer object a block or header lives in.
    pub fn layer_of(&self, extent: &Extent) -> &str {
        &self.layers[extent.layer as usize]
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `bytes`, hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let extent = |offset| Extent {
            layer: 0,
            offset,
            sha256: sha256_hex(&[offset as u8]),
        };
        Manifest {
            format: FORMAT_VERSION,
            database: "db".into(),
            parent: None,
            created_at_ms: 1,
            storage_version: 64,
            iteration: 2,
            block_size: 4096,
            file_len: 12288 + 4096,
            layers: vec!["l1".into()],
            header: extent(0),
            blocks: vec![BlockRef {
                extent: extent(12288),
                checksum: 7,
            }],
        }
    }

    #[test]
    fn manifests_round_trip_and_detect_corruption() {
        let (id, body) = manifest().encode();
        assert_eq!(Manifest::decode(&id, &body).unwrap(), manifest());
        assert_eq!(SnapshotId::parse(id.as_str()), Some(id.clone()));
        let mut corrupt = body.clone();
        let at = corrupt.iter().position(|&b| b == b'7').unwrap();
        corrupt[at] = b'8';
        assert!(Manifest::decode(&id, &corrupt).unwrap_err().contains("checksum"));
    }

    #[test]
    fn ids_are_strict() {
        for bad in [
            "",
            "abc",
            "../../etc/passwd000",
            "ABCDEF0123456789ABCD",
            "0123456789abcdef0123x",
        ] {
            assert_eq!(SnapshotId::parse(bad), None, "{bad}");
        }
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

            /// Stored bytes that hash to their id (storage anyone could
            /// write to): a manifest is refused, or every extent it has
            /// points at a layer it lists. Never a panic.
            #[test]
            fn a_mutated_manifest_is_refused_or_consistent(
                at in any::<usize>(),
                replacement in prop::collection::vec(any::<u8>(), 0..8),
                cut in any::<usize>(),
            ) {
                let (_, mut body) = manifest().encode();
                let at = at % body.len();
                let end = (at + 1 + cut % 8).min(body.len());
                body.splice(at..end, replacement);
                let id = SnapshotId::of(&body);
                if let Ok(manifest) = Manifest::decode(&id, &body) {
                    let _ = manifest.layer_of(&manifest.header);
                    for block in &manifest.blocks {
                        let _ = manifest.layer_of(&block.extent);
                    }
                }
            }

            #[test]
            fn random_bytes_are_no_manifest(body in prop::collection::vec(any::<u8>(), 0..512)) {
                prop_assert!(Manifest::decode(&SnapshotId::of(&body), &body).is_err());
            }

            #[test]
            fn only_twenty_lower_hex_digits_are_an_id(text in prop_oneof!["[0-9a-fA-F]{19,21}", "\\PC{0,24}"]) {
                let valid = text.len() == 20 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                prop_assert_eq!(SnapshotId::parse(&text).is_some(), valid);
            }
        }

        /// The consistency property can fail: a manifest naming a layer it
        /// does not list is refused.
        #[test]
        fn a_manifest_pointing_past_its_layers_is_refused() {
            let mut broken = manifest();
            broken.blocks[0].extent.layer = 1;
            let (id, body) = broken.encode();
            assert!(Manifest::decode(&id, &body).unwrap_err().contains("layer"));
        }
    }
}
