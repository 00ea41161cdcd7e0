//! The layer pipeline: raw blob → blob digest check → decompression on a thread of its own,
//! handing 256 KiB chunks to the tar reader through a bounded channel (so a layer never costs
//! more than a few MiB of memory, whatever its size). The diff-id of a compressed layer is
//! hashed on the reading side, which otherwise waits for data: decompression, the slowest
//! step, keeps its thread to itself. An uncompressed blob is hashed once, by the pipeline: its
//! blob digest is its diff-id.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use flate2::bufread::MultiGzDecoder;

use crate::digest::{Algorithm, Digest, DigestingReader, Hasher};
use crate::error::ImageError;

const CHUNK: usize = 256 * 1024;
const CHANNEL_DEPTH: usize = 8;

/// How a layer blob is compressed, told by its first bytes (media types lie more often).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// Detects the compression from a blob's first bytes. xz and bzip2 are recognised only to be
    /// refused with a clear reason: no current runtime produces such layers.
    pub(crate) fn detect(head: &[u8]) -> Result<Compression, &'static str> {
        match head {
            [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok(Compression::Zstd),
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => {
                Err("xz-compressed layers are not supported")
            }
            [b'B', b'Z', b'h', ..] => Err("bzip2-compressed layers are not supported"),
            _ => Ok(Compression::None),
        }
    }
}

/// Digests and sizes measured while a layer streamed through the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDigests {
    pub blob: Digest,
    pub diff_id: Digest,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
    pub compression: Compression,
}

enum Message {
    /// First message: whether the reading side hashes the diff-id.
    Start {
        hash_here: bool,
    },
    /// A full-length buffer and how much of it holds data.
    Data(Vec<u8>, usize),
    Failed(io::Error),
    Done(PumpDone),
}

/// What the pipeline measured; the diff-id only when it hashed the tar itself.
struct PumpDone {
    blob: Digest,
    compressed_bytes: u64,
    compression: Compression,
    diff: Option<(Digest, u64)>,
}

/// The reading end of the pipeline: a plain `Read` of the uncompressed tar stream that ends
/// with an error if a digest did not match.
pub struct LayerStream {
    rx: Option<Receiver<Message>>,
    /// Read buffers go back to the pipeline for reuse: no allocation or zeroing per chunk.
    recycle: SyncSender<Vec<u8>>,
    /// Joined when the thread sends its last message, or on drop: dropping the receiver first
    /// makes the thread's next send fail, so it stops after at most one more chunk of input
    /// (for a registry stream, the next network read, bounded by the read timeout).
    thread: Option<std::thread::JoinHandle<()>>,
    current: Vec<u8>,
    len: usize,
    pos: usize,
    /// Bytes consumed so far (read or skipped): the position `Seek` reports.
    offset: u64,
    /// The diff-id hash of a compressed layer, fed with every chunk as it arrives.
    diff_hasher: Option<Hasher>,
    expected_diff_id: Option<Digest>,
    received: u64,
    input: String,
    done: Option<StreamDigests>,
    failed: bool,
}

impl LayerStream {
    /// Starts the pipeline over a raw layer blob (gzip, zstd or plain tar, told by its first
    /// bytes). Digests given are checked at the end of the stream; more than `max_bytes`
    /// decompressed is an error. `input` names the layer in errors.
    pub fn new(
        raw: Box<dyn Read + Send>,
        expected_blob: Option<Digest>,
        expected_diff_id: Option<Digest>,
        input: String,
        max_bytes: u64,
    ) -> Result<LayerStream, ImageError> {
        let (tx, rx) = sync_channel(CHANNEL_DEPTH);
        let (recycle, recycled) = sync_channel(CHANNEL_DEPTH + 2);
        let (pump_diff, pump_input) = (expected_diff_id.clone(), input.clone());
        let thread = std::thread::Builder::new()
            .name("osprey-layer".into())
            .spawn(move || {
                let outcome = pump(
                    raw,
                    (expected_blob, pump_diff),
                    (&pump_input, max_bytes),
                    &tx,
                    &recycled,
                );
                let last = match outcome {
                    Ok(digests) => Message::Done(digests),
                    Err(e) => Message::Failed(e),
                };
                let _ = tx.send(last);
            })
            .map_err(|e| ImageError::Internal(format!("cannot start layer thread: {e}")))?;
        Ok(LayerStream {
            rx: Some(rx),
            recycle,
            thread: Some(thread),
            current: Vec::new(),
            len: 0,
            pos: 0,
            offset: 0,
            diff_hasher: None,
            expected_diff_id,
            received: 0,
            input,
            done: None,
            failed: false,
        })
    }

    /// Digests of the stream, once it was read to the end without error.
    pub fn digests(&self) -> Option<&StreamDigests> {
        self.done.as_ref()
    }
}

