//! `tissdb import` and `tissdb export`: files in and out of a running server over REST.
//!
//! Import sends the file to `POST /<c>/_import` in chunks of about `--chunk-size` bytes,
//! cut at record boundaries: CSV chunks repeat the header row, NDJSON chunks are runs of
//! lines, and JSON-array and XML files are decoded here (XML with the engine's own
//! codec, so typing is the server's) and sent as NDJSON with type markers. Each chunk is
//! imported all or none; the file as a whole is not atomic when it spans several chunks.
//! Errors are reported with the file's line or document number.
//!
//! Export reads `GET /<c>` page by page (`X-Next-After`) and writes CSV, NDJSON or XML.
//! A progress bar goes to stderr only when stderr is a terminal.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::blocking::Client;
use serde_json::Value as Json;

/// File formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FileFormat {
    Csv,
    Ndjson,
    Json,
    Xml,
}

impl FileFormat {
    fn from_path(path: &Path) -> Option<FileFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(FileFormat::Csv),
            "ndjson" | "jsonl" => Some(FileFormat::Ndjson),
            "json" => Some(FileFormat::Json),
            "xml" => Some(FileFormat::Xml),
            _ => None,
        }
    }
}

/// What `tissdb import` was asked to do.
pub struct ImportArgs {
    pub url: String,
    pub collection: String,
    pub file: PathBuf,
    pub format: Option<FileFormat>,
    pub chunk_size: u64,
    pub create: bool,
}

/// What `tissdb export` was asked to do.
pub struct ExportArgs {
    pub url: String,
    pub collection: String,
    pub file: Option<PathBuf>,
    pub format: Option<FileFormat>,
    pub page_size: usize,
}

fn client() -> Result<Client, String> {
    Client::builder()
        .timeout(Duration::from_secs(600))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))
}

fn progress(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    }
    let bar = ProgressBar::new(total);
    let template = if total > 0 {
        "{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})"
    } else {
        "{msg} {spinner} {pos} documents"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// Where a chunk's documents sit in the file, to translate the server's positions.
struct ChunkPlace {
    /// Documents in the chunks before this one.
    rows_before: u64,
    /// For line formats: the file line of the chunk's first body line, and how many
    /// lines of the chunk come before it (the repeated CSV header).
    first_line: Option<(u64, u64)>,
}

struct Importer<'a> {
    client: Client,
    endpoint: String,
    content_type: &'static str,
    file: &'a Path,
    imported: u64,
    bar: ProgressBar,
}

impl Importer<'_> {
    /// Sends one chunk; on an error, the message with the file's positions.
    fn send(
        &mut self,
        body: Vec<u8>,
        rows: u64,
        place: ChunkPlace,
        bytes: u64,
    ) -> Result<(), String> {
        if rows == 0 {
            self.bar.inc(bytes);
            return Ok(());
        }
        let response = self
            .client
            .post(&self.endpoint)
            .header("Content-Type", self.content_type)
            .body(body)
            .send()
            .map_err(|e| format!("cannot reach the server at {}: {e}", self.endpoint))?;
        let status = response.status();
        let text = response.text().unwrap_or_default();
        if status.is_success() {
            let n = serde_json::from_str::<Json>(&text)
                .ok()
                .and_then(|j| j["imported"].as_u64())
                .unwrap_or(rows);
            self.imported += n;
            self.bar.inc(bytes);
            return Ok(());
        }
        let error = serde_json::from_str::<Json>(&text)
            .ok()
            .map(|j| j["error"].clone())
            .unwrap_or(Json::Null);
        let code = error["code"].as_str().unwrap_or("?");
        let message = error["message"].as_str().unwrap_or(text.as_str());
        let mut place_text = String::new();
        if let (Some(line), Some((first, skip))) = (error["line"].as_u64(), place.first_line)
            && line > skip
        {
            place_text = format!("line {}", first + line - skip - 1);
        }
        if let Some(row) = error["row"].as_u64() {
            if !place_text.is_empty() {
                place_text.push_str(", ");
            }
            place_text.push_str(&format!("document {}", place.rows_before + row));
        }
        let at = if place_text.is_empty() {
            String::new()
        } else {
            format!(" at {place_text} of {}", self.file.display())
        };
        Err(format!(
            "the server refused the chunk{at} (HTTP {status}, {code}): {message}\n\
             nothing of that chunk was stored; {} documents of earlier chunks were imported",
            self.imported
        ))
    }
}

