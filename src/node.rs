//! Tree nodes and leaves, and their byte codec.
//!
//! Every value under a `Tree` or `Item` key starts with a one-byte tag:
//!
//! | tag | node | payload |
//! | --- | --- | --- |
//! | 0 | [`Leaf`] | the distance's header (plain old data), then the vector in the distance's codec (little-endian `f32`s, or packed bits) |
//! | 1 | [`Descendants`] | a roaring bitmap of item ids (portable roaring serialization) |
//! | 2 | [`SplitPlaneNormal`] | `left: u32`, `right: u32`, `left_count: u32`, `right_count: u32`, `offset: f32`, then the normal in the distance's codec (empty for a random split) |
//!
//! Decoding checks the tag and every length and returns a [`NodeError`]; it
//! never panics on any input.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use heed::{BoxedError, BytesDecode, BytesEncode};
use roaring::RoaringBitmap;

use crate::Distance;
use crate::distance::{Normal, Vector};
use crate::vector::{VectorCodec, VectorSizeError};

const LEAF_TAG: u8 = 0;
const DESCENDANTS_TAG: u8 = 1;
const SPLIT_PLANE_NORMAL_TAG: u8 = 2;
/// `left`, `right`, `left_count`, `right_count` and `offset`, four bytes each.
pub(crate) const SPLIT_HEADER_SIZE: usize = 20;

/// An item: the distance's header and the vector.
pub struct Leaf<'a, D: Distance> {
    /// Precomputed per-vector data (the norm for cosine, nothing for Euclidean).
    pub header: D::Header,
    /// The vector, in the distance's codec (floats or packed bits).
    pub vector: Vector<'a, D>,
}

impl<D: Distance> Clone for Leaf<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D: Distance> Copy for Leaf<'_, D> {}

impl<D: Distance> fmt::Debug for Leaf<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leaf").field("header", &self.header).field("vector", &self.vector).finish()
    }
}

impl<D: Distance> Leaf<'_, D> {
    /// Whether the vector has `dimensions` values.
    pub fn has_dimensions(&self, dimensions: usize) -> bool {
        D::Codec::as_bytes(self.vector).len() == D::Codec::size(dimensions)
    }
}

/// Appends the encoding of the leaf of `values` (header, then the vector in
/// the distance's codec) to `out`.
pub fn encode_leaf<D: Distance>(values: &[f32], out: &mut Vec<u8>) {
    let vector = D::Codec::encode(values);
    let leaf = Leaf::<D> { header: D::new_header(values), vector: D::Codec::borrow(&vector) };
    Node::Leaf(leaf).encode_into(out);
}

/// A bucket: the ids of the items that end in this part of a tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Descendants<'a> {
    /// The item ids.
    pub items: Cow<'a, RoaringBitmap>,
}

/// An inner node: a hyperplane and the two sides it separates.
pub struct SplitPlaneNormal<'a, D: Distance> {
    /// The node id of the side where the margin is negative.
    pub left: u32,
    /// The node id of the side where the margin is positive.
    pub right: u32,
    /// The number of items under the left side.
    pub left_count: u32,
    /// The number of items under the right side.
    pub right_count: u32,
    /// The distance-specific offset of the plane (the bias for Euclidean and
    /// Manhattan, zero for cosine, the extra coordinate for dot product).
    pub offset: f32,
    /// The normal, in the distance's normal codec; empty when the split was
    /// random.
    pub normal: Normal<'a, D>,
}

impl<D: Distance> SplitPlaneNormal<'_, D> {
    /// Whether the split was random (it has no normal).
    pub fn is_random(&self) -> bool {
        self.normal_bytes().is_empty()
    }

    /// Whether the normal is empty or has `dimensions` values.
    pub fn has_dimensions(&self, dimensions: usize) -> bool {
        self.is_random() || self.normal_bytes().len() == D::NormalCodec::size(dimensions)
    }

    /// The encoded normal.
    pub fn normal_bytes(&self) -> &[u8] {
        D::NormalCodec::as_bytes(self.normal)
    }

    /// Appends the encoding of this split to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let links = [self.left, self.right, self.left_count, self.right_count];
        encode_split(links, self.offset, self.normal_bytes(), out);
    }
}

