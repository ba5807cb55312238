//! The realtime write-ahead log: segmented files of checksummed records, group commit.
//!
//! Layout: `<data_dir>/wal/<seq:020>.wal`, one file per segment of the log, `seq` increasing.
//!
//! ```text
//! WAL_FILE := WAL_MAGIC RECORD*
//! RECORD   := LEN (u32 LE, payload bytes) CRC (u32 LE, CRC-32C of the payload) PAYLOAD
//! ```
//!
//! A record is the accepted rows of one push; its payload encoding is [`record`]. Appends
//! write to the current file under a lock; durability is separate: [`Wal::sync_to`] makes every
//! record up to a ticket durable with one `fdatasync` shared by all pushes waiting at that time
//! (group commit: one caller syncs, the others wait for it). A file is fsynced before the log
//! moves on to the next one, so only the newest file can end in a torn record.
//!
//! Recovery: [`Wal::open`] checks the newest file. A record whose header or payload is cut short
//! or whose checksum fails is a torn tail there: the file is truncated at it (those pushes were
//! never acknowledged). Appends then go to a new file. [`Recovery::replay`] then reads the files
//! in order, one at a time (memory holds one file, not the whole log, and records are handed
//! out as slices of it); the same damage in an older file is corruption and an error.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};

pub mod record;

/// Directory under the data directory holding the WAL files.
pub const WAL_DIR: &str = "wal";
/// File extension of WAL files.
pub const WAL_FILE_EXTENSION: &str = "wal";
/// Magic bytes at the head of every WAL file (format version 1).
pub const WAL_MAGIC: [u8; 8] = *b"BSLTWAL1";
/// Size of the file header.
pub const WAL_HEADER_SIZE: usize = WAL_MAGIC.len();
/// Size of a record header: payload length and CRC-32C.
pub const RECORD_HEADER_SIZE: usize = 8;
/// Largest payload a record may have.
pub const MAX_RECORD_BYTES: usize = 1 << 30;

/// What recovery found: the files to replay, and what [`Wal::open`] cut from the newest.
#[derive(Debug, Default)]
pub struct Recovery {
    /// The log's files before the one [`Wal::open`] started, in order: (sequence number, path).
    files: Vec<(u64, PathBuf)>,
    /// Bytes cut from the tail of the newest file (a torn last write), 0 if none.
    pub truncated_bytes: u64,
}

impl Recovery {
    /// Call `f` with (file sequence number, payload) for every record, in log order, reading
    /// one file at a time. A damaged record (or file header) is corruption: the newest file's
    /// torn tail was cut by [`Wal::open`].
    pub fn replay(&self, mut f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        for (seq, path) in &self.files {
            let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
            if bytes.len() < WAL_HEADER_SIZE || bytes[..WAL_HEADER_SIZE] != WAL_MAGIC {
                return Err(bad_magic(path, &bytes));
            }
            let (records, end) = parse_records(&bytes);
            if end < bytes.len() {
                return Err(damaged(path, end));
            }
            for payload in records {
                f(*seq, payload)?;
            }
        }
        Ok(())
    }

