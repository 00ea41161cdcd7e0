//! Reading audit logs: JSON lines (what `--audit-log-path` writes), pretty-printed documents
//! (an `EventList` saved by hand, a CloudWatch export, a JSON array of events), gzip, and logs
//! that grow while they are read.
//!
//! Input arrives in chunks ([`Reader::push`]) so that the same code serves a whole file, stdin,
//! and `--follow`. A line is decoded on its own when it is a whole JSON document — the fast,
//! common case. A line that opens a document without closing it starts a multi-line document,
//! whose end is found by tracking bracket depth byte by byte (never by re-parsing a growing
//! prefix). Problems are counted with the line they start on and never stop the read.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use flate2::read::MultiGzDecoder;
use serde_json::value::RawValue;

use super::Event;
use super::decode::{DecodeError, Decoder};

/// Limits on the input as a whole.
#[derive(Debug, Clone, Copy)]
pub struct ReaderLimits {
    /// One line (an event or a webhook batch). The API server truncates batches at 10 MiB.
    pub max_line: usize,
    /// One multi-line document.
    pub max_document: usize,
    /// Malformed inputs kept with their reason (all are counted).
    pub max_examples: usize,
}

impl Default for ReaderLimits {
    fn default() -> Self {
        ReaderLimits {
            max_line: 16 << 20,
            max_document: 256 << 20,
            max_examples: 100,
        }
    }
}

/// One input that held no event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// 1-based line the document starts on.
    pub line: u64,
    pub reason: String,
}

/// What was read.
#[derive(Debug, Clone, Default)]
pub struct ReadStats {
    pub bytes: u64,
    pub events: u64,
    pub malformed: u64,
    /// The first [`ReaderLimits::max_examples`] malformed inputs.
    pub examples: Vec<Malformed>,
}

impl ReadStats {
    fn malformed(&mut self, line: u64, reason: String, keep: usize) {
        self.malformed += 1;
        if self.examples.len() < keep {
            self.examples.push(Malformed { line, reason });
        }
    }
}

/// Frames chunks of input into documents and decodes them.
pub struct Reader {
    decoder: Decoder,
    limits: ReaderLimits,
    buf: Vec<u8>,
    /// Lines consumed so far.
    line: u64,
    doc: Option<PendingDocument>,
    /// The rest of an over-long line is being skipped.
    skipping: bool,
    pub stats: ReadStats,
}

struct PendingDocument {
    start_line: u64,
    bytes: Vec<u8>,
    depth: Depth,
}

impl Reader {
    pub fn new(decoder: Decoder, limits: ReaderLimits) -> Reader {
        Reader {
            decoder,
            limits,
            buf: Vec::new(),
            line: 0,
            doc: None,
            skipping: false,
            stats: ReadStats::default(),
        }
    }