/// Appends the encoding of a split to `out`: `left`, `right`, `left_count`
/// and `right_count` (in that order in `links`), the offset, then the
/// normal, already encoded.
pub fn encode_split(links: [u32; 4], offset: f32, normal: &[u8], out: &mut Vec<u8>) {
    out.push(SPLIT_PLANE_NORMAL_TAG);
    for word in links {
        out.extend_from_slice(&word.to_le_bytes());
    }
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(normal);
}

impl<D: Distance> Clone for SplitPlaneNormal<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<D: Distance> Copy for SplitPlaneNormal<'_, D> {}

impl<D: Distance> PartialEq for SplitPlaneNormal<'_, D> {
    fn eq(&self, other: &Self) -> bool {
        (self.left, self.right, self.left_count, self.right_count)
            == (other.left, other.right, other.left_count, other.right_count)
            && self.offset == other.offset
            && self.normal == other.normal
    }
}

impl<D: Distance> fmt::Debug for SplitPlaneNormal<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SplitPlaneNormal")
            .field("left", &self.left)
            .field("right", &self.right)
            .field("left_count", &self.left_count)
            .field("right_count", &self.right_count)
            .field("offset", &self.offset)
            .field("normal", &self.normal)
            .finish()
    }
}

/// Any value stored under a `Tree` or `Item` key.
pub enum Node<'a, D: Distance> {
    /// An item vector.
    Leaf(Leaf<'a, D>),
    /// A bucket of item ids.
    Descendants(Descendants<'a>),
    /// A split.
    SplitPlaneNormal(SplitPlaneNormal<'a, D>),
}

impl<D: Distance> fmt::Debug for Node<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Leaf(leaf) => leaf.fmt(f),
            Node::Descendants(descendants) => descendants.fmt(f),
            Node::SplitPlaneNormal(split) => split.fmt(f),
        }
    }
}

/// Why bytes do not decode as a [`Node`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeError {
    /// There is not even a tag byte.
    #[error("the node is empty")]
    Empty,
    /// The tag byte is unknown.
    #[error("unknown node tag {0}")]
    UnknownTag(u8),
    /// Another kind of node was expected here.
    #[error("expected {expected}, found {found}")]
    UnexpectedKind {
        /// What the caller needed.
        expected: &'static str,
        /// What the bytes hold.
        found: &'static str,
    },
    /// The payload is shorter than its fixed part.
    #[error("{kind} needs at least {needed} bytes of payload, found {found}")]
    TooShort {
        /// The kind of node.
        kind: &'static str,
        /// The fixed size.
        needed: usize,
        /// The size found.
        found: usize,
    },
    /// The vector part is not whole floats.
    #[error(transparent)]
    Vector(#[from] VectorSizeError),
    /// The bitmap does not decode.
    #[error("invalid bitmap: {0}")]
    Bitmap(String),
}