    /// Every record's (file sequence number, payload), all in memory (tests and tools).
    pub fn records(&self) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut out = Vec::new();
        self.replay(|seq, payload| {
            out.push((seq, payload.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }
}

fn bad_magic(path: &Path, bytes: &[u8]) -> Error {
    Error::corruption(
        path,
        "WAL file magic",
        String::from_utf8_lossy(&WAL_MAGIC),
        format!("{:?}", &bytes[..bytes.len().min(WAL_HEADER_SIZE)]),
    )
}

fn damaged(path: &Path, offset: usize) -> Error {
    Error::corruption(
        path,
        format!("WAL record at offset {offset}"),
        "an intact record (length and CRC-32C)",
        "a damaged record in a file that is not the newest",
    )
}

/// A record ready to be appended: its header (payload length, CRC-32C) and payload in one
/// buffer, so [`Wal::append_framed`] writes it without copying the payload, and the checksum is
/// computed before the log's lock is taken. Built by writing the payload after the header room
/// of a [`FramedRecord::buffer`], then [`FramedRecord::seal`].
#[derive(Debug)]
pub struct FramedRecord(Vec<u8>);

impl FramedRecord {
    /// An empty record buffer: room for the header, capacity for `payload_capacity` bytes of
    /// payload after it.
    pub fn buffer(payload_capacity: usize) -> Vec<u8> {
        let mut buf = Vec::with_capacity(RECORD_HEADER_SIZE + payload_capacity);
        buf.resize(RECORD_HEADER_SIZE, 0);
        buf
    }

    /// Fill in the header of a buffer from [`FramedRecord::buffer`] whose payload has been
    /// written after the header room.
    pub fn seal(mut buf: Vec<u8>) -> Result<FramedRecord> {
        let Some(len) = buf.len().checked_sub(RECORD_HEADER_SIZE) else {
            return Err(Error::internal(
                "a WAL record buffer without its header room",
            ));
        };
        if len > MAX_RECORD_BYTES {
            return Err(Error::invalid(format!(
                "a push of {len} bytes is larger than the WAL record limit of {MAX_RECORD_BYTES} bytes; split it"
            )));
        }
        let crc = crc32c::crc32c(&buf[RECORD_HEADER_SIZE..]);
        buf[..4].copy_from_slice(&(len as u32).to_le_bytes());
        buf[4..RECORD_HEADER_SIZE].copy_from_slice(&crc.to_le_bytes());
        Ok(FramedRecord(buf))
    }

    /// A record of `payload` (copied).
    pub fn of_payload(payload: &[u8]) -> Result<FramedRecord> {
        let mut buf = FramedRecord::buffer(payload.len());
        buf.extend_from_slice(payload);
        FramedRecord::seal(buf)
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.0[RECORD_HEADER_SIZE..]
    }
}

/// A position in the log returned by [`Wal::append`]: the record's number and its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// Records appended since open, including this one.
    pub seq: u64,
    /// Sequence number of the file holding the record.
    pub file_seq: u64,
}

#[derive(Debug)]
struct WalState {
    file: Arc<File>,
    file_seq: u64,
    file_len: u64,
    appended: u64,
    synced: u64,
    syncing: bool,
    failed: Option<String>,
}

/// The write-ahead log of one node.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    max_file_bytes: u64,
    state: Mutex<WalState>,
    synced: Condvar,
}

fn file_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.{WAL_FILE_EXTENSION}"))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// The WAL files in `dir`, sorted by sequence number.
fn list_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(&format!(".{WAL_FILE_EXTENSION}")) else {
            continue;
        };
        if let Ok(seq) = stem.parse::<u64>() {
            out.push((seq, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Parse the records of one file's bytes: the intact records' payloads and the offset where
/// they end (`bytes.len()` when the whole file is intact).
fn parse_records(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut pos = WAL_HEADER_SIZE;
    loop {
        if pos == bytes.len() {
            return (out, pos);
        }
        let Some(head) = bytes.get(pos..pos + RECORD_HEADER_SIZE) else {
            return (out, pos);
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let start = pos + RECORD_HEADER_SIZE;
        let Some(payload) = start.checked_add(len).and_then(|end| bytes.get(start..end)) else {
            return (out, pos);
        };
        if len > MAX_RECORD_BYTES || crc32c::crc32c(payload) != crc {
            return (out, pos);
        }
        out.push(payload);
        pos = start + len;
    }
}

fn create_file(dir: &Path, seq: u64) -> Result<File> {
    let path = file_path(dir, seq);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    file.write_all(&WAL_MAGIC)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(&path, e))?;
    sync_dir(dir)?;
    Ok(file)
}

impl Wal {
    /// Open the log in `dir` (created if needed): check its newest file (cutting a torn tail)
    /// and start a new file for appends. The records are read afterwards, with
    /// [`Recovery::replay`].
    pub fn open(dir: &Path, max_file_bytes: u64) -> Result<(Wal, Recovery)> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut files = list_files(dir)?;
        let mut recovery = Recovery::default();
        let last_seq = files.last().map(|(s, _)| *s);
        if let Some((_, path)) = files.last() {
            // Only the newest file can be torn; it must be cut before appends go to a new
            // file, after which it is no longer the newest.
            let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
            if bytes.len() < WAL_HEADER_SIZE || bytes[..WAL_HEADER_SIZE] != WAL_MAGIC {
                if bytes.len() > WAL_HEADER_SIZE || !WAL_MAGIC.starts_with(&bytes) {
                    return Err(bad_magic(path, &bytes));
                }
                // Created but its header never reached the disk: nothing was written to it.
                fs::remove_file(path).map_err(|e| Error::io(path, e))?;
                files.pop();
            } else {
                let (_, end) = parse_records(&bytes);
                if end < bytes.len() {
                    let cut = (bytes.len() - end) as u64;
                    tracing::warn!(path = %path.display(), offset = end, bytes = cut, "truncating torn WAL tail");
                    let f = OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(|e| Error::io(path, e))?;
                    f.set_len(end as u64)
                        .and_then(|()| f.sync_all())
                        .map_err(|e| Error::io(path, e))?;
                    recovery.truncated_bytes = cut;
                }
            }
        }
        recovery.files = files;
        let seq = last_seq.map_or(1, |s| s + 1);
        let file = create_file(dir, seq)?;
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                max_file_bytes: max_file_bytes.max(WAL_HEADER_SIZE as u64 + 1),
                state: Mutex::new(WalState {
                    file: Arc::new(file),
                    file_seq: seq,
                    file_len: WAL_HEADER_SIZE as u64,
                    appended: 0,
                    synced: 0,
                    syncing: false,
                    failed: None,
                }),
                synced: Condvar::new(),
            },
            recovery,
        ))
    }

