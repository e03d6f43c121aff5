//! Oracles for the fuzz targets in `fuzz/` (feature `fuzzing`; not part of
//! the API). Each decodes arbitrary bytes, which must never panic, and when
//! they decode, checks that encoding gives the same value back. The
//! assertions here are the fuzzers' findings, not error handling.

use crate::Distance;
use crate::bits::{PackedBits, signs};
use crate::codes::Codebook;
use crate::distance::{
    BinaryQuantizedCosine, BinaryQuantizedEuclidean, BinaryQuantizedManhattan, Cosine, DotProduct, Euclidean, Hamming,
    Manhattan,
};
use crate::item::{ItemEntry, decode_mark, encode_built, encode_mark};
use crate::key::Key;
use crate::layout::{NodeView, Partitions, RunChunk, SlotGeometry, SlotTable, TreeView, encode};
use crate::metadata::{Header, Metadata};
use crate::vector::{UnalignedF32, VectorCodec};

/// Keys: seven bytes round-trip exactly.
pub fn key(bytes: &[u8]) {
    if let Ok(key) = Key::from_bytes(bytes) {
        assert_eq!(key.to_bytes()[..], *bytes);
    }
}

/// Item entries and change marks, read as each distance's.
pub fn item(bytes: &[u8]) {
    item_as::<Euclidean>(bytes);
    item_as::<Cosine>(bytes);
    item_as::<DotProduct>(bytes);
    item_as::<Manhattan>(bytes);
    item_as::<BinaryQuantizedEuclidean>(bytes);
    item_as::<BinaryQuantizedCosine>(bytes);
    item_as::<Hamming>(bytes);
    if let Ok(slot) = decode_mark(bytes) {
        assert_eq!(encode_mark(slot), bytes);
    }
}

fn item_as<D: Distance>(bytes: &[u8]) {
    let again = match ItemEntry::<D>::decode(bytes) {
        Err(_) => return,
        Ok(ItemEntry::Built(slot)) => encode_built(slot).to_vec(),
        Ok(ItemEntry::Staged(leaf)) => {
            let mut again = vec![bytes[0]];
            leaf.encode_into(&mut again);
            again
        }
    };
    assert_eq!(again, bytes);
}

/// Tree chunks: every node that decodes, at every normal size a distance
/// can have, encodes back to its bytes.
pub fn tree(bytes: &[u8]) {
    for normal in [0, 2, 6, 8, 16] {
        let view = TreeView { chunks: vec![bytes], root: 0 };
        let mut at = 0;
        for node in view.nodes(normal) {
            let Ok((addr, node)) = node else { break };
            assert_eq!(addr as usize, at / 4);
            let mut again = Vec::new();
            encode(&node, &mut again);
            if let NodeView::Split { offset, .. } = node {
                // Any NaN payload round-trips: the offset is copied as bits.
                assert_eq!(offset.to_bits().to_le_bytes(), bytes[at + 12..at + 16]);
            }
            // Padding after a normal may be anything; the rest is exact.
            let exact = match node {
                NodeView::Split { normal, .. } => 16 + normal.len(),
                _ => again.len(),
            };
            assert_eq!(again[..exact], bytes[at..at + exact]);
            at += again.len();
        }
    }
}

/// Slot chunks, read as each distance's at a few dimensions: the slots of
/// a chunk that decodes, each written again from its id and leaf, give the
/// same bytes.
pub fn slots(bytes: &[u8]) {
    for dimensions in [1, 3, 8, 65] {
        slots_as::<Euclidean>(bytes, dimensions);
        slots_as::<Cosine>(bytes, dimensions);
        slots_as::<Hamming>(bytes, dimensions);
        slots_as::<BinaryQuantizedManhattan>(bytes, dimensions);
    }
}

fn slots_as<D: Distance>(bytes: &[u8], dimensions: usize) {
    let geometry = SlotGeometry::of::<D>(dimensions);
    let Some(table) = SlotTable::<D>::of_chunk(geometry, bytes) else { return };
    let mut again = Vec::new();
    for slot in 0..table.len() {
        again.extend_from_slice(&table.id(slot).to_le_bytes());
        table.leaf(slot).encode_into(&mut again);
    }
    assert_eq!(again, bytes);
}

/// Metadata, header and codebook records.
pub fn metadata(bytes: &[u8]) {
    if let Ok(codebook) = Codebook::decode(bytes) {
        let mut again = Vec::new();
        codebook.encode_into(&mut again);
        assert_eq!(again, bytes);
    }
    if let Ok(metadata) = Metadata::decode(bytes) {
        let mut again = Vec::new();
        metadata.encode_into(&mut again);
        assert_eq!(Metadata::decode(&again).expect("re-encoded metadata decodes"), metadata);
    }
    if let Ok(header) = Header::decode(bytes) {
        let mut again = Vec::new();
        header.encode_into(&mut again);
        assert_eq!(again, bytes);
    }
}

/// Vectors: whole floats round-trip bit for bit, and whole words of bits
/// read as ±1 values encode back to the same bits.
pub fn vector(bytes: &[u8]) {
    if let Ok(vector) = UnalignedF32::from_bytes(bytes) {
        let values = vector.to_vec();
        assert_eq!(UnalignedF32::from_slice(&values).as_bytes(), bytes);
    }
    if let Ok(bits) = PackedBits::view(bytes) {
        let mut values = Vec::new();
        signs(bits, bits.capacity(), &mut values);
        let again = PackedBits::encode(&values);
        assert_eq!(PackedBits::borrow(&again).as_bytes(), bytes);
    }
}

/// Partitions records and run chunks, read at a few code widths: a value
/// that decodes has places, slots and codes that read without a panic.
pub fn runs(bytes: &[u8]) {
    for dimensions in [128, 200, 384] {
        if let Ok(partitions) = Partitions::decode(bytes, dimensions) {
            for i in 0..partitions.len() {
                let _ = partitions.place(i);
                let _ = partitions.codes().code(i);
            }
        }
        if let Ok(chunk) = RunChunk::decode(bytes, dimensions) {
            assert!(chunk.lanes().is_multiple_of(crate::codes::BLOCK), "a run chunk holds whole blocks");
            for lane in 0..chunk.lanes() {
                let _ = chunk.slot(lane);
                let _ = chunk.codes().code(lane);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// The oracles hold on a few hand-made inputs (the fuzzers run them on
    /// arbitrary ones).
    #[test]
    fn oracles_accept_what_the_encoders_write() {
        let bucket = [[8u32, 1, 2].map(u32::to_le_bytes).concat(), [9, 0, 0, 0].to_vec()].concat();
        super::tree(&bucket);
        super::tree(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x7f, 1, 2, 0, 0]);
        super::item(&[1, 7, 0, 0, 0]);
        super::item(&[0, 0, 0, 0x80, 0x3f]);
        super::slots(&[5, 0, 0, 0, 0, 0, 0x80, 0x3f]);
        super::metadata(&[3, 0, 0, 0, 2, 0, 0, 0, 1, b'x']);
        super::key(&[0, 1, 2, 0, 0, 1, 2]);
        // A run chunk of 32 lanes of 128-dimension codes: one block of 512
        // bytes, then 32 norms and 32 scales.
        let chunk = [32u32.to_le_bytes().to_vec(), vec![0xff; 4 * 32], vec![0; 512 + 256]].concat();
        super::runs(&chunk);
    }
}
