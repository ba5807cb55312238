//! Spill runs: rows buffered by the loader, written to disk when memory runs short.
//!
//! ```text
//! RUN   := PIECE* INDEX INDEX_LEN INDEX_CRC RUN_MAGIC
//! PIECE := one Arrow IPC stream (schema, dictionaries, one record batch, end marker),
//!          buffers zstd-compressed
//! INDEX := JSON array of PieceMeta
//! INDEX_LEN: u64, INDEX_CRC: crc32c of INDEX as u32; all integers little-endian
//! ```
//!
//! A run is written to `<name>.tmp`, fsynced and renamed, so a run file that exists is whole;
//! the job manifest lists the runs that count.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use arrow_ipc::CompressionType;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::time::Interval;

/// Last bytes of every run file.
pub const RUN_MAGIC: [u8; 8] = *b"BSLTRUN1";
/// INDEX_LEN + INDEX_CRC + RUN_MAGIC.
pub const RUN_TRAILER_SIZE: usize = 8 + 4 + RUN_MAGIC.len();

/// Where one piece (rows of one input for one interval) lives in a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PieceMeta {
    /// Segment interval the rows belong to.
    pub interval: Interval,
    /// Partition within the interval (repartition files only; 0 in spill runs).
    #[serde(default)]
    pub partition: u32,
    /// Input file index.
    pub input: u32,
    /// Position of the piece's first source row in its input (orders pieces).
    pub row_offset: u64,
    /// Rows.
    pub rows: u64,
    /// Byte range of the IPC stream in the run file.
    pub pos: u64,
    /// Length of the IPC stream.
    pub len: u64,
    /// In-memory size of the batch when read back (for memory accounting).
    pub mem_bytes: u64,
}

/// Writes one run file.
#[derive(Debug)]
pub(crate) struct RunWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
    pos: u64,
    index: Vec<PieceMeta>,
    buf: Vec<u8>,
}

impl RunWriter {
    pub fn create(path: &Path) -> Result<RunWriter> {
        let tmp = path.with_extension("tmp");
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(RunWriter {
            path: path.to_path_buf(),
            tmp,
            out: BufWriter::with_capacity(1 << 20, file),
            pos: 0,
            index: Vec::new(),
            buf: Vec::new(),
        })
    }

    /// Append a piece.
    pub fn write_piece(
        &mut self,
        interval: Interval,
        partition: u32,
        input: u32,
        row_offset: u64,
        batch: &RecordBatch,
    ) -> Result<()> {
        self.buf.clear();
        let ipc_err = |e: arrow_schema::ArrowError| {
            Error::internal(format!("encoding a spill piece as Arrow IPC: {e}"))
        };
        let opts = IpcWriteOptions::default()
            .try_with_compression(Some(CompressionType::ZSTD))
            .map_err(ipc_err)?;
        {
            let mut w = StreamWriter::try_new_with_options(&mut self.buf, &batch.schema(), opts)
                .map_err(ipc_err)?;
            w.write(batch).map_err(ipc_err)?;
            w.finish().map_err(ipc_err)?;
        }
        self.out
            .write_all(&self.buf)
            .map_err(|e| Error::io(&self.tmp, e))?;
        self.index.push(PieceMeta {
            interval,
            partition,
            input,
            row_offset,
            rows: batch.num_rows() as u64,
            pos: self.pos,
            len: self.buf.len() as u64,
            mem_bytes: batch.get_array_memory_size() as u64,
        });
        self.pos += self.buf.len() as u64;
        Ok(())
    }

    /// Write the index, fsync and move the file into place; returns the index.
    pub fn finish(mut self) -> Result<Vec<PieceMeta>> {
        let index = serde_json::to_vec(&self.index)
            .map_err(|e| Error::internal(format!("encoding a run index: {e}")))?;
        let crc = crc32c::crc32c(&index);
        let io = |e| Error::io(&self.tmp, e);
        self.out.write_all(&index).map_err(io)?;
        self.out
            .write_all(&(index.len() as u64).to_le_bytes())
            .map_err(io)?;
        self.out.write_all(&crc.to_le_bytes()).map_err(io)?;
        self.out.write_all(&RUN_MAGIC).map_err(io)?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&self.tmp, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        Ok(self.index)
    }
}

