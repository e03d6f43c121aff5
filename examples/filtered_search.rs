//! Filtered search: the application keeps its own data (here, each
//! product's category and stock) and asks spinney for the nearest items
//! among those a `RoaringBitmap` of ids keeps.

#[path = "support/data.rs"]
mod data;
#[path = "support/temporary.rs"]
mod temporary;

use rand::SeedableRng;
use rand::rngs::StdRng;
use roaring::RoaringBitmap;
use spinney::distances::Euclidean;
use spinney::{Reader, Writer};

/// What the application knows of product `id` (its own tables, not spinney's).
fn category(id: u32) -> &'static str {
    ["books", "garden", "kitchen", "toys"][(id % 4) as usize]
}

fn in_stock(id: u32) -> bool {
    !id.is_multiple_of(7)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let products = data::clustered(20_000, 3, 64, 7);
    let (_dir, env, db) = temporary::database::<Euclidean>(1 << 30)?;
    let mut wtxn = env.write_txn()?;
    let writer = Writer::<Euclidean>::new(db, 0, 64);
    for id in 0..products.base.len() {
        writer.add_item(&mut wtxn, id as u32, products.base.get(id))?;
    }
    writer.builder(&mut StdRng::seed_from_u64(1)).build(&mut wtxn)?;
    wtxn.commit()?;

    let rtxn = env.read_txn()?;
    let reader = Reader::<Euclidean>::open(&rtxn, 0, db)?;
    // Any selection of ids: a category (a quarter of the items), then the
    // garden products in stock, then a handful picked by hand.
    let kitchen: RoaringBitmap = reader.item_ids().iter().filter(|&id| category(id) == "kitchen").collect();
    let garden_in_stock: RoaringBitmap =
        reader.item_ids().iter().filter(|&id| category(id) == "garden" && in_stock(id)).collect();
    let picked: RoaringBitmap = [3, 1_000, 4_242, 19_999].into_iter().collect();
    let query = products.queries.get(0);
    for (name, filter) in [("kitchen", &kitchen), ("garden, in stock", &garden_in_stock), ("picked", &picked)] {
        let nearest = reader.nns(5).candidates(filter).by_vector(&rtxn, query)?;
        println!("{name} ({} items): {nearest:?}", filter.len());
        assert!(nearest.iter().all(|(id, _)| filter.contains(*id)));
        assert_eq!(nearest.len(), filter.len().min(5) as usize);
    }
    Ok(())
}

#[test]
fn runs() {
    main().unwrap();
}