    /// The sequence number of the file appends go to.
    pub fn current_file(&self) -> u64 {
        self.state.lock().file_seq
    }

    /// Append one record of `payload` (copied into its frame; not yet durable: see
    /// [`Wal::sync_to`]).
    pub fn append(&self, payload: &[u8]) -> Result<Ticket> {
        self.append_framed(&FramedRecord::of_payload(payload)?)
    }

    /// Append one framed record (not yet durable: see [`Wal::sync_to`]).
    pub fn append_framed(&self, record: &FramedRecord) -> Result<Ticket> {
        let buf = &record.0;
        let mut st = self.state.lock();
        if let Some(why) = &st.failed {
            return Err(Error::internal(format!("the WAL is unusable: {why}")));
        }
        if st.file_len >= self.max_file_bytes {
            // Make the old file durable before moving on, so only the newest file can be torn.
            let path = file_path(&self.dir, st.file_seq);
            if let Err(e) = st.file.sync_data() {
                st.failed = Some(format!("fsync of {}: {e}", path.display()));
                return Err(Error::io(path, e));
            }
            st.synced = st.appended;
            let seq = st.file_seq + 1;
            st.file = Arc::new(create_file(&self.dir, seq)?);
            st.file_seq = seq;
            st.file_len = WAL_HEADER_SIZE as u64;
            self.synced.notify_all();
        }
        if let Err(e) = (&*st.file).write_all(buf) {
            // A partial write leaves a torn record that recovery cuts; stop appending after it.
            let path = file_path(&self.dir, st.file_seq);
            st.failed = Some(format!("write to {}: {e}", path.display()));
            return Err(Error::io(path, e));
        }
        st.file_len += buf.len() as u64;
        st.appended += 1;
        Ok(Ticket {
            seq: st.appended,
            file_seq: st.file_seq,
        })
    }

    /// Make every record up to `ticket` durable. Concurrent callers share one fsync.
    pub fn sync_to(&self, ticket: u64) -> Result<()> {
        let mut st = self.state.lock();
        loop {
            if st.synced >= ticket {
                return Ok(());
            }
            if let Some(why) = &st.failed {
                return Err(Error::internal(format!("the WAL is unusable: {why}")));
            }
            if st.syncing {
                self.synced.wait(&mut st);
                continue;
            }
            st.syncing = true;
            let target = st.appended;
            let file = st.file.clone();
            let seq = st.file_seq;
            drop(st);
            let res = file.sync_data();
            st = self.state.lock();
            st.syncing = false;
            match res {
                Ok(()) => st.synced = st.synced.max(target),
                Err(e) => {
                    let path = file_path(&self.dir, seq);
                    st.failed = Some(format!("fsync of {}: {e}", path.display()));
                }
            }
            self.synced.notify_all();
        }
    }

