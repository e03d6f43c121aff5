//! Reading vectors from files: `.fvecs` (TEXMEX), `.npy` (2-D `float32` or
//! `float16`), `.jsonl` (one object per line) and `.csv` (a header, then one
//! row per vector), streamed row by row; and `.ivecs` ground truths and
//! id lists.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde_json::Value;

use crate::failure::{Failure, Outcome};

/// A file format of vectors.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// TEXMEX: per vector, its dimensions as an `i32`, then that many `f32`s.
    Fvecs,
    /// NumPy: a 2-D C-order array of little-endian `float32` or `float16`.
    Npy,
    /// JSON lines: `{"id": 7, "vector": [0.1, ...]}`, or a bare array per
    /// line with `--ids row`.
    Jsonl,
    /// CSV with a header: an id column and either a column holding a JSON
    /// array or one column per dimension.
    Csv,
}

impl Format {
    /// The format a file's extension says.
    pub fn of(path: &Path) -> Outcome<Format> {
        let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        match extension.as_str() {
            "fvecs" => Ok(Format::Fvecs),
            "npy" => Ok(Format::Npy),
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            _ => Err(Failure::file(path, "unknown file type; name it .fvecs, .npy, .jsonl or .csv, or pass --format")),
        }
    }
}

/// Where each vector's id comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ids {
    /// The row number, from 0.
    Row,
    /// A field of each JSON object or a column of the CSV.
    Field(String),
}

impl Ids {
    /// `row`, or a field or column name.
    pub fn parse(text: &str) -> Ids {
        if text == "row" { Ids::Row } else { Ids::Field(text.to_owned()) }
    }
}

/// How to read a file of vectors.
#[derive(Clone, Debug)]
pub struct Source {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// Where ids come from.
    pub ids: Ids,
    /// The JSON field or CSV column holding the vector, when there is one.
    pub vector_field: String,
}

/// One vector and its id.
pub type Row = (u32, Vec<f32>);

/// The rows of a file, one at a time.
pub type Rows = Box<dyn Iterator<Item = Outcome<Row>>>;

impl Source {
    /// A source with the ids and vector field every format reads by default:
    /// row numbers for `.fvecs` and `.npy`, the field `id` otherwise.
    pub fn new(path: PathBuf, format: Option<Format>, ids: Option<&str>, vector_field: &str) -> Outcome<Source> {
        let format = match format {
            Some(format) => format,
            None => Format::of(&path)?,
        };
        let ids = match (ids, format) {
            (Some(ids), _) => Ids::parse(ids),
            (None, Format::Fvecs | Format::Npy) => Ids::Row,
            (None, Format::Jsonl | Format::Csv) => Ids::Field("id".into()),
        };
        if ids != Ids::Row && matches!(format, Format::Fvecs | Format::Npy) {
            return Err(Failure::file(&path, "this format has no id field; use --ids row"));
        }
        Ok(Source { path, format, ids, vector_field: vector_field.to_owned() })
    }

    /// Streams the rows.
    pub fn rows(&self) -> Outcome<Rows> {
        let file = File::open(&self.path).map_err(|e| Failure::file(&self.path, e))?;
        let reader = BufReader::with_capacity(1 << 20, file);
        let path = self.path.clone();
        Ok(match self.format {
            Format::Fvecs => Box::new(FvecsRows { path, reader, row: 0 }),
            Format::Npy => Box::new(NpyRows::open(path, reader)?),
            Format::Jsonl => Box::new(JsonRows { source: self.clone(), rows: TextRows::new(reader.lines(), 0) }),
            Format::Csv => Box::new(CsvRows::open(self.clone(), reader)?),
        })
    }
}

/// The vectors of a file of queries, in order: any format, with what
/// would be ids left out (a CSV's `id` column is not a dimension).
pub fn read_queries(path: PathBuf) -> Outcome<Vec<Vec<f32>>> {
    Source::new(path, None, Some("row"), "vector")?.rows()?.map(|row| row.map(|(_, vector)| vector)).collect()
}

/// Reads `.fvecs` files.
struct FvecsRows {
    path: PathBuf,
    reader: BufReader<File>,
    row: u64,
}

impl Iterator for FvecsRows {
    type Item = Outcome<Row>;

