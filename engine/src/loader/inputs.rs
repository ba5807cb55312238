//! Input files: expanding the command line's files, directories and globs, telling formats and
//! compression apart, and opening files for streaming.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::loader::spec::{CsvOptions, InputFormat};

/// File format of one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// Apache Parquet.
    Parquet,
    /// Delimited text.
    Csv,
    /// Newline-delimited JSON.
    Json,
}

/// Stream compression of a text input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain.
    None,
    /// gzip (`.gz`), including concatenated members.
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
}

/// One resolved input file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// Absolute path.
    pub path: PathBuf,
    /// Size in bytes when the load started (part of the job's identity).
    pub size: u64,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const PARQUET_MAGIC: [u8; 4] = *b"PAR1";

/// Expand INPUT arguments (files, directories — walked recursively, skipping names starting
/// with `.` or `_` such as `_SUCCESS` — and glob patterns) into a sorted list of distinct
/// files. A name that matches nothing is an error: a typo must not load nothing silently.
pub fn resolve_inputs(args: &[String]) -> Result<Vec<InputFile>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for arg in args {
        let p = Path::new(arg);
        if p.exists() {
            collect(p, &mut paths)?;
            continue;
        }
        if arg.contains(['*', '?', '[']) {
            let matches = glob::glob(arg)
                .map_err(|e| Error::invalid(format!("input pattern `{arg}`: {e}")))?;
            let before = paths.len();
            for m in matches {
                let m = m.map_err(|e| {
                    let path = e.path().to_path_buf();
                    Error::io(path, e.into())
                })?;
                collect(&m, &mut paths)?;
            }
            if paths.len() == before {
                return Err(Error::NotFound(format!(
                    "input pattern `{arg}` matches no file"
                )));
            }
            continue;
        }
        return Err(Error::NotFound(format!(
            "input `{arg}`: no such file or directory"
        )));
    }
    let mut files = Vec::with_capacity(paths.len());
    for p in paths {
        let abs = std::path::absolute(&p).map_err(|e| Error::io(&p, e))?;
        let size = std::fs::metadata(&abs)
            .map_err(|e| Error::io(&abs, e))?
            .len();
        files.push(InputFile { path: abs, size });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|a, b| a.path == b.path);
    if files.is_empty() {
        return Err(Error::invalid(
            "no input files (the directories given are empty)",
        ));
    }
    Ok(files)
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
    if !meta.is_dir() {
        out.push(p.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
        .map_err(|e| Error::io(p, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|e| {
            e.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.') && !n.starts_with('_'))
        })
        .collect();
    entries.sort();
    for e in entries {
        collect(&e, out)?;
    }
    Ok(())
}

/// Tell an input's format and compression: the spec's `inputFormat` if set, else the file
/// name (`.parquet`, `.csv`, `.tsv`, `.json`/`.jsonl`/`.ndjson`, each optionally `.gz`/`.zst`),
/// else its first bytes.
pub fn detect(path: &Path, spec: Option<&InputFormat>) -> Result<(InputFormat, Compression)> {
    let head = read_head(path)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (stem, by_ext) = if let Some(s) = name.strip_suffix(".gz").or(name.strip_suffix(".gzip")) {
        (s, Some(Compression::Gzip))
    } else if let Some(s) = name.strip_suffix(".zst").or(name.strip_suffix(".zstd")) {
        (s, Some(Compression::Zstd))
    } else {
        (name.as_str(), None)
    };
    let compression = if head.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        by_ext.unwrap_or(Compression::None)
    };
    if let Some(f) = spec {
        if *f == InputFormat::Parquet && compression != Compression::None {
            return Err(Error::invalid(format!(
                "{}: a Parquet file cannot be stream-compressed (Parquet compresses its pages)",
                path.display()
            )));
        }
        return Ok((f.clone(), compression));
    }
    let ext = stem.rsplit('.').next().unwrap_or_default();
    let format = match ext {
        "parquet" | "parq" | "pq" => InputFormat::Parquet,
        "csv" => InputFormat::Csv(CsvOptions::with_delimiter(b',')),
        "tsv" | "tab" => InputFormat::Csv(CsvOptions::with_delimiter(b'\t')),
        "json" | "jsonl" | "ndjson" => InputFormat::Json,
        _ if compression == Compression::None && head.starts_with(&PARQUET_MAGIC) => {
            InputFormat::Parquet
        }
        _ if compression == Compression::None
            && head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') =>
        {
            InputFormat::Json
        }
        _ => {
            return Err(Error::invalid(format!(
                "{}: cannot tell the file format from its name or content; name it .parquet, \
                 .csv, .tsv or .json (optionally .gz/.zst), or set inputFormat in the spec",
                path.display()
            )));
        }
    };
    if format == InputFormat::Parquet && compression != Compression::None {
        return Err(Error::invalid(format!(
            "{}: a Parquet file cannot be stream-compressed (Parquet compresses its pages)",
            path.display()
        )));
    }
    Ok((format, compression))
}

fn read_head(path: &Path) -> Result<Vec<u8>> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = vec![0u8; 64];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    head.truncate(n);
    Ok(head)
}

/// Counts bytes read from the underlying file (compressed bytes, for progress).
#[derive(Debug)]
pub(crate) struct CountingReader<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Open a text input for streaming, decompressing as needed. `counter` counts file bytes.
pub(crate) fn open_text(
    path: &Path,
    compression: Compression,
    counter: Arc<AtomicU64>,
) -> Result<Box<dyn BufRead + Send>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let counted = CountingReader {
        inner: BufReader::with_capacity(1 << 20, file),
        counter,
    };
    Ok(match compression {
        Compression::None => Box::new(BufReader::with_capacity(1 << 20, counted)),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(counted),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            1 << 20,
            zstd::stream::read::Decoder::new(counted).map_err(|e| Error::io(path, e))?,
        )),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn resolves_files_dirs_and_globs() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        for f in ["a.csv", "b.json", "sub/c.csv", "sub/_SUCCESS", ".hidden"] {
            std::fs::write(d.path().join(f), "x").unwrap();
        }
        let root = d.path().to_str().unwrap().to_string();
        let all = resolve_inputs(std::slice::from_ref(&root)).unwrap();
        let names: Vec<_> = all
            .iter()
            .map(|f| {
                f.path
                    .strip_prefix(d.path())
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["a.csv", "b.json", "sub/c.csv"]);
        let csv = resolve_inputs(&[format!("{root}/**/*.csv"), format!("{root}/a.csv")]).unwrap();
        assert_eq!(csv.len(), 2);
        assert!(resolve_inputs(&[format!("{root}/*.parquet")]).is_err());
        assert!(resolve_inputs(&[format!("{root}/nope.csv")]).is_err());
    }

    #[test]
    fn detects_format_and_compression() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json.gz");
        std::fs::write(&p, [0x1f, 0x8b, 0, 0]).unwrap();
        assert_eq!(
            detect(&p, None).unwrap(),
            (InputFormat::Json, Compression::Gzip)
        );
        let p = d.path().join("noext");
        std::fs::write(&p, b"  {\"a\":1}").unwrap();
        assert_eq!(detect(&p, None).unwrap().0, InputFormat::Json);
        let p = d.path().join("data.tsv");
        std::fs::write(&p, b"a\tb").unwrap();
        assert!(matches!(detect(&p, None).unwrap().0, InputFormat::Csv(o) if o.delimiter == b'\t'));
        let p = d.path().join("mystery.bin");
        std::fs::write(&p, b"\x00\x01").unwrap();
        assert!(detect(&p, None).is_err());
    }
}