    /// Feeds the next bytes of the input.
    pub fn push<F: FnMut(Event<'_>)>(&mut self, chunk: &[u8], sink: &mut F) {
        self.stats.bytes += chunk.len() as u64;
        let mut rest = chunk;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let (head, tail) = rest.split_at(i);
            rest = &tail[1..];
            if self.skipping {
                self.skipping = false;
                self.line += 1;
                continue;
            }
            if self.buf.is_empty() {
                self.line += 1;
                self.take_line(head, sink);
            } else {
                let mut line = std::mem::take(&mut self.buf);
                line.extend_from_slice(head);
                self.line += 1;
                self.take_line(&line, sink);
                line.clear();
                self.buf = line;
            }
        }
        if self.skipping {
            return;
        }
        if self.buf.len() + rest.len() > self.limits.max_line {
            let line = self.line + 1;
            self.stats.malformed(
                line,
                format!(
                    "line longer than the limit of {} bytes",
                    self.limits.max_line
                ),
                self.limits.max_examples,
            );
            self.buf.clear();
            self.skipping = true;
            return;
        }
        self.buf.extend_from_slice(rest);
    }

    /// Ends the input: decodes a last line without a newline and reports a document left open.
    pub fn finish<F: FnMut(Event<'_>)>(&mut self, sink: &mut F) {
        if !self.buf.is_empty() && !self.skipping {
            let line = std::mem::take(&mut self.buf);
            self.line += 1;
            self.take_line(&line, sink);
        }
        self.skipping = false;
        if let Some(doc) = self.doc.take() {
            self.stats.malformed(
                doc.start_line,
                "document not closed before the end of the input".into(),
                self.limits.max_examples,
            );
        }
    }

    /// Reads a whole input (gzip or not) to its end.
    pub fn read_all<R: Read, F: FnMut(Event<'_>)>(
        &mut self,
        input: R,
        sink: &mut F,
    ) -> io::Result<()> {
        let mut input = decompressed(input)?;
        let mut chunk = vec![0u8; 256 << 10];
        loop {
            let n = match input.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.push(&chunk[..n], sink);
        }
        self.finish(sink);
        Ok(())
    }

    /// Reads a file and keeps reading what is appended to it, across rotation (the path is
    /// reopened when it names a new file) and truncation, until `stop` is set. Plain text only:
    /// a compressed log does not grow.
    pub fn follow<F: FnMut(Event<'_>)>(
        &mut self,
        path: &Path,
        poll: Duration,
        stop: &AtomicBool,
        sink: &mut F,
    ) -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        use std::os::unix::fs::MetadataExt;
        let mut file = File::open(path)?;
        let mut id = file.metadata().map(|m| (m.dev(), m.ino()))?;
        let mut pos = 0u64;
        let mut chunk = vec![0u8; 256 << 10];
        loop {
            let n = file.read(&mut chunk)?;
            if n > 0 {
                pos += n as u64;
                self.push(&chunk[..n], sink);
                continue;
            }
            if stop.load(Ordering::Relaxed) {
                self.finish(sink);
                return Ok(());
            }
            std::thread::sleep(poll);
            match std::fs::metadata(path) {
                Ok(m) if (m.dev(), m.ino()) != id => {
                    // Rotated: what the old file still had was read above; start the new one.
                    if let Ok(f) = File::open(path) {
                        self.finish(sink);
                        file = f;
                        id = (m.dev(), m.ino());
                        pos = 0;
                    }
                }
                Ok(m) if m.len() < pos => {
                    // Truncated in place (copytruncate).
                    self.finish(sink);
                    file.seek(SeekFrom::Start(0))?;
                    pos = 0;
                }
                _ => {}
            }
        }
    }

    fn take_line<F: FnMut(Event<'_>)>(&mut self, line: &[u8], sink: &mut F) {
        // A line opening an object at column 0 while a document is pending: the pending one
        // was a truncated line of a JSON-lines log (pretty-printed documents indent what they
        // nest). It is reported, and must not swallow the events that follow.
        if line.first() == Some(&b'{')
            && let Some(doc) = self.doc.take()
        {
            self.stats.malformed(
                doc.start_line,
                "incomplete JSON document (truncated line?)".into(),
                self.limits.max_examples,
            );
        }
        if let Some(mut doc) = self.doc.take() {
            if doc.bytes.len() + line.len() + 1 > self.limits.max_document {
                self.stats.malformed(
                    doc.start_line,
                    format!(
                        "document larger than the limit of {} bytes",
                        self.limits.max_document
                    ),
                    self.limits.max_examples,
                );
                return;
            }
            doc.bytes.extend_from_slice(line);
            doc.bytes.push(b'\n');
            if doc.depth.scan(line) {
                let (events, errors) = self.decode(&doc.bytes, sink);
                self.record(events, errors, doc.start_line);
            } else {
                self.doc = Some(doc);
            }
            return;
        }
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            return;
        }
        let opens = matches!(trimmed[0], b'{' | b'[');
        let closes = matches!(trimmed[trimmed.len() - 1], b'}' | b']');
        // The fast path: a line that looks whole is decoded without a separate scan; only a
        // line that cannot be whole, or fails to decode, is checked for an opened document.
        if opens && !closes && self.start_document(trimmed) {
            return;
        }
        let (events, errors) = self.decode(trimmed, sink);
        if events == 0 && !errors.is_empty() && opens && self.start_document(trimmed) {
            return;
        }
        self.record(events, errors, self.line);
    }

    /// Starts a multi-line document when `first` opens one it does not close.
    fn start_document(&mut self, first: &[u8]) -> bool {
        let mut depth = Depth::default();
        if depth.scan(first) {
            return false;
        }
        let mut bytes = first.to_vec();
        bytes.push(b'\n');
        self.doc = Some(PendingDocument {
            start_line: self.line,
            bytes,
            depth,
        });
        true
    }

    fn record(&mut self, events: usize, errors: Vec<DecodeError>, line: u64) {
        self.stats.events += events as u64;
        for e in errors {
            self.stats
                .malformed(line, e.to_string(), self.limits.max_examples);
        }
    }

    fn decode<F: FnMut(Event<'_>)>(
        &mut self,
        doc: &[u8],
        sink: &mut F,
    ) -> (usize, Vec<DecodeError>) {
        let doc = doc.trim_ascii();
        if doc.first() != Some(&b'[') {
            let d = self.decoder.decode(doc, sink);
            return (d.events, d.errors);
        }
        // A JSON array of events or batches.
        let mut events = 0;
        let mut errors = Vec::new();
        match serde_json::from_slice::<Vec<&RawValue>>(doc) {
            Ok(items) => {
                for item in items {
                    let d = self.decoder.decode(item.get().as_bytes(), sink);
                    events += d.events;
                    errors.extend(d.errors);
                }
            }
            Err(e) => errors.push(super::decode::json_error(e)),
        }
        (events, errors)
    }
}

/// Tracks bracket depth across lines, outside strings.
#[derive(Default)]
struct Depth {
    depth: i64,
    in_string: bool,
    escaped: bool,
}

impl Depth {
    /// Scans more bytes; true when the document opened by the first byte is closed (or the
    /// brackets cannot balance, which the JSON parser then reports).
    fn scan(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if self.in_string {
                match b {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth <= 0 {
                        return true;
                    }
                }
                _ => {}
            }
        }
        false
    }
}