    fn next(&mut self) -> Option<Outcome<Row>> {
        let mut head = [0u8; 4];
        match self.reader.read(&mut head[..1]) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(Failure::file(&self.path, e))),
        }
        let row = self.row;
        let result = (|| {
            let id = row_id(row, &self.path)?;
            self.reader.read_exact(&mut head[1..]).map_err(|_| self.truncated(row))?;
            let dimensions = i32::from_le_bytes(head);
            if !(1..=1 << 20).contains(&dimensions) {
                return Err(Failure::file(
                    &self.path,
                    format!("vector {row} claims {dimensions} dimensions: not an .fvecs file"),
                ));
            }
            let mut bytes = vec![0u8; dimensions as usize * 4];
            self.reader.read_exact(&mut bytes).map_err(|_| self.truncated(row))?;
            Ok((id, little_endian_f32s(&bytes)))
        })();
        self.row += 1;
        Some(result)
    }
}

impl FvecsRows {
    fn truncated(&self, row: u64) -> Failure {
        Failure::file(&self.path, format!("the file ends inside vector {row}"))
    }
}

/// The id of row `row` (from 0) for `--ids row`: ids are `u32`.
fn row_id(row: u64, path: &Path) -> Outcome<u32> {
    u32::try_from(row).map_err(|_| Failure::file(path, "more than 2^32 rows: ids are u32, give them with --ids"))
}

/// Little-endian `f32`s.
fn little_endian_f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// The longest `.npy` header read.
const MAX_NPY_HEADER: usize = 1 << 20;

/// The element type of a `.npy` array.
#[derive(Clone, Copy)]
enum NpyType {
    F32,
    F16,
}

/// Reads `.npy` files.
struct NpyRows {
    path: PathBuf,
    reader: BufReader<File>,
    kind: NpyType,
    rows: u64,
    dimensions: usize,
    row: u64,
}

impl NpyRows {
    fn open(path: PathBuf, mut reader: BufReader<File>) -> Outcome<NpyRows> {
        let bad = |why: &str| Failure::file(&path, format!("{why}; spinney reads 2-D float32 or float16 arrays"));
        let mut magic = [0u8; 8];
        reader.read_exact(&mut magic).map_err(|_| bad("not a .npy file"))?;
        if &magic[..6] != b"\x93NUMPY" {
            return Err(bad("not a .npy file"));
        }
        let header_len = match magic[6] {
            1 => {
                let mut len = [0u8; 2];
                reader.read_exact(&mut len).map_err(|_| bad("truncated header"))?;
                u16::from_le_bytes(len) as usize
            }
            2 | 3 => {
                let mut len = [0u8; 4];
                reader.read_exact(&mut len).map_err(|_| bad("truncated header"))?;
                u32::from_le_bytes(len) as usize
            }
            version => return Err(bad(&format!("unknown .npy format version {version}"))),
        };
        // numpy writes a few hundred bytes; a longer header is damage.
        if header_len > MAX_NPY_HEADER {
            return Err(bad(&format!("a header of {header_len} bytes")));
        }
        let mut header = vec![0u8; header_len];
        reader.read_exact(&mut header).map_err(|_| bad("truncated header"))?;
        let header = String::from_utf8_lossy(&header);
        let descr = header.split("'descr':").nth(1).and_then(|rest| rest.trim_start().split('\'').nth(1));
        let kind = match descr {
            Some("<f4") => NpyType::F32,
            Some("<f2") => NpyType::F16,
            _ => return Err(bad("the array's type is not '<f4' or '<f2'")),
        };
        if header.contains("'fortran_order': True") {
            return Err(bad("the array is in Fortran order; save it with np.ascontiguousarray"));
        }
        let shape = header
            .split("'shape':")
            .nth(1)
            .and_then(|rest| rest.split(['(', ')']).nth(1))
            .ok_or_else(|| bad("the header has no shape"))?;
        let dims: Vec<u64> =
            shape.split(',').map(str::trim).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect();
        let [rows, dimensions] = dims[..] else { return Err(bad(&format!("the array has shape ({shape})"))) };
        if !(1..=spinney::MAX_DIMENSIONS as u64).contains(&dimensions) {
            return Err(bad(&format!("the array has {dimensions} columns, an index 1 to {}", spinney::MAX_DIMENSIONS)));
        }
        Ok(NpyRows { path, reader, kind, rows, dimensions: dimensions as usize, row: 0 })
    }
}