impl<'a, D: Distance> Node<'a, D> {
    /// The name of this kind of node, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Leaf(_) => "a leaf",
            Node::Descendants(_) => "a bucket",
            Node::SplitPlaneNormal(_) => "a split",
        }
    }

    /// Appends the encoding of this node to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Node::Leaf(leaf) => {
                out.push(LEAF_TAG);
                out.extend_from_slice(bytemuck::bytes_of(&leaf.header));
                out.extend_from_slice(D::Codec::as_bytes(leaf.vector));
            }
            Node::Descendants(descendants) => {
                out.push(DESCENDANTS_TAG);
                out.reserve(descendants.items.serialized_size());
                // Writing into a Vec cannot fail.
                let _ = descendants.items.serialize_into(&mut *out);
            }
            Node::SplitPlaneNormal(split) => split.encode_into(out),
        }
    }

    /// Decodes a node, checking its tag and every length.
    pub fn decode(bytes: &'a [u8]) -> Result<Node<'a, D>, NodeError> {
        let (&tag, payload) = bytes.split_first().ok_or(NodeError::Empty)?;
        match tag {
            LEAF_TAG => {
                let header_size = size_of::<D::Header>();
                if payload.len() < header_size {
                    return Err(NodeError::TooShort { kind: "a leaf", needed: header_size, found: payload.len() });
                }
                let (header, vector) = payload.split_at(header_size);
                let header = bytemuck::pod_read_unaligned(header);
                Ok(Node::Leaf(Leaf { header, vector: D::Codec::view(vector)? }))
            }
            DESCENDANTS_TAG => {
                let items = decode_bitmap(payload).map_err(NodeError::Bitmap)?;
                Ok(Node::Descendants(Descendants { items: Cow::Owned(items) }))
            }
            SPLIT_PLANE_NORMAL_TAG => {
                if payload.len() < SPLIT_HEADER_SIZE {
                    return Err(NodeError::TooShort {
                        kind: "a split",
                        needed: SPLIT_HEADER_SIZE,
                        found: payload.len(),
                    });
                }
                let (head, normal) = payload.split_at(SPLIT_HEADER_SIZE);
                let word = |at: usize| [head[at], head[at + 1], head[at + 2], head[at + 3]];
                Ok(Node::SplitPlaneNormal(SplitPlaneNormal {
                    left: u32::from_le_bytes(word(0)),
                    right: u32::from_le_bytes(word(4)),
                    left_count: u32::from_le_bytes(word(8)),
                    right_count: u32::from_le_bytes(word(12)),
                    offset: f32::from_le_bytes(word(16)),
                    normal: D::NormalCodec::view(normal)?,
                }))
            }
            other => Err(NodeError::UnknownTag(other)),
        }
    }

    /// The leaf inside, or an error naming what was found instead.
    pub fn into_leaf(self) -> Result<Leaf<'a, D>, NodeError> {
        match self {
            Node::Leaf(leaf) => Ok(leaf),
            other => Err(NodeError::UnexpectedKind { expected: "a leaf", found: other.kind() }),
        }
    }
}

/// The roaring cookie of a serialization with run containers, which
/// spinney never writes.
const RUN_CONTAINER_COOKIE: u16 = 12347;

/// Decodes a whole roaring bitmap, refusing run containers (the encoder never
/// writes them) and trailing bytes.
pub(crate) fn decode_bitmap(bytes: &[u8]) -> Result<RoaringBitmap, String> {
    if let [a, b, ..] = *bytes {
        if u16::from_le_bytes([a, b]) == RUN_CONTAINER_COOKIE {
            return Err("run containers are not part of the format".into());
        }
    }
    let items = RoaringBitmap::deserialize_from(bytes).map_err(|e| e.to_string())?;
    match bytes.len().checked_sub(items.serialized_size()) {
        Some(0) => Ok(items),
        _ => Err(format!("{} bytes for a bitmap of {}", bytes.len(), items.serialized_size())),
    }
}

/// The heed codec of the tree nodes and leaves of an index with the distance `D`
/// (the layout is on the [format page](crate::format)).
pub struct NodeCodec<D>(PhantomData<D>);

impl<'a, D: Distance> BytesEncode<'a> for NodeCodec<D> {
    type EItem = Node<'a, D>;

    fn bytes_encode(node: &'a Node<'a, D>) -> Result<Cow<'a, [u8]>, BoxedError> {
        let mut bytes = Vec::new();
        node.encode_into(&mut bytes);
        Ok(Cow::Owned(bytes))
    }
}

impl<'a, D: Distance> BytesDecode<'a> for NodeCodec<D> {
    type DItem = Node<'a, D>;

