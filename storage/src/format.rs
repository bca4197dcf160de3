//! What the storage layer knows of DuckDB's file format.
//!
//! A DuckDB database file starts with a main header and two database headers,
//! 4 KiB each. The database header with the higher iteration is the current
//! one; it gives the block size and the number of blocks. Fixed-size blocks
//! follow the headers. Every header and block begins with an 8-byte checksum
//! of the rest of it, so comparing checksums finds the blocks a checkpoint
//! wrote without reading the blocks themselves.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// The bytes before the first block: the main header and two database headers.
pub(crate) const HEADER_SIZE: u64 = 3 * HEADER_BLOCK;
const HEADER_BLOCK: u64 = 4096;
const CHECKSUM_SIZE: usize = 8;
const MAGIC: &[u8; 4] = b"DUCK";
/// The largest database file a header may describe (1 PiB): more is a
/// damaged header, not a database.
const MAX_FILE_LEN: u64 = 1 << 50;

/// The shape of a DuckDB file as its current database header describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// DuckDB's storage version, from the main header.
    pub(crate) storage_version: u64,
    /// The checkpoint counter of the current database header.
    pub(crate) iteration: u64,
    /// The size of every block, checksum included.
    pub(crate) block_size: u64,
    /// How many blocks the file holds (used and free).
    pub(crate) block_count: u64,
}

impl Layout {
    /// The length of a file with this layout.
    pub(crate) fn file_len(&self) -> u64 {
        HEADER_SIZE + self.block_size * self.block_count
    }

    /// Where block `index` starts in the file.
    pub(crate) fn block_offset(&self, index: u64) -> u64 {
        HEADER_SIZE + self.block_size * index
    }
}

/// Parses the main and database headers (the first [`HEADER_SIZE`] bytes).
pub(crate) fn parse_headers(header: &[u8]) -> std::result::Result<Layout, String> {
    if header.len() < HEADER_SIZE as usize {
        return Err(format!("{} bytes is shorter than DuckDB's headers", header.len()));
    }
    let main = &header[..HEADER_BLOCK as usize];
    if &main[8..12] != MAGIC {
        return Err("no DUCK magic bytes in the main header".into());
    }
    if !checksum_matches(main) {
        return Err("the main header fails its checksum".into());
    }
    let storage_version = u64_at(main, 12);
    let mut current: Option<Layout> = None;
    for index in 1..3 {
        let start = (index * HEADER_BLOCK) as usize;
        let block = &header[start..start + HEADER_BLOCK as usize];
        if !checksum_matches(block) {
            continue;
        }
        let layout = Layout {
            storage_version,
            iteration: u64_at(block, 8),
            block_count: u64_at(block, 32),
            block_size: u64_at(block, 40),
        };
        if current.is_none_or(|c| layout.iteration > c.iteration) {
            current = Some(layout);
        }
    }
    let layout = current.ok_or("neither database header passes its checksum")?;
    if !(4096..=(1 << 30)).contains(&layout.block_size) || layout.block_size % 4096 != 0 {
        return Err(format!("unsupported block size {}", layout.block_size));
    }
    let file_len = layout
        .block_count
        .checked_mul(layout.block_size)
        .and_then(|blocks| blocks.checked_add(HEADER_SIZE));
    if file_len.is_none_or(|len| len > MAX_FILE_LEN) {
        return Err(format!(
            "{} blocks of {} bytes: more than a database file holds",
            layout.block_count, layout.block_size
        ));
    }
    Ok(layout)
}

/// The checksum DuckDB stores in a block's first 8 bytes.
pub(crate) fn stored_checksum(block: &[u8]) -> u64 {
    u64_at(block, 0)
}

/// Whether a block (or header) holds the checksum of its own content, that
/// is, was written whole.
pub(crate) fn checksum_matches(block: &[u8]) -> bool {
    block.len() > CHECKSUM_SIZE && stored_checksum(block) == checksum(&block[CHECKSUM_SIZE..])
}

/// DuckDB's block checksum: the XOR of each 8-byte word times a constant.
/// Block contents are always a whole number of words.
fn checksum(content: &[u8]) -> u64 {
    const SEED: u64 = 5381;
    const MULTIPLIER: u64 = 0xbf58_476d_1ce4_e5b9;
    content.chunks_exact(8).fold(SEED, |acc, word| {
        acc ^ u64::from_le_bytes(word.try_into().expect("8 bytes")).wrapping_mul(MULTIPLIER)
    })
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"))
}