impl Iterator for NpyRows {
    type Item = Outcome<Row>;

    fn next(&mut self) -> Option<Outcome<Row>> {
        if self.row == self.rows {
            return None;
        }
        let row = self.row;
        self.row += 1;
        let width = match self.kind {
            NpyType::F32 => 4,
            NpyType::F16 => 2,
        };
        let mut bytes = vec![0u8; self.dimensions * width];
        if self.reader.read_exact(&mut bytes).is_err() {
            self.row = self.rows;
            return Some(Err(Failure::file(&self.path, format!("the file ends inside row {row}"))));
        }
        let vector = match self.kind {
            NpyType::F32 => little_endian_f32s(&bytes),
            NpyType::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        };
        Some(row_id(row, &self.path).map(|id| (id, vector)))
    }
}

/// The lines of a text file that are not blank, one row each.
struct TextRows {
    lines: std::io::Lines<BufReader<File>>,
    /// Lines read, blank ones included: the number of the last one, from 1.
    line: u64,
    /// Rows read: the number of the next one, from 0.
    row: u64,
}

/// One row of a text file.
struct TextRow {
    text: String,
    /// Its line, from 1, for messages.
    line: u64,
    /// Its row, from 0, for `--ids row`.
    row: u64,
}

impl TextRows {
    fn new(lines: std::io::Lines<BufReader<File>>, header_lines: u64) -> TextRows {
        TextRows { lines, line: header_lines, row: 0 }
    }

    fn next(&mut self, path: &Path) -> Option<Outcome<TextRow>> {
        loop {
            let text = match self.lines.next()? {
                Ok(text) => text,
                Err(e) => return Some(Err(Failure::file(path, e))),
            };
            self.line += 1;
            if !text.trim().is_empty() {
                self.row += 1;
                return Some(Ok(TextRow { text, line: self.line, row: self.row - 1 }));
            }
        }
    }
}

/// Reads JSON lines.
struct JsonRows {
    source: Source,
    rows: TextRows,
}

impl Iterator for JsonRows {
    type Item = Outcome<Row>;

    fn next(&mut self) -> Option<Outcome<Row>> {
        let row = self.rows.next(&self.source.path)?;
        Some(row.and_then(|row| self.parse(&row)))
    }
}

impl JsonRows {
    fn parse(&self, row: &TextRow) -> Outcome<Row> {
        let at = |why: String| Failure::file(&self.source.path, format!("line {}: {why}", row.line));
        let value: Value = serde_json::from_str(&row.text).map_err(|e| at(e.to_string()))?;
        let vector = match &value {
            Value::Array(_) => &value,
            Value::Object(object) => object.get(&self.source.vector_field).ok_or_else(|| {
                at(format!("no field `{}` (choose it with --vector-field)", self.source.vector_field))
            })?,
            _ => return Err(at("expected an object or an array".into())),
        };
        let vector = json_vector(vector).map_err(at)?;
        let id = match &self.source.ids {
            Ids::Row => row_id(row.row, &self.source.path)?,
            Ids::Field(field) => {
                let id = value.get(field).ok_or_else(|| at(format!("no field `{field}` (choose it with --ids)")))?;
                id.as_u64()
                    .and_then(|id| u32::try_from(id).ok())
                    .ok_or_else(|| at(format!("the id {id} is not an integer from 0 to 2^32 - 1")))?
            }
        };
        Ok((id, vector))
    }
}

/// A JSON array of numbers as a vector.
pub fn json_vector(value: &Value) -> Result<Vec<f32>, String> {
    let Value::Array(values) = value else { return Err(format!("expected an array of numbers, not {value}")) };
    values
        .iter()
        .map(|value| value.as_f64().map(|v| v as f32).ok_or_else(|| format!("{value} is not a number")))
        .collect()
}

/// Reads CSV files.
struct CsvRows {
    source: Source,
    rows: TextRows,
    /// The column of the ids, unless they are row numbers.
    id_column: Option<usize>,
    vector: CsvVector,
}

/// Where a CSV row keeps its vector.
enum CsvVector {
    /// One column holds a JSON array.
    Json(usize),
    /// Every column but the id's is a dimension: the column named by
    /// `--ids`, or, with row numbers for ids, one named `id` if any.
    Columns(Option<usize>),
}