impl LayerStream {
    fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LayerStream {
    fn drop(&mut self) {
        self.rx = None;
        self.join();
    }
}

impl LayerStream {
    /// Makes the next chunk current. `Ok(false)` at the verified end of the stream.
    fn fill(&mut self) -> io::Result<bool> {
        while self.pos >= self.len {
            if self.done.is_some() {
                return Ok(false);
            }
            if self.failed {
                return Err(io::Error::other("layer stream already failed"));
            }
            let Some(rx) = self.rx.as_ref() else {
                return Err(io::Error::other("layer stream closed"));
            };
            match rx.recv() {
                Ok(Message::Start { hash_here }) => {
                    if hash_here {
                        let algorithm = self
                            .expected_diff_id
                            .as_ref()
                            .map_or(Algorithm::Sha256, Digest::algorithm);
                        self.diff_hasher = Some(Hasher::new(algorithm));
                    }
                }
                Ok(Message::Data(chunk, len)) => {
                    if let Some(h) = self.diff_hasher.as_mut() {
                        h.update(&chunk[..len]);
                    }
                    self.received += len as u64;
                    let used = std::mem::replace(&mut self.current, chunk);
                    if !used.is_empty() {
                        let _ = self.recycle.try_send(used);
                    }
                    self.len = len;
                    self.pos = 0;
                }
                Ok(Message::Done(d)) => {
                    self.join();
                    let (diff_id, uncompressed_bytes) = match (d.diff, self.diff_hasher.take()) {
                        (Some(measured), _) => measured,
                        (None, Some(h)) => (h.finish(), self.received),
                        (None, None) => {
                            self.failed = true;
                            return Err(io::Error::other("layer pipeline sent no diff-id"));
                        }
                    };
                    if let Some(expected) = &self.expected_diff_id
                        && *expected != diff_id
                    {
                        self.failed = true;
                        return Err(ImageError::DigestMismatch {
                            input: format!("{} (uncompressed)", self.input),
                            expected: expected.to_string(),
                            actual: diff_id.to_string(),
                        }
                        .into_io());
                    }
                    self.done = Some(StreamDigests {
                        blob: d.blob,
                        diff_id,
                        compressed_bytes: d.compressed_bytes,
                        uncompressed_bytes,
                        compression: d.compression,
                    });
                }
                Ok(Message::Failed(e)) => {
                    self.failed = true;
                    self.join();
                    return Err(e);
                }
                Err(_) => {
                    self.failed = true;
                    return Err(io::Error::other("layer decompression thread ended early"));
                }
            }
        }
        Ok(true)
    }
}

impl Read for LayerStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || !self.fill()? {
            return Ok(0);
        }
        let n = buf.len().min(self.len - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        self.offset += n as u64;
        Ok(n)
    }
}

/// Forward seeks only (`SeekFrom::Current(n ≥ 0)`), by dropping bytes instead of copying them:
/// the tar reader skips the content of entries nobody reads this way.
impl io::Seek for LayerStream {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        let io::SeekFrom::Current(delta) = pos else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "layer streams only seek forward",
            ));
        };
        let mut remaining = u64::try_from(delta).map_err(|_| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "layer streams only seek forward",
            )
        })?;
        while remaining > 0 {
            if !self.fill()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "unexpected end of layer during skip",
                ));
            }
            let take = remaining.min((self.len - self.pos) as u64);
            self.pos += take as usize;
            self.offset += take;
            remaining -= take;
        }
        Ok(self.offset)
    }
}

fn pump(
    raw: Box<dyn Read + Send>,
    (expected_blob, expected_diff_id): (Option<Digest>, Option<Digest>),
    (input, max_bytes): (&str, u64),
    tx: &SyncSender<Message>,
    recycled: &Receiver<Vec<u8>>,
) -> io::Result<PumpDone> {
    let limit = Limit { input, max_bytes };
    let blob_algorithm = expected_blob.as_ref().map(Digest::algorithm);
    let blob = DigestingReader::new(raw, expected_blob, format!("{input} (blob)"));
    let mut buffered = BufReader::with_capacity(CHUNK, blob);
    let compression = {
        let head = buffered.fill_buf()?;
        Compression::detect(head)
            .map_err(|reason| ImageError::malformed(input, reason).into_io())?
    };
    // An uncompressed blob is its own tar: its digest is the diff-id, hashed once here (unless
    // the two are given in different algorithms).
    let blob_is_tar = compression == Compression::None
        && match (blob_algorithm, &expected_diff_id) {
            (Some(b), Some(d)) => b == d.algorithm(),
            (None, Some(d)) => d.algorithm() == Algorithm::Sha256,
            _ => true,
        };
    let closed = || io::Error::other("layer reader went away");
    tx.send(Message::Start {
        hash_here: !blob_is_tar,
    })
    .map_err(|_| closed())?;
    // Each arm decodes to the end, then hands back the blob reader so the rest of the blob
    // (gzip trailers, padding) is hashed too.
    let mut blob = match compression {
        Compression::Gzip => {
            let mut decoder = MultiGzDecoder::new(buffered);
            forward(&mut decoder, &limit, tx, recycled)?;
            decoder.into_inner().into_inner()
        }
        Compression::Zstd => {
            let mut decoder = zstd::Decoder::with_buffer(buffered)?;
            forward(&mut decoder, &limit, tx, recycled)?;
            decoder.finish().into_inner()
        }
        Compression::None => {
            forward(&mut buffered, &limit, tx, recycled)?;
            buffered.into_inner()
        }
    };
    io::copy(&mut blob, &mut io::sink())?;
    let (digest, bytes) = finished(&blob);
    Ok(PumpDone {
        blob: digest.clone(),
        compressed_bytes: bytes,
        compression,
        diff: blob_is_tar.then_some((digest, bytes)),
    })
}

