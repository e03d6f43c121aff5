//! The `spinney` binary, run end to end on small generated files.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use spinney::heed::types::Bytes;
use spinney::heed::{CommitOrAbort, Env, EnvOpenOptions};
use spinney::{Database, Reader};
use tempfile::TempDir;

/// Runs `spinney` with `args`.
fn spinney(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spinney")).args(args).output().expect("the binary runs")
}

/// Runs `spinney` with `args`, expecting success; returns its stdout.
fn ok(args: &[&str]) -> String {
    let output = spinney(args);
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "spinney {args:?} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

/// Runs `spinney` with `args`, expecting exit code `code` and one line on
/// stderr holding `needle`.
fn fails(args: &[&str], code: i32, needle: &str) {
    let output = spinney(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "spinney {args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.starts_with("step: ")).collect();
    assert_eq!(lines.len(), 1, "one line of error, not {stderr:?}");
    assert!(lines[0].starts_with("error: ") && lines[0].contains(needle), "{needle:?} not in {stderr:?}");
}

/// The first index `spinney ls` lists, column by column.
fn first_index(db: &str) -> Vec<String> {
    let listed = ok(&["ls", db]);
    listed
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no index in {listed}"))
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// `n` vectors of `dimensions` values, the same for the same arguments.
fn vectors(n: usize, dimensions: usize) -> Vec<Vec<f32>> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            (0..dimensions)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                })
                .collect()
        })
        .collect()
}

fn write_fvecs(path: &Path, vectors: &[Vec<f32>]) {
    let mut bytes = Vec::new();
    for vector in vectors {
        bytes.extend_from_slice(&(vector.len() as i32).to_le_bytes());
        vector.iter().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
    }
    std::fs::write(path, bytes).unwrap();
}

fn write_npy(path: &Path, vectors: &[Vec<f32>], half: bool) {
    let descr = if half { "<f2" } else { "<f4" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({}, {}), }}", vectors.len(), vectors[0].len());
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in vectors.iter().flatten() {
        match half {
            true => bytes.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes()),
            false => bytes.extend_from_slice(&v.to_le_bytes()),
        }
    }
    std::fs::write(path, bytes).unwrap();
}

fn json_array(vector: &[f32]) -> String {
    format!("[{}]", vector.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","))
}

/// The environment at `path` and its unnamed database, once the spinney
/// processes that wrote it have exited.
fn open<KC: 'static, DC: 'static>(path: &Path) -> (Env, spinney::heed::Database<'static, KC, DC>) {
    // SAFETY: the spinney processes that wrote the environment have exited.
    let env = unsafe { EnvOpenOptions::new().map_size(1 << 30).open(path).unwrap() };
    let db = env
        .open_databases_and_commit(env.read_txn().unwrap(), |opener, rtxn| {
            opener.open_database(rtxn, None).map(CommitOrAbort::<_, ()>::Commit)
        })
        .unwrap()
        .unwrap_commit()
        .unwrap();
    (env, db)
}