impl CsvRows {
    fn open(source: Source, reader: BufReader<File>) -> Outcome<CsvRows> {
        let mut lines = reader.lines();
        let header = match lines.next() {
            Some(line) => line.map_err(|e| Failure::file(&source.path, e))?,
            None => return Err(Failure::file(&source.path, "empty file; a CSV file starts with a header")),
        };
        let names = split_csv(&header);
        let id_column = match &source.ids {
            Ids::Row => None,
            Ids::Field(name) => Some(names.iter().position(|n| n == name).ok_or_else(|| {
                Failure::file(
                    &source.path,
                    format!("no column `{name}` in the header (choose the id column with --ids, or --ids row)"),
                )
            })?),
        };
        let vector = match names.iter().position(|n| *n == source.vector_field) {
            Some(column) => CsvVector::Json(column),
            None => CsvVector::Columns(id_column.or_else(|| names.iter().position(|n| n == "id"))),
        };
        Ok(CsvRows { source, rows: TextRows::new(lines, 1), id_column, vector })
    }

    fn parse(&self, row: &TextRow) -> Outcome<Row> {
        let at = |why: String| Failure::file(&self.source.path, format!("line {}: {why}", row.line));
        let fields = split_csv(&row.text);
        let vector = match self.vector {
            CsvVector::Json(column) => {
                let text = fields.get(column).ok_or_else(|| at(format!("no column {}", column + 1)))?;
                let value: Value = serde_json::from_str(text).map_err(|e| at(format!("the vector column: {e}")))?;
                json_vector(&value).map_err(at)?
            }
            CsvVector::Columns(id_column) => fields
                .iter()
                .enumerate()
                .filter(|(column, _)| Some(*column) != id_column)
                .map(|(_, field)| field.trim().parse::<f32>().map_err(|_| at(format!("`{field}` is not a number"))))
                .collect::<Outcome<_>>()?,
        };
        let id = match self.id_column {
            None => row_id(row.row, &self.source.path)?,
            Some(column) => {
                let text = fields.get(column).ok_or_else(|| at(format!("no column {}", column + 1)))?;
                text.trim().parse().map_err(|_| at(format!("the id `{text}` is not an integer from 0 to 2^32 - 1")))?
            }
        };
        Ok((id, vector))
    }
}

impl Iterator for CsvRows {
    type Item = Outcome<Row>;

    fn next(&mut self) -> Option<Outcome<Row>> {
        let row = self.rows.next(&self.source.path)?;
        Some(row.and_then(|row| self.parse(&row)))
    }
}

/// The fields of one CSV line: commas separate, double quotes enclose
/// fields holding commas, and `""` inside quotes is one quote.
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        let field = fields.last_mut().expect("never empty");
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => field.push(c),
        }
    }
    fields
}

/// Reads an `.ivecs` file: per row, its length as an `i32`, then that many
/// `i32`s (ground-truth neighbour ids).
pub fn read_ivecs(path: &Path) -> Outcome<Vec<Vec<u32>>> {
    let bytes = std::fs::read(path).map_err(|e| Failure::file(path, e))?;
    let mut rows = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let truncated = || Failure::file(path, format!("the file ends inside row {}", rows.len()));
        let (head, tail) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
        let len = usize::try_from(i32::from_le_bytes(*head)).map_err(|_| truncated())?;
        let values = tail.get(..len * 4).ok_or_else(truncated)?;
        rows.push(values.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect());
        rest = &tail[len * 4..];
    }
    Ok(rows)
}

/// Reads a list of ids separated by white space or commas.
pub fn read_ids(path: &Path) -> Outcome<roaring::RoaringBitmap> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure::file(path, e))?;
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|word| !word.is_empty())
        .map(|word| word.parse::<u32>().map_err(|_| Failure::file(path, format!("`{word}` is not an item id"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::split_csv;

    #[test]
    fn csv_fields_split_on_commas_outside_quotes() {
        assert_eq!(split_csv("1,2.5,3"), ["1", "2.5", "3"]);
        assert_eq!(split_csv("7,\"[0.5, 1]\"\r"), ["7", "[0.5, 1]"]);
        assert_eq!(split_csv("\"say \"\"hi\"\"\",x"), ["say \"hi\"", "x"]);
        assert_eq!(split_csv(""), [""]);
    }
}