/// Read a run's index, checking its trailer.
pub(crate) fn read_index(path: &Path) -> Result<Vec<PieceMeta>> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let size = f.metadata().map_err(|e| Error::io(path, e))?.len();
    if size < RUN_TRAILER_SIZE as u64 {
        return Err(Error::corruption(
            path,
            "run trailer size",
            RUN_TRAILER_SIZE,
            size,
        ));
    }
    let mut trailer = [0u8; RUN_TRAILER_SIZE];
    f.seek(SeekFrom::End(-(RUN_TRAILER_SIZE as i64)))
        .and_then(|_| f.read_exact(&mut trailer))
        .map_err(|e| Error::io(path, e))?;
    if trailer[12..] != RUN_MAGIC {
        return Err(Error::corruption(
            path,
            "run magic",
            "BSLTRUN1",
            format!("{:?}", &trailer[12..]),
        ));
    }
    let mut len8 = [0u8; 8];
    len8.copy_from_slice(&trailer[..8]);
    let len = u64::from_le_bytes(len8);
    let mut crc4 = [0u8; 4];
    crc4.copy_from_slice(&trailer[8..12]);
    let crc = u32::from_le_bytes(crc4);
    if len > size - RUN_TRAILER_SIZE as u64 {
        return Err(Error::corruption(
            path,
            "run index length",
            format!("<= {size}"),
            len,
        ));
    }
    let mut index = vec![0u8; len as usize];
    f.seek(SeekFrom::End(-(RUN_TRAILER_SIZE as i64) - len as i64))
        .and_then(|_| f.read_exact(&mut index))
        .map_err(|e| Error::io(path, e))?;
    let found = crc32c::crc32c(&index);
    if found != crc {
        return Err(Error::corruption(path, "run index checksum", crc, found));
    }
    serde_json::from_slice(&index)
        .map_err(|e| Error::corruption(path, "run index", "JSON piece list", e))
}

/// Read one piece back.
pub(crate) fn read_piece(path: &Path, meta: &PieceMeta) -> Result<RecordBatch> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = vec![0u8; meta.len as usize];
    f.seek(SeekFrom::Start(meta.pos))
        .and_then(|_| f.read_exact(&mut buf))
        .map_err(|e| Error::io(path, e))?;
    let bad = |e: arrow_schema::ArrowError| {
        Error::corruption(
            path,
            format!("spill piece at byte {}", meta.pos),
            "an Arrow IPC stream",
            e,
        )
    };
    let mut reader = StreamReader::try_new(std::io::Cursor::new(buf), None).map_err(bad)?;
    match reader.next() {
        Some(b) => b.map_err(bad),
        None => Err(Error::corruption(
            path,
            format!("spill piece at byte {}", meta.pos),
            "one record batch",
            "none",
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use arrow_array::types::Int32Type;
    use arrow_array::{ArrayRef, DictionaryArray, Int64Array};

    use super::*;

    #[test]
    fn pieces_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("run-1.arrows");
        let dict: DictionaryArray<Int32Type> = vec!["a", "b", "a"].into_iter().collect();
        let batch = RecordBatch::try_from_iter([
            ("x", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            ("s", Arc::new(dict) as ArrayRef),
        ])
        .unwrap();
        let iv = Interval::new(0, 10).unwrap();
        let mut w = RunWriter::create(&path).unwrap();
        w.write_piece(iv, 0, 3, 100, &batch).unwrap();
        w.write_piece(iv, 1, 4, 0, &batch.slice(1, 2)).unwrap();
        let index = w.finish().unwrap();
        assert!(!path.with_extension("tmp").exists());
        assert_eq!(read_index(&path).unwrap(), index);
        assert_eq!(read_piece(&path, &index[0]).unwrap(), batch);
        assert_eq!(read_piece(&path, &index[1]).unwrap(), batch.slice(1, 2));
        // A damaged index is detected.
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - RUN_TRAILER_SIZE - 3] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(read_index(&path), Err(Error::Corruption { .. })));
    }
}