fn finished<R: Read>(r: &DigestingReader<R>) -> (Digest, u64) {
    (
        r.digest().cloned().expect("forward() reads to the end"),
        r.byte_count(),
    )
}

/// The most a layer may decompress to, and the layer's name for the error.
struct Limit<'a> {
    input: &'a str,
    max_bytes: u64,
}

/// Reads `r` to its end, sending full chunks down the channel; more than the limit is an
/// error. A closed channel (the reader stopped early) ends the work quietly.
fn forward(
    r: &mut impl Read,
    limit: &Limit<'_>,
    tx: &SyncSender<Message>,
    recycled: &Receiver<Vec<u8>>,
) -> io::Result<()> {
    let mut total = 0u64;
    loop {
        let mut chunk = recycled.try_recv().unwrap_or_else(|_| vec![0u8; CHUNK]);
        let mut filled = 0;
        while filled < CHUNK {
            match r.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            return Ok(());
        }
        total += filled as u64;
        if total > limit.max_bytes {
            return Err(ImageError::malformed(
                limit.input,
                format!(
                    "more than {} bytes once decompressed (the layer size limit)",
                    limit.max_bytes
                ),
            )
            .into_io());
        }
        if tx.send(Message::Data(chunk, filled)).is_err() {
            return Err(io::Error::other("layer reader went away"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(
        raw: Vec<u8>,
        blob: Option<Digest>,
        diff: Option<Digest>,
    ) -> Result<(Vec<u8>, StreamDigests), ImageError> {
        let mut s = LayerStream::new(
            Box::new(io::Cursor::new(raw)),
            blob,
            diff,
            "layer 1".into(),
            u64::MAX,
        )?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)
            .map_err(|e| ImageError::from_io("layer 1", e))?;
        Ok((out, s.digests().cloned().unwrap()))
    }

    #[test]
    fn gzip_zstd_plain_roundtrip_with_digests() {
        let data: Vec<u8> = (0..1_000_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let diff = Digest::sha256_of(&data);
        let gz = gzip(&data);
        let zs = zstd::encode_all(&data[..], 3).unwrap();
        for (raw, kind) in [
            (gz, Compression::Gzip),
            (zs, Compression::Zstd),
            (data.clone(), Compression::None),
        ] {
            let blob = Digest::sha256_of(&raw);
            let (out, d) = read_all(raw.clone(), Some(blob.clone()), Some(diff.clone())).unwrap();
            assert_eq!(out, data);
            assert_eq!(d.compression, kind);
            assert_eq!(d.blob, blob);
            assert_eq!(d.diff_id, diff);
            assert_eq!(d.compressed_bytes, raw.len() as u64);
            assert_eq!(d.uncompressed_bytes, data.len() as u64);
        }
    }

    #[test]
    fn digest_mismatch_is_an_error() {
        let data = b"hello layer".repeat(100);
        let gz = gzip(&data);
        let wrong = Digest::sha256_of(b"other");
        let err = read_all(gz.clone(), Some(wrong.clone()), None).unwrap_err();
        assert!(
            matches!(err, ImageError::DigestMismatch { ref input, .. } if input.ends_with("(blob)")),
            "{err}"
        );
        let err = read_all(gz, None, Some(wrong)).unwrap_err();
        assert!(
            matches!(err, ImageError::DigestMismatch { ref input, .. } if input.contains("uncompressed")),
            "{err}"
        );
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_layer_limit() {
        // 64 MiB of zeros in well under a megabyte of gzip, against a 1 MiB limit.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let mut s = LayerStream::new(
            Box::new(io::Cursor::new(bomb)),
            None,
            None,
            "layer 2".into(),
            1 << 20,
        )
        .unwrap();
        let mut out = Vec::new();
        let err = ImageError::from_io("layer 2", s.read_to_end(&mut out).unwrap_err());
        assert_eq!(
            err.to_string(),
            "layer 2: more than 1048576 bytes once decompressed (the layer size limit)"
        );
        assert!(out.len() <= (1 << 20) + CHUNK);
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let data = b"some tar content".repeat(1000);
        let mut gz = gzip(&data);
        let mid = gz.len() / 2;
        gz[mid] ^= 0xff;
        gz[mid + 1] ^= 0xff;
        assert!(read_all(gz.clone(), None, None).is_err());
        gz.truncate(mid);
        let err = read_all(gz, None, None).unwrap_err();
        assert!(err.to_string().starts_with("layer 1"), "{err}");
    }

    #[test]
    fn refuses_xz() {
        let err = read_all(vec![0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2], None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "layer 1: xz-compressed layers are not supported"
        );
    }
}
