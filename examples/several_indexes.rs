//! Several indexes in one database: one per embedding model, each with its
//! own dimensions and distance, written in the same transaction and listed
//! with `spinney::indexes`.

#[path = "support/data.rs"]
mod data;
#[path = "support/temporary.rs"]
mod temporary;

use rand::SeedableRng;
use rand::rngs::StdRng;
use spinney::distances::{BinaryQuantizedCosine, Cosine, Euclidean};
use spinney::{Database, Distance, Reader, Writer};

/// The index numbers the application gives its models.
const TEXT: u16 = 0;
const IMAGES: u16 = 1;
const TEXT_BITS: u16 = 2;

fn fill<D: Distance>(
    wtxn: &mut spinney::heed::RwTxn,
    db: Database<'static, D>,
    index: u16,
    vectors: &data::Vectors,
) -> spinney::Result<()> {
    let writer = Writer::<D>::new(db, index, vectors.dimensions);
    for id in 0..vectors.len() {
        writer.add_item(wtxn, id as u32, vectors.get(id))?;
    }
    writer.builder(&mut StdRng::seed_from_u64(u64::from(index))).build(wtxn)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let text = data::clustered(3_000, 1, 384, 1);
    let images = data::clustered(2_000, 1, 64, 2);
    // One database; each index is opened with its own distance type.
    let (_dir, env, db) = temporary::database::<Cosine>(1 << 30)?;
    let images_db: Database<'static, Euclidean> = db.remap_data_type();
    let bits_db: Database<'static, BinaryQuantizedCosine> = db.remap_data_type();

    let mut wtxn = env.write_txn()?;
    fill(&mut wtxn, db, TEXT, &text.base)?;
    fill(&mut wtxn, images_db, IMAGES, &images.base)?;
    fill(&mut wtxn, bits_db, TEXT_BITS, &text.base)?;
    wtxn.commit()?;

    let rtxn = env.read_txn()?;
    for info in spinney::indexes(&rtxn, db)? {
        println!(
            "index {}: {} items of {} dimensions, {}, {} trees",
            info.index,
            info.n_items,
            info.dimensions.unwrap_or(0),
            info.distance.as_deref().unwrap_or("?"),
            info.n_trees
        );
    }
    let query = text.queries.get(0);
    let exact = Reader::open(&rtxn, TEXT, db)?.nns(3).by_vector(&rtxn, query)?;
    let coarse = Reader::open(&rtxn, TEXT_BITS, bits_db)?.nns(3).by_vector(&rtxn, query)?;
    let pictures = Reader::open(&rtxn, IMAGES, images_db)?.nns(3).by_vector(&rtxn, images.queries.get(0))?;
    println!("text: {exact:?}\ntext over bits: {coarse:?}\nimages: {pictures:?}");
    // An index opened with another distance says so.
    let wrong = Reader::<Euclidean>::open(&rtxn, TEXT, images_db).map(|_| ()).unwrap_err();
    println!("{wrong}");
    assert!(matches!(wrong, spinney::Error::DistanceMismatch { .. }));
    Ok(())
}

#[test]
fn runs() {
    main().unwrap();
}