    /// Make every record appended so far durable.
    pub fn sync_all(&self) -> Result<()> {
        let target = self.state.lock().appended;
        self.sync_to(target)
    }

    /// Bytes in WAL files on disk (approximate: sizes at the time of the call).
    pub fn disk_bytes(&self) -> u64 {
        list_files(&self.dir)
            .map(|files| {
                files
                    .iter()
                    .filter_map(|(_, p)| fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Delete the files with a sequence number below `seq` (never the current file). Returns
    /// how many were deleted.
    pub fn remove_files_before(&self, seq: u64) -> Result<usize> {
        let current = self.current_file();
        let mut removed = 0;
        for (s, path) in list_files(&self.dir)? {
            if s < seq && s < current {
                fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn append_recover_and_cut_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (wal, rec) = Wal::open(dir.path(), 1 << 20).unwrap();
            assert!(rec.records().unwrap().is_empty());
            for i in 0..10u8 {
                let t = wal.append(&[i; 100]).unwrap();
                wal.sync_to(t.seq).unwrap();
            }
        }
        // Tear the last record.
        let files = list_files(dir.path()).unwrap();
        let (_, last) = files
            .iter()
            .find(|(_, p)| fs::metadata(p).unwrap().len() > 8)
            .unwrap();
        let len = fs::metadata(last).unwrap().len();
        let f = OpenOptions::new().write(true).open(last).unwrap();
        f.set_len(len - 3).unwrap();
        drop(f);
        let (_, rec) = Wal::open(dir.path(), 1 << 20).unwrap();
        let records = rec.records().unwrap();
        assert_eq!(records.len(), 9);
        assert_eq!(rec.truncated_bytes, 108 - 3);
        assert!(
            records
                .iter()
                .enumerate()
                .all(|(i, (_, payload))| *payload == vec![i as u8; 100])
        );
    }

    #[test]
    fn rotation_and_corrupt_older_file() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (wal, _) = Wal::open(dir.path(), 300).unwrap();
            for i in 0..10u8 {
                wal.append(&[i; 100]).unwrap();
            }
            wal.sync_all().unwrap();
        }
        let files = list_files(dir.path()).unwrap();
        assert!(files.len() >= 4, "{files:?}");
        let (_, rec) = Wal::open(dir.path(), 300).unwrap();
        let records = rec.records().unwrap();
        assert_eq!(records.len(), 10);
        // Read in log order, each with its file.
        assert!(
            records
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1[0] < w[1].1[0])
        );
        // Flip a payload byte in the first file: corruption, not a silent cut.
        let (_, first) = &files[0];
        let mut bytes = fs::read(first).unwrap();
        bytes[WAL_HEADER_SIZE + RECORD_HEADER_SIZE + 5] ^= 0xff;
        fs::write(first, bytes).unwrap();
        let (_, rec) = Wal::open(dir.path(), 300).unwrap();
        let err = rec.records().unwrap_err();
        assert!(matches!(err, Error::Corruption { .. }), "{err}");
        // The same damage in the newest file is a torn tail: cut, not an error.
        let files = list_files(dir.path()).unwrap();
        let newest = files
            .iter()
            .rev()
            .find(|(_, p)| fs::metadata(p).unwrap().len() > WAL_HEADER_SIZE as u64)
            .map(|(_, p)| p.clone())
            .unwrap();
        for (_, p) in &files {
            if *p != newest && fs::metadata(p).unwrap().len() <= WAL_HEADER_SIZE as u64 {
                fs::remove_file(p).unwrap();
            }
        }
        let mut bytes = fs::read(&newest).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&newest, bytes).unwrap();
        let (_, rec) = Wal::open(dir.path(), 300).unwrap();
        assert_eq!(rec.truncated_bytes, 108);
        assert!(
            rec.records().is_err(),
            "the older damaged file is still corrupt"
        );
    }
}