/// The vectors index `index` of the database at `path` holds, by id.
fn stored(path: &Path, index: u16) -> Vec<(u32, Vec<f32>)> {
    let (env, db): (_, Database<'static, spinney::distances::Euclidean>) = open(path);
    let rtxn = env.read_txn().unwrap();
    let info = spinney::indexes(&rtxn, db).unwrap().into_iter().find(|info| info.index == index).unwrap();
    let writer = spinney::Writer::new(db, index, info.dimensions.unwrap());
    writer.iter(&rtxn).unwrap().map(Result::unwrap).collect()
}

struct Files {
    dir: TempDir,
}

impl Files {
    fn new() -> Files {
        Files { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }
}

#[test]
fn import_build_query_check_and_eval_a_generated_index() {
    let files = Files::new();
    let data = vectors(2_000, 16);
    write_fvecs(&files.path("base.fvecs"), &data);
    write_fvecs(&files.path("queries.fvecs"), &vectors(2_050, 16)[2_000..]);
    let db = files.arg("db");

    let imported = ok(&["import", &db, "--index", "3", "--metric", "euclidean", &files.arg("base.fvecs")]);
    assert!(imported.starts_with("imported 2000 vectors of 16 dimensions into index 3 (euclidean)"), "{imported}");
    assert_eq!(first_index(&db), ["3", "euclidean", "16", "2000", "unbuilt", "2000", "6"]);

    let built = ok(&["build", &db, "--index", "3", "--trees", "8", "--threads", "1"]);
    assert!(built.starts_with("built index 3: 2000 items, 8 trees"), "{built}");
    assert_eq!(first_index(&db), ["3", "euclidean", "16", "2000", "8", "0", "6"]);
    assert_eq!(stored(&files.path("db"), 3).len(), 2_000);

    // An item's nearest neighbour is itself, at distance 0.
    let answer: serde_json::Value =
        serde_json::from_str(&ok(&["query", &db, "--index", "3", "--id", "17", "-k", "3", "--json"])).unwrap();
    let neighbours = answer[0]["neighbours"].as_array().unwrap();
    assert_eq!(neighbours.len(), 3);
    assert_eq!(neighbours[0]["id"], 17);
    assert_eq!(neighbours[0]["distance"], 0.0);

    // A vector's neighbours are those of the library.
    let table = ok(&["query", &db, "--index", "3", "--vector", &json_array(&data[42]), "-k", "1"]);
    assert_eq!(table.lines().nth(2).unwrap().split_whitespace().take(2).collect::<Vec<_>>(), ["1", "42"]);

    // A filter keeps its ids only.
    std::fs::write(files.path("ids.txt"), "5, 6\n7").unwrap();
    let filtered: serde_json::Value = serde_json::from_str(&ok(&[
        "query",
        &db,
        "--index",
        "3",
        "--id",
        "42",
        "--filter",
        &files.arg("ids.txt"),
        "--json",
    ]))
    .unwrap();
    let mut ids: Vec<u64> =
        filtered[0]["neighbours"].as_array().unwrap().iter().map(|n| n["id"].as_u64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, [5, 6, 7]);

    let stats = ok(&["stats", &db, "--index", "3"]);
    assert!(stats.contains("items             2000") && stats.contains("trees             8"), "{stats}");
    assert_eq!(ok(&["check", &db, "--index", "3"]).trim(), "index 3: ok");

    // The sweep ends with every item: an exact scan, recall 1.
    // The extensions are added to the whole stem, dots and all.
    let plot = files.arg("curve.v1");
    let eval = ok(&["eval", &db, "--index", "3", "--queries", &files.arg("queries.fvecs"), "--plot", &plot]);
    let last = eval.lines().rfind(|line| line.trim_start().starts_with("bound")).unwrap();
    assert_eq!(last.split_whitespace().nth(2), Some("1.0000"), "{eval}");
    assert!(eval.contains("curve.v1.svg and ") && eval.trim_end().ends_with("curve.v1.png"), "{eval}");
    let png = std::fs::read(files.path("curve.v1.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
    let svg = std::fs::read_to_string(files.path("curve.v1.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("recall@10") && svg.contains("<polyline"));
}

#[test]
fn every_file_format_imports_the_same_vectors() {
    let files = Files::new();
    let data = vectors(50, 8);
    write_npy(&files.path("f32.npy"), &data, false);
    write_npy(&files.path("f16.npy"), &data, true);
    let mut jsonl = String::new();
    let mut csv = String::from("id,vector\n");
    let mut columns = String::from("key,a,b,c,d,e,f,g,h\n");
    for (id, vector) in data.iter().enumerate() {
        let id = 1000 + id;
        jsonl.push_str(&format!("{{\"id\": {id}, \"vector\": {}}}\n", json_array(vector)));
        csv.push_str(&format!("{id},\"{}\"\n", json_array(vector)));
        let values: Vec<String> = vector.iter().map(|v| v.to_string()).collect();
        columns.push_str(&format!("{id},{}\n", values.join(",")));
    }
    std::fs::write(files.path("rows.jsonl"), jsonl).unwrap();
    std::fs::write(files.path("rows.csv"), csv).unwrap();
    std::fs::write(files.path("columns.csv"), columns).unwrap();

    let db = files.arg("db");
    let import = |index: &str, file: &str, extra: &[&str]| {
        let mut args = vec!["import", &db, "--index", index, "--metric", "euclidean"];
        args.extend_from_slice(extra);
        let path = files.arg(file);
        args.push(&path);
        ok(&args);
    };
    import("0", "f32.npy", &[]);
    import("1", "f16.npy", &[]);
    import("2", "rows.jsonl", &[]);
    import("3", "rows.csv", &[]);
    import("4", "columns.csv", &["--ids", "key"]);
    import("5", "rows.jsonl", &["--ids", "row"]);

    let path = files.path("db");
    let exact: Vec<(u32, Vec<f32>)> = data.iter().cloned().enumerate().map(|(i, v)| (i as u32, v)).collect();
    let shifted: Vec<(u32, Vec<f32>)> = exact.iter().map(|(i, v)| (i + 1000, v.clone())).collect();
    assert_eq!(stored(&path, 0), exact);
    assert_eq!(stored(&path, 2), shifted);
    assert_eq!(stored(&path, 3), shifted);
    assert_eq!(stored(&path, 4), shifted);
    assert_eq!(stored(&path, 5), exact);
    let halves = stored(&path, 1);
    assert_eq!(halves.len(), exact.len());
    for ((id, half), (expected_id, v)) in halves.iter().zip(&exact) {
        assert_eq!(id, expected_id);
        assert!(half.iter().zip(v).all(|(h, v)| (h - v).abs() <= 1e-3), "{half:?} vs {v:?}");
    }
}

#[test]
fn rows_and_lines_are_counted_as_written() {
    let files = Files::new();
    let data = vectors(4, 3);
    let rows: Vec<String> = data.iter().map(|v| json_array(v)).collect();
    // Blank lines are not rows: row ids stay 0, 1, 2, 3.
    std::fs::write(files.path("gaps.jsonl"), format!("{}\n\n{}\n  \n{}\n{}\n", rows[0], rows[1], rows[2], rows[3]))
        .unwrap();
    let db = files.arg("db");
    ok(&["import", &db, &files.arg("gaps.jsonl"), "--ids", "row", "--metric", "euclidean"]);
    let exact: Vec<(u32, Vec<f32>)> = data.iter().cloned().enumerate().map(|(i, v)| (i as u32, v)).collect();
    assert_eq!(stored(&files.path("db"), 0), exact);

    // Errors name the line of the file, header and blank lines included.
    std::fs::write(files.path("bad.csv"), "id,a,b,c\n1,0,0,0\n\n2,0,x,0\n").unwrap();
    fails(
        &["import", &db, "--index", "1", &files.arg("bad.csv"), "--metric", "euclidean"],
        1,
        "bad.csv: line 4: `x` is not a number",
    );

    // A query file laid out as import reads it: its `id` column is no dimension.
    let mut csv = String::from("id,a,b,c\n");
    for (id, vector) in data.iter().enumerate() {
        csv.push_str(&format!("{},{},{},{}\n", 100 + id, vector[0], vector[1], vector[2]));
    }
    std::fs::write(files.path("queries.csv"), csv).unwrap();
    ok(&["build", &db]);
    let answer: serde_json::Value =
        serde_json::from_str(&ok(&["query", &db, "--file", &files.arg("queries.csv"), "-k", "1", "--json"])).unwrap();
    let nearest: Vec<u64> =
        answer.as_array().unwrap().iter().map(|a| a["neighbours"][0]["id"].as_u64().unwrap()).collect();
    assert_eq!(nearest, [0, 1, 2, 3]);
}

#[test]
fn damaged_npy_headers_are_errors_not_allocations() {
    let files = Files::new();
    let db = files.arg("db");
    let npy = |name: &str, version: u8, length: &[u8], header: &str| {
        let mut bytes = vec![0x93, b'N', b'U', b'M', b'P', b'Y', version, 0];
        bytes.extend_from_slice(length);
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&[0; 64]);
        std::fs::write(files.path(name), bytes).unwrap();
        files.arg(name)
    };
    let wide = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1000000000000), }";
    let wide = npy("wide.npy", 1, &(wide.len() as u16).to_le_bytes(), wide);
    fails(&["import", &db, &wide, "--metric", "cosine"], 1, "the array has 1000000000000 columns");
    let structured = "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (2,), }";
    let structured = npy("structured.npy", 1, &(structured.len() as u16).to_le_bytes(), structured);
    fails(&["import", &db, &structured, "--metric", "cosine"], 1, "the array's type is not '<f4' or '<f2'");
    let long = npy("long.npy", 2, &u32::MAX.to_le_bytes(), "{}");
    fails(&["import", &db, &long, "--metric", "cosine"], 1, "a header of 4294967295 bytes");
    let future = npy("future.npy", 9, &[2, 0], "{}");
    fails(&["import", &db, &future, "--metric", "cosine"], 1, "unknown .npy format version 9");
}

#[test]
fn an_index_in_an_older_format_is_named_as_such() {
    let files = Files::new();
    // Written by spinney in format 2: index 0, Euclidean, 16 dimensions.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/format-2/data.mdb");
    std::fs::create_dir(files.path("db")).unwrap();
    std::fs::copy(fixture, files.path("db/data.mdb")).unwrap();
    write_fvecs(&files.path("16d.fvecs"), &vectors(3, 16));
    let db = files.arg("db");
    assert_eq!(first_index(&db), ["0", "-", "-", "300", "0", "3", "2"]);
    let old = "index 0 is in format version 2, this release reads version 6; convert it in place with Writer::upgrade";
    fails(&["query", &db, "--id", "1"], 1, old);
    fails(&["import", &db, &files.arg("16d.fvecs")], 1, old);
}

#[test]
fn mistakes_get_one_line_saying_what_to_do() {
    let files = Files::new();
    write_fvecs(&files.path("8d.fvecs"), &vectors(20, 8));
    write_fvecs(&files.path("9d.fvecs"), &vectors(20, 9));
    std::fs::write(files.path("nan.jsonl"), "{\"id\": 1, \"vector\": [1, 2]}\n{\"id\": 2, \"vector\": [1, \"x\"]}\n")
        .unwrap();
    std::fs::write(files.path("vectors.txt"), "1 2 3").unwrap();
    let db = files.arg("db");
    let base = files.arg("8d.fvecs");

    fails(&["ls", &db], 1, "no database here (no data.mdb); create one with `spinney import");
    fails(&["import", &db, &files.arg("missing.fvecs"), "--metric", "cosine"], 1, "missing.fvecs: No such file");
    fails(&["import", &db, &base], 1, "index 0 is new: say its distance with --metric");
    fails(&["import", &db, &base, "--metric", "chebyshev"], 1, "unknown distance `chebyshev`");
    fails(&["import", &db, &files.arg("vectors.txt"), "--metric", "cosine"], 1, "unknown file type");
    ok(&["import", &db, &base, "--metric", "cosine"]);
    fails(&["import", &db, &files.arg("9d.fvecs")], 1, "built with 8 dimensions but the writer has 9");
    fails(&["import", &db, &base, "--metric", "euclidean"], 1, "built with the cosine distance, not euclidean");
    fails(
        &["import", &db, "--index", "1", &files.arg("nan.jsonl"), "--metric", "cosine"],
        1,
        "line 2: \"x\" is not a number",
    );
    // The failed imports left nothing behind.
    assert_eq!(ok(&["ls", &db]).lines().count(), 2);

    fails(&["query", &db, "--id", "1"], 1, "index 0 has not been built; add items and call build first");
    ok(&["build", &db]);
    fails(&["query", &db, "--vector", "[1, 2]"], 1, "the vector has 2 dimensions but the index has 8");
    fails(&["query", &db, "--vector", "[1, 2"], 1, "--vector is not JSON");
    fails(&["query", &db, "--id", "999"], 1, "item 999 is not in index 0");
    // Counts of zero say what they count (issue 22: `-k 0` said "number
    // would be zero for non-zero type"), and `--trees 0` is refused rather
    // than taken as one tree.
    for (args, needle) in [
        (["query", &db, "--id", "1", "-k", "0"], "neighbours to return: give 1 or more"),
        (["query", &db, "--id", "1", "--search-k", "0"], "candidates to score: give 1 or more"),
        (["query", &db, "--id", "1", "--rerank", "0"], "candidates to rank exactly: give 1 or more"),
    ] {
        let refused = spinney(&args);
        assert_eq!(refused.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&refused.stderr).contains(needle), "{args:?}");
    }
    for (trees, needle) in [("0", "a forest needs one tree at least"), ("4097", "at most 4096 trees")] {
        let refused = spinney(&["build", &db, "--trees", trees]);
        assert_eq!(refused.status.code(), Some(2), "--trees {trees}");
        assert!(String::from_utf8_lossy(&refused.stderr).contains(needle), "--trees {trees}");
    }
    fails(&["query", &db, "--index", "7", "--id", "1"], 1, "there is no index 7; `spinney ls");
    fails(&["stats", &db, "--database", "other"], 1, "no database named \"other\"");
    // A second named database is created in an existing environment.
    let named = files.arg("named");
    ok(&["import", &named, "--database", "first", &base, "--metric", "cosine"]);
    ok(&["import", &named, "--database", "second", &base, "--metric", "euclidean"]);
    assert!(ok(&["ls", &named, "--database", "second"]).contains("euclidean"));
    fails(&["ls", &named], 1, "if the environment holds named databases, pass --database NAME");
    let mut small = vec!["import", "--map-size", "64KiB", &db, "--index", "2", "--metric", "cosine"];
    let big = files.path("big.fvecs");
    write_fvecs(&big, &vectors(2_000, 64));
    small.push(big.to_str().unwrap());
    fails(&small, 1, "the database is full: run the command again with a larger --map-size");
}

#[test]
fn a_database_that_is_not_spinneys_is_refused() {
    let files = Files::new();
    let path = files.path("db");
    std::fs::create_dir(&path).unwrap();
    {
        // SAFETY: the directory is new and opened once.
        let env = unsafe { EnvOpenOptions::new().open(&path).unwrap() };
        let db: spinney::heed::Database<Bytes, Bytes> = env
            .create_databases_and_commit(env.write_txn().unwrap(), |opener, wtxn| {
                opener.create_database(wtxn, None).map(CommitOrAbort::<_, ()>::Commit)
            })
            .unwrap()
            .unwrap_commit();
        let mut wtxn = env.write_txn().unwrap();
        // An arroy key: eight bytes, the last one padding.
        db.put(&mut wtxn, &[0, 0, 3, 0, 0, 0, 1, 0], b"leaf").unwrap();
        wtxn.commit().unwrap();
    }
    let db = path.to_str().unwrap();
    fails(&["ls", db], 1, "not a spinney database");
    fails(&["query", db, "--id", "1"], 1, "not a spinney database");
}

#[test]
fn check_fails_with_exit_code_3_on_a_damaged_index() {
    let files = Files::new();
    write_fvecs(&files.path("base.fvecs"), &vectors(300, 8));
    let db = files.arg("db");
    ok(&["import", &db, &files.arg("base.fvecs"), "--metric", "euclidean"]);
    ok(&["build", &db]);
    {
        let (env, db): (_, spinney::heed::Database<Bytes, Bytes>) = open(&files.path("db"));
        let mut wtxn = env.write_txn().unwrap();
        // The first slot chunk of index 0: its count, then the first
        // slot's item id.
        let key = [0, 0, 8, 0, 0, 0, 0];
        let mut chunk = db.get(&wtxn, &key).unwrap().unwrap().to_vec();
        chunk[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        db.put(&mut wtxn, &key, &chunk).unwrap();
        wtxn.commit().unwrap();
    }
    fails(&["check", &db], 3, "index 0 failed its check: corrupted entry");
}

#[test]
fn ctrl_c_cancels_a_build_and_keeps_the_committed_index() {
    let files = Files::new();
    write_fvecs(&files.path("base.fvecs"), &vectors(20_000, 32));
    let db = files.arg("db");
    ok(&["import", &db, &files.arg("base.fvecs"), "--metric", "euclidean"]);

    // Enough trees on one thread that the build is still growing them when
    // the signal arrives.
    let mut child = Command::new(env!("CARGO_BIN_EXE_spinney"))
        .args(["build", &db, "--trees", "2000", "--threads", "1"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("step: growing trees") {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the build ended before growing trees: {seen}");
        seen.push_str(&line);
    }
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(rest.contains("error: the build was cancelled; the committed index is as it was"), "{rest}");

    // Nothing was built; the items are all there, and a build still works.
    assert_eq!(first_index(&db), ["0", "euclidean", "32", "20000", "unbuilt", "20000", "6"]);
    ok(&["build", &db, "--trees", "4"]);
    assert_eq!(ok(&["check", &db]).trim(), "index 0: ok");
    std::io::stdout().flush().unwrap();
}

#[test]
fn a_built_index_answers_like_the_library() {
    let files = Files::new();
    let data = vectors(500, 8);
    write_fvecs(&files.path("base.fvecs"), &data);
    let db = files.arg("db");
    ok(&["import", &db, &files.arg("base.fvecs"), "--metric", "manhattan"]);
    ok(&["build", &db, "--seed", "7"]);
    let printed: serde_json::Value =
        serde_json::from_str(&ok(&["query", &db, "--vector", &json_array(&data[9]), "-k", "5", "--json"])).unwrap();
    let printed: Vec<u64> =
        printed[0]["neighbours"].as_array().unwrap().iter().map(|n| n["id"].as_u64().unwrap()).collect();

    let (env, db): (_, Database<'static, spinney::distances::Manhattan>) = open(&files.path("db"));
    let rtxn = env.read_txn().unwrap();
    let reader = Reader::open(&rtxn, 0, db).unwrap();
    let expected: Vec<u64> =
        reader.nns(5).by_vector(&rtxn, &data[9]).unwrap().iter().map(|(id, _)| u64::from(*id)).collect();
    assert_eq!(printed, expected);
}
