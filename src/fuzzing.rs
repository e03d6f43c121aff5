//! Oracles for the fuzz targets in `fuzz/` (feature `fuzzing`; not part of
//! the API). Each decodes arbitrary bytes, which must never panic, and when
//! they decode, checks that encoding gives the same value back. The
//! assertions here are the fuzzers' findings, not error handling.

use crate::Distance;
use crate::bits::{PackedBits, signs};
use crate::distance::{
    BinaryQuantizedCosine, BinaryQuantizedEuclidean, BinaryQuantizedManhattan, Cosine, DotProduct, Euclidean, Hamming,
    Manhattan,
};
use crate::key::Key;
use crate::metadata::Metadata;
use crate::node::Node;
use crate::vector::{UnalignedF32, VectorCodec};

/// Keys: seven bytes round-trip exactly.
pub fn key(bytes: &[u8]) {
    if let Ok(key) = Key::from_bytes(bytes) {
        assert_eq!(key.to_bytes()[..], *bytes);
    }
}

/// Nodes, read as each distance's.
pub fn node(bytes: &[u8]) {
    node_as::<Euclidean>(bytes);
    node_as::<Manhattan>(bytes);
    node_as::<Cosine>(bytes);
    node_as::<DotProduct>(bytes);
    node_as::<BinaryQuantizedEuclidean>(bytes);
    node_as::<BinaryQuantizedCosine>(bytes);
    node_as::<BinaryQuantizedManhattan>(bytes);
    node_as::<Hamming>(bytes);
}

fn node_as<D: Distance>(bytes: &[u8]) {
    let Ok(node) = Node::<D>::decode(bytes) else { return };
    let mut again = Vec::new();
    node.encode_into(&mut again);
    let twice = Node::<D>::decode(&again).expect("a re-encoded node decodes");
    // Debug output compares NaNs as equal, which `==` would not.
    assert_eq!(format!("{node:?}"), format!("{twice:?}"));
    if !matches!(node, Node::Descendants(_)) {
        // Leaves and splits have one encoding; a bitmap may have several.
        assert_eq!(again, bytes);
    }
}

/// Metadata records.
pub fn metadata(bytes: &[u8]) {
    let Ok(metadata) = Metadata::decode(bytes) else { return };
    let mut again = Vec::new();
    metadata.encode_into(&mut again);
    assert_eq!(Metadata::decode(&again).expect("re-encoded metadata decodes"), metadata);
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