/// Reads the stored checksum of every block of a file with `layout`, eight
/// bytes per block.
pub(crate) fn read_checksums(file: &File, layout: &Layout) -> std::io::Result<Vec<u64>> {
    let mut sums = Vec::with_capacity(layout.block_count as usize);
    let mut word = [0u8; 8];
    for index in 0..layout.block_count {
        match file.read_exact_at(&mut word, layout.block_offset(index)) {
            Ok(()) => sums.push(u64::from_le_bytes(word)),
            // A file cut short holds no such block; no checksum matches it.
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => sums.push(0),
            Err(error) => return Err(error),
        }
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_checksum(mut block: Vec<u8>) -> Vec<u8> {
        let sum = checksum(&block[8..]);
        block[..8].copy_from_slice(&sum.to_le_bytes());
        block
    }

    fn headers(iterations: [u64; 2], block_size: u64) -> Vec<u8> {
        let mut main = vec![0u8; 4096];
        main[8..12].copy_from_slice(MAGIC);
        main[12..20].copy_from_slice(&64u64.to_le_bytes());
        let mut out = with_checksum(main);
        for (i, iteration) in iterations.into_iter().enumerate() {
            let mut db = vec![0u8; 4096];
            db[8..16].copy_from_slice(&iteration.to_le_bytes());
            db[32..40].copy_from_slice(&(10 + i as u64).to_le_bytes());
            db[40..48].copy_from_slice(&block_size.to_le_bytes());
            out.extend(with_checksum(db));
        }
        out
    }

    #[test]
    fn the_newer_database_header_wins() {
        let layout = parse_headers(&headers([3, 4], 262_144)).unwrap();
        assert_eq!(
            (layout.iteration, layout.block_count, layout.storage_version),
            (4, 11, 64)
        );
        let layout = parse_headers(&headers([7, 4], 262_144)).unwrap();
        assert_eq!((layout.iteration, layout.block_count), (7, 10));
        assert_eq!(layout.file_len(), HEADER_SIZE + 10 * 262_144);
    }

    #[test]
    fn a_torn_header_is_skipped_and_garbage_refused() {
        let mut bytes = headers([3, 4], 262_144);
        bytes[8192 + 100] ^= 1; // the newer header is torn
        assert_eq!(parse_headers(&bytes).unwrap().iteration, 3);
        bytes[4096 + 100] ^= 1;
        assert!(parse_headers(&bytes).unwrap_err().contains("neither"));
        assert!(parse_headers(&[0u8; 12288]).unwrap_err().contains("magic"));
        assert!(parse_headers(&[0u8; 100]).is_err());
        assert!(parse_headers(&headers([1, 0], 1000))
            .unwrap_err()
            .contains("block size"));
    }

    /// The headers with database header `index` (1 or 2) claiming `blocks`.
    fn claiming(index: usize, blocks: u64) -> Vec<u8> {
        let mut bytes = headers([3, 4], 262_144);
        let start = index * 4096;
        bytes[start + 32..start + 40].copy_from_slice(&blocks.to_le_bytes());
        let block = with_checksum(bytes[start..start + 4096].to_vec());
        bytes[start..start + 4096].copy_from_slice(&block);
        bytes
    }

    #[test]
    fn a_header_claiming_more_blocks_than_a_file_holds_is_refused() {
        assert_eq!(parse_headers(&claiming(2, 1 << 20)).unwrap().block_count, 1 << 20);
        for blocks in [u64::MAX, 1 << 40] {
            let refused = parse_headers(&claiming(2, blocks)).unwrap_err();
            assert!(refused.contains("more than a database file holds"), "{refused}");
        }
    }

    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

            /// Damaged headers whose checksums still pass (DuckDB's checksum
            /// is no MAC): never a panic, and a layout only when the file it
            /// describes is one a disk could hold.
            #[test]
            fn damaged_headers_never_panic_and_describe_sane_files(
                changes in prop::collection::vec((0..HEADER_SIZE as usize, any::<u8>()), 1..16),
                fix_checksums in any::<bool>(),
            ) {
                let mut bytes = headers([3, 4], 262_144);
                for (at, value) in changes {
                    bytes[at] = value;
                }
                if fix_checksums {
                    for start in [0, 4096, 8192] {
                        let block = with_checksum(bytes[start..start + 4096].to_vec());
                        bytes[start..start + 4096].copy_from_slice(&block);
                    }
                }
                if let Ok(layout) = parse_headers(&bytes) {
                    prop_assert!(layout.file_len() <= MAX_FILE_LEN);
                    prop_assert!(layout.block_size % 4096 == 0);
                }
            }
        }
    }
}