/// The input, decompressed when it starts with the gzip magic.
pub fn decompressed<'a, R: Read + 'a>(input: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut input = BufReader::with_capacity(256 << 10, input);
    let head = io::BufRead::fill_buf(&mut input)?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(MultiGzDecoder::new(input)))
    } else {
        Ok(Box::new(input))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const EV: &str = r#"{"kind":"Event","auditID":"1","verb":"get","stage":"ResponseComplete","user":{"username":"u"},"objectRef":{"resource":"pods"}}"#;

    fn read(input: &[u8], chunk: usize) -> (Vec<String>, ReadStats) {
        let mut r = Reader::new(Decoder::default(), ReaderLimits::default());
        let mut ids = Vec::new();
        let mut sink = |e: Event<'_>| ids.push(e.audit_id.into_owned());
        for c in input.chunks(chunk.max(1)) {
            r.push(c, &mut sink);
        }
        r.finish(&mut sink);
        (ids, r.stats)
    }

    #[test]
    fn json_lines_any_chunking() {
        let input = format!("{EV}\n\n{EV}\r\nnot json\n{EV}");
        for chunk in [1, 3, 7, 64, 4096] {
            let (ids, stats) = read(input.as_bytes(), chunk);
            assert_eq!(ids.len(), 3, "chunk {chunk}");
            assert_eq!(stats.malformed, 1);
            assert_eq!(stats.examples[0].line, 4);
            assert!(stats.examples[0].reason.contains("invalid JSON"));
        }
    }

    #[test]
    fn pretty_printed_documents_and_arrays() {
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(&format!(
                r#"{{"kind":"EventList","items":[{EV},{EV}]}}"#
            ))
            .unwrap(),
        )
        .unwrap();
        let input = format!("{pretty}\n{EV}\n[{EV},\n {EV}]\n");
        let (ids, stats) = read(input.as_bytes(), 5);
        assert_eq!((ids.len(), stats.malformed), (5, 0));
        // Brackets inside strings do not end a document.
        let tricky = "{\"kind\":\"Event\",\"verb\":\"get\",\n\"requestURI\":\"/a}]\\\"{\"\n}\n";
        let (ids, stats) = read(tricky.as_bytes(), 2);
        assert_eq!((ids.len(), stats.malformed), (1, 0));
    }

    #[test]
    fn a_truncated_line_does_not_swallow_the_next_events() {
        let input = format!("{}\n{EV}\n{EV}\n", &EV[..40]);
        let (ids, stats) = read(input.as_bytes(), 7);
        assert_eq!(ids.len(), 2);
        assert_eq!(stats.malformed, 1);
        assert_eq!(stats.examples[0].line, 1);
        assert!(stats.examples[0].reason.contains("truncated"));
    }

    #[test]
    fn unclosed_and_oversized() {
        let (ids, stats) = read(format!("{EV}\n{{\"kind\":\n").as_bytes(), 10);
        assert_eq!(ids.len(), 1);
        assert_eq!(stats.examples[0].line, 2);
        assert!(stats.examples[0].reason.contains("not closed"));

        let mut r = Reader::new(
            Decoder::default(),
            ReaderLimits {
                max_line: 200,
                ..ReaderLimits::default()
            },
        );
        let long = format!("{{\"x\":\"{}\"}}\n{EV}\n", "a".repeat(1000));
        let mut n = 0;
        for c in long.as_bytes().chunks(50) {
            r.push(c, &mut |_| n += 1);
        }
        r.finish(&mut |_| n += 1);
        assert_eq!(n, 1);
        assert_eq!(r.stats.malformed, 1);
        assert!(r.stats.examples[0].reason.contains("longer than"));
    }

    #[test]
    fn gzip_input() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        writeln!(gz, "{EV}\n{EV}").unwrap();
        let bytes = gz.finish().unwrap();
        let mut r = Reader::new(Decoder::default(), ReaderLimits::default());
        let mut n = 0;
        r.read_all(&bytes[..], &mut |_| n += 1).unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn follow_across_rotation() {
        // Each step waits for the event the one before made the reader deliver, never for a
        // time: a line appended in two writes, then a rotation to a new file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, format!("{EV}\n")).unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (p, s) = (path.clone(), stop.clone());
        let t = std::thread::spawn(move || {
            let mut r = Reader::new(Decoder::default(), ReaderLimits::default());
            r.follow(&p, Duration::from_millis(10), &s, &mut |e| {
                tx.send(e.audit_id.into_owned()).unwrap()
            })
        });
        let next = || rx.recv_timeout(Duration::from_secs(60)).unwrap();
        assert_eq!(next(), "1");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&EV.as_bytes()[..20]).unwrap();
        f.flush().unwrap();
        f.write_all(&EV.as_bytes()[20..]).unwrap();
        f.write_all(b"\n").unwrap();
        drop(f);
        assert_eq!(next(), "1");
        std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
        std::fs::write(&path, format!("{}\n", EV.replace("\"1\"", "\"2\""))).unwrap();
        assert_eq!(next(), "2");
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap().unwrap();
        assert!(rx.try_recv().is_err(), "nothing more was delivered");
    }
}