    fn bytes_decode(bytes: &'a [u8]) -> Result<Node<'a, D>, BoxedError> {
        Ok(Node::decode(bytes)?)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::distances::{Cosine, Euclidean};

    fn encoded<D: Distance>(node: &Node<'_, D>) -> Vec<u8> {
        let mut bytes = Vec::new();
        node.encode_into(&mut bytes);
        bytes
    }

    proptest! {
        #[test]
        fn leaf_round_trip(values in proptest::collection::vec(-1e6f32..1e6, 0..70)) {
            let mut bytes = Vec::new();
            encode_leaf::<Cosine>(&values, &mut bytes);
            let decoded = Node::<Cosine>::decode(&bytes).unwrap().into_leaf().unwrap();
            prop_assert_eq!(decoded.header, Cosine::new_header(&values));
            prop_assert_eq!(decoded.vector.to_vec(), values.clone());
            prop_assert_eq!(encoded(&Node::Leaf(decoded)), bytes);
        }

        #[test]
        fn descendants_round_trip(ids in proptest::collection::vec(any::<u32>(), 0..300)) {
            let items: RoaringBitmap = ids.into_iter().collect();
            let bytes = encoded::<Euclidean>(&Node::Descendants(Descendants { items: Cow::Borrowed(&items) }));
            match Node::<Euclidean>::decode(&bytes).unwrap() {
                Node::Descendants(decoded) => prop_assert_eq!(decoded.items.into_owned(), items),
                other => prop_assert!(false, "decoded {other:?}"),
            }
        }

        #[test]
        fn split_round_trip(left in any::<u32>(), right in any::<u32>(), left_count in any::<u32>(),
                            right_count in any::<u32>(), offset in -1e6f32..1e6,
                            normal in proptest::collection::vec(-1.0f32..1.0, 0..70)) {
            let normal = crate::half::F16::encode(&normal);
            let normal = crate::half::F16::borrow(&normal);
            let split = SplitPlaneNormal::<Euclidean> { left, right, left_count, right_count, offset, normal };
            let bytes = encoded::<Euclidean>(&Node::SplitPlaneNormal(split));
            match Node::<Euclidean>::decode(&bytes).unwrap() {
                Node::SplitPlaneNormal(decoded) => prop_assert_eq!(decoded, split),
                other => prop_assert!(false, "decoded {other:?}"),
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Node::<Cosine>::decode(&bytes);
            let _ = Node::<Euclidean>::decode(&bytes);
        }
    }

    /// Found by the node_codec fuzzer: roaring 0.10 decodes this
    /// run-container bitmap, but its re-encoding does not decode.
    #[test]
    fn run_container_bitmaps_are_refused() {
        let bytes = [
            0x01, 0x3b, 0x30, 0x01, 0x00, 0x3b, 0x30, 0x04, 0x02, 0x00, 0x00, 0x32, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x0d, 0x32, 0xf8, 0xf8, 0x25, 0x00,
        ];
        assert!(matches!(Node::<Euclidean>::decode(&bytes), Err(NodeError::Bitmap(_))));
    }

    #[test]
    fn malformed_nodes_are_errors() {
        assert_eq!(Node::<Euclidean>::decode(&[]).unwrap_err(), NodeError::Empty);
        assert_eq!(Node::<Euclidean>::decode(&[7]).unwrap_err(), NodeError::UnknownTag(7));
        assert!(matches!(Node::<Euclidean>::decode(&[0, 1, 2]).unwrap_err(), NodeError::Vector(_)));
        assert!(matches!(Node::<Cosine>::decode(&[0, 1]).unwrap_err(), NodeError::TooShort { .. }));
        assert!(matches!(Node::<Euclidean>::decode(&[2, 0, 0]).unwrap_err(), NodeError::TooShort { .. }));
        assert!(matches!(Node::<Euclidean>::decode(&[1, 0xff, 0, 0]).unwrap_err(), NodeError::Bitmap(_)));
        let mut trailing =
            encoded::<Euclidean>(&Node::Descendants(Descendants { items: Cow::Owned((0..10).collect()) }));
        trailing.push(0);
        assert!(matches!(Node::<Euclidean>::decode(&trailing).unwrap_err(), NodeError::Bitmap(_)));
    }
}