/// Reads one CSV record (lines until the quotes balance); None at the end.
fn read_csv_record(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<u64>> {
    let mut lines = 0;
    let mut quotes = 0usize;
    loop {
        let start = buf.len();
        let n = reader.read_until(b'\n', buf)?;
        if n == 0 {
            return Ok(if lines == 0 { None } else { Some(lines) });
        }
        lines += 1;
        quotes += buf[start..].iter().filter(|&&b| b == b'"').count();
        if quotes.is_multiple_of(2) {
            if buf.last() != Some(&b'\n') {
                buf.push(b'\n');
            }
            return Ok(Some(lines));
        }
    }
}

/// `tissdb import`.
pub fn import(args: ImportArgs) -> Result<(), String> {
    let format = args
        .format
        .or_else(|| FileFormat::from_path(&args.file))
        .ok_or_else(|| {
            format!(
                "cannot tell the format of {} from its extension; pass --format csv|ndjson|json|xml",
                args.file.display()
            )
        })?;
    let file =
        File::open(&args.file).map_err(|e| format!("cannot open {}: {e}", args.file.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let client = client()?;
    let base = args.url.trim_end_matches('/');
    if args.create {
        let r = client
            .put(format!("{base}/{}", args.collection))
            .send()
            .map_err(|e| format!("cannot reach the server at {base}: {e}"))?;
        if !(r.status().is_success() || r.status().as_u16() == 409) {
            return Err(format!(
                "cannot create collection {}: HTTP {} {}",
                args.collection,
                r.status(),
                r.text().unwrap_or_default()
            ));
        }
    }
    let started = Instant::now();
    let mut importer = Importer {
        client,
        endpoint: format!("{base}/{}/_import", args.collection),
        content_type: if format == FileFormat::Csv {
            "text/csv"
        } else {
            "application/x-ndjson"
        },
        file: &args.file,
        imported: 0,
        bar: progress(size, "importing"),
    };
    let chunk = args.chunk_size.max(1) as usize;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    match format {
        FileFormat::Csv => {
            let mut header = Vec::new();
            let Some(header_lines) = read_csv_record(&mut reader, &mut header)
                .map_err(|e| format!("reading {}: {e}", args.file.display()))?
            else {
                return Err(format!(
                    "{} is empty: a CSV file starts with a header row",
                    args.file.display()
                ));
            };
            let mut line = header_lines + 1;
            let mut rows_before = 0;
            loop {
                let mut body = header.clone();
                let (first_line, mut rows, mut lines) = (line, 0u64, 0u64);
                while body.len() < chunk {
                    match read_csv_record(&mut reader, &mut body)
                        .map_err(|e| format!("reading {}: {e}", args.file.display()))?
                    {
                        Some(n) => {
                            rows += 1;
                            lines += n;
                        }
                        None => break,
                    }
                }
                let bytes = (body.len() - header.len()) as u64;
                let done = rows == 0;
                importer.send(
                    body,
                    rows,
                    ChunkPlace {
                        rows_before,
                        first_line: Some((first_line, header_lines)),
                    },
                    bytes,
                )?;
                if done {
                    break;
                }
                rows_before += rows;
                line += lines;
            }
        }
        FileFormat::Ndjson => {
            let mut line = 1;
            let mut rows_before = 0;
            loop {
                let mut body = Vec::new();
                let (first_line, mut rows, mut lines) = (line, 0u64, 0u64);
                while body.len() < chunk {
                    let start = body.len();
                    let n = reader
                        .read_until(b'\n', &mut body)
                        .map_err(|e| format!("reading {}: {e}", args.file.display()))?;
                    if n == 0 {
                        break;
                    }
                    lines += 1;
                    if !body[start..].iter().all(u8::is_ascii_whitespace) {
                        rows += 1;
                    }
                    if body.last() != Some(&b'\n') {
                        body.push(b'\n');
                    }
                }
                let bytes = body.len() as u64;
                let done = lines == 0;
                importer.send(
                    body,
                    rows,
                    ChunkPlace {
                        rows_before,
                        first_line: Some((first_line, 0)),
                    },
                    bytes,
                )?;
                if done {
                    break;
                }
                rows_before += rows;
                line += lines;
            }
        }
        FileFormat::Json | FileFormat::Xml => {
            let mut bytes = Vec::new();
            reader
                .read_to_end(&mut bytes)
                .map_err(|e| format!("reading {}: {e}", args.file.display()))?;
            let docs: Vec<Json> = if format == FileFormat::Json {
                match serde_json::from_slice::<Json>(&bytes)
                    .map_err(|e| format!("{}: malformed JSON: {e}", args.file.display()))?
                {
                    Json::Array(items) => items,
                    one @ Json::Object(_) => vec![one],
                    _ => {
                        return Err(format!(
                            "{}: expected a JSON array of objects",
                            args.file.display()
                        ));
                    }
                }
            } else {
                let limits = tissdb::doc::Limits::default();
                tissdb::doc::xml::parse_documents(&bytes, &limits)
                    .map_err(|e| format!("{}: {e}", args.file.display()))?
                    .into_iter()
                    .map(|o| tissdb::doc::json::to_json(&tissdb::doc::Value::Object(Box::new(o))))
                    .collect()
            };
            let per_doc = (bytes.len() as u64) / (docs.len().max(1) as u64);
            drop(bytes);
            let mut rows_before = 0;
            let mut docs = docs.into_iter().peekable();
            while docs.peek().is_some() {
                let mut body = Vec::new();
                let mut rows = 0u64;
                while body.len() < chunk {
                    let Some(doc) = docs.next() else { break };
                    serde_json::to_writer(&mut body, &doc).map_err(|e| e.to_string())?;
                    body.push(b'\n');
                    rows += 1;
                }
                importer.send(
                    body,
                    rows,
                    ChunkPlace {
                        rows_before,
                        first_line: None,
                    },
                    per_doc * rows,
                )?;
                rows_before += rows;
            }
        }
    }
    importer.bar.finish_and_clear();
    eprintln!(
        "imported {} documents into {} in {:.1} s",
        importer.imported,
        args.collection,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Percent-encodes a query-string value.
fn encode_query(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The number of CSV records in `text` (newlines outside quotes).
fn count_records(text: &[u8]) -> u64 {
    let mut quotes = 0usize;
    let mut n = 0;
    for &b in text {
        if b == b'"' {
            quotes += 1;
        } else if b == b'\n' && quotes.is_multiple_of(2) {
            n += 1;
        }
    }
    n
}

/// The byte length of the first CSV record of `text` (its header row).
fn first_record_len(text: &[u8]) -> usize {
    let mut quotes = 0usize;
    for (i, &b) in text.iter().enumerate() {
        if b == b'"' {
            quotes += 1;
        } else if b == b'\n' && quotes.is_multiple_of(2) {
            return i + 1;
        }
    }
    text.len()
}

/// The children of an XML `<documents>` page: the text between the root's start tag and
/// its end tag (empty for `<documents/>`).
fn xml_children(page: &str) -> &str {
    let Some(start) = page.find("<documents") else {
        return "";
    };
    let Some(gt) = page[start..].find('>') else {
        return "";
    };
    let open_end = start + gt + 1;
    if page[..open_end].ends_with("/>") {
        return "";
    }
    let close = page.rfind("</documents>").unwrap_or(page.len());
    page[open_end..close].trim_matches(['\n', '\r'])
}

/// `tissdb export`.
pub fn export(args: ExportArgs) -> Result<(), String> {
    let format = args
        .format
        .or_else(|| args.file.as_deref().and_then(FileFormat::from_path))
        .unwrap_or(FileFormat::Csv);
    let accept = match format {
        FileFormat::Csv => "text/csv",
        FileFormat::Ndjson => "application/json",
        FileFormat::Xml => "application/xml",
        FileFormat::Json => {
            return Err("export writes csv, ndjson or xml (--format)".into());
        }
    };
    let mut out: Box<dyn Write> = match &args.file {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let write_err = |e: std::io::Error| format!("writing the export: {e}");
    let client = client()?;
    let base = format!("{}/{}", args.url.trim_end_matches('/'), args.collection);
    let bar = progress(0, "exporting");
    let started = Instant::now();
    let mut after: Option<String> = None;
    let mut count = 0u64;
    let mut first = true;
    if format == FileFormat::Xml {
        out.write_all(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<documents xmlns:t=\"urn:tissdb\">\n",
        )
        .map_err(write_err)?;
    }
    loop {
        let mut url = format!("{base}?limit={}", args.page_size);
        if let Some(a) = &after {
            // Already percent-encoded (the server's X-Next-After, or encode_query).
            url.push_str("&after=");
            url.push_str(a);
        }
        let response = client
            .get(&url)
            .header("Accept", accept)
            .send()
            .map_err(|e| format!("cannot reach the server at {base}: {e}"))?;
        let status = response.status();
        let next = response
            .headers()
            .get("x-next-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response
            .text()
            .map_err(|e| format!("reading an answer: {e}"))?;
        if !status.is_success() {
            return Err(format!("the server answered HTTP {status}: {text}"));
        }
        let next = match format {
            FileFormat::Csv => {
                let bytes = text.as_bytes();
                let skip = if first { 0 } else { first_record_len(bytes) };
                let body = &bytes[skip..];
                count += count_records(body);
                if first {
                    count = count.saturating_sub(1);
                }
                out.write_all(body).map_err(write_err)?;
                next
            }
            FileFormat::Xml => {
                let children = xml_children(&text);
                count += children.matches("\n  <document").count() as u64
                    + u64::from(children.starts_with("  <document"));
                if !children.is_empty() {
                    out.write_all(children.as_bytes()).map_err(write_err)?;
                    out.write_all(b"\n").map_err(write_err)?;
                }
                next
            }
            _ => {
                let page: Json = serde_json::from_str(&text)
                    .map_err(|e| format!("the server's answer is not JSON: {e}"))?;
                for doc in page["documents"].as_array().into_iter().flatten() {
                    serde_json::to_writer(&mut out, doc).map_err(|e| e.to_string())?;
                    out.write_all(b"\n").map_err(write_err)?;
                    count += 1;
                }
                page["next_after"].as_str().map(encode_query)
            }
        };
        first = false;
        bar.set_position(count);
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    if format == FileFormat::Xml {
        out.write_all(b"</documents>\n").map_err(write_err)?;
    }
    out.flush().map_err(write_err)?;
    bar.finish_and_clear();
    eprintln!(
        "exported {count} documents of {} in {:.1} s",
        args.collection,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_span_quoted_newlines() {
        let mut r = std::io::Cursor::new(b"a,b\n1,\"x\ny\"\n2,z".to_vec());
        let mut buf = Vec::new();
        assert_eq!(read_csv_record(&mut r, &mut buf).unwrap(), Some(1));
        assert_eq!(read_csv_record(&mut r, &mut buf).unwrap(), Some(2));
        assert_eq!(read_csv_record(&mut r, &mut buf).unwrap(), Some(1));
        assert_eq!(read_csv_record(&mut r, &mut buf).unwrap(), None);
        assert_eq!(buf, b"a,b\n1,\"x\ny\"\n2,z\n");
        assert_eq!(first_record_len(b"\"a\nb\",c\n1,2\n"), 8);
    }

    #[test]
    fn xml_pages_give_their_children() {
        assert_eq!(xml_children("<?xml version=\"1.0\"?>\n<documents/>\n"), "");
        assert_eq!(
            xml_children(
                "<documents xmlns:t=\"urn:tissdb\">\n  <document id=\"a\"/>\n</documents>\n"
            ),
            "  <document id=\"a\"/>"
        );
    }
}
