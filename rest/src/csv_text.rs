//! CSV text as imports read it and exports write it (RFC 4180: `,` between cells, `"`
//! quoting with `""` for a quote, records ended by `\n` or `\r\n`).
//!
//! The reader keeps what typing needs and the `csv` crate does not tell: whether a cell
//! was quoted (an unquoted empty cell is NULL, a quoted one the empty string) and the
//! line each record starts on, for error messages. The writer quotes a cell when CSV
//! needs it or when the caller asks (see `export`).

/// One cell: its text and whether it was written between quotes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub quoted: bool,
}

/// One record and the 1-based line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub line: usize,
    pub cells: Vec<Cell>,
}

/// Malformed CSV at a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvError {
    pub line: usize,
    pub message: String,
}

/// Reads every record of `text`. Empty lines between records are skipped.
pub fn read(text: &str) -> Result<Vec<Record>, CsvError> {
    let bytes = text.as_bytes();
    let mut records = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < bytes.len() {
        // Skip empty lines.
        if bytes[i] == b'\n' {
            i += 1;
            line += 1;
            continue;
        }
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 2;
            line += 1;
            continue;
        }
        let start_line = line;
        let mut cells = Vec::new();
        loop {
            // One cell starting at i.
            if bytes.get(i) == Some(&b'"') {
                let cell_line = line;
                i += 1;
                let mut cell = String::new();
                let mut run = i;
                loop {
                    match bytes.get(i) {
                        None => {
                            return Err(CsvError {
                                line: cell_line,
                                message: "a quoted cell is not closed".into(),
                            });
                        }
                        Some(b'"') if bytes.get(i + 1) == Some(&b'"') => {
                            cell.push_str(&text[run..=i]);
                            i += 2;
                            run = i;
                        }
                        Some(b'"') => {
                            cell.push_str(&text[run..i]);
                            i += 1;
                            break;
                        }
                        Some(b'\n') => {
                            line += 1;
                            i += 1;
                        }
                        Some(_) => i += 1,
                    }
                }
                cells.push(Cell {
                    text: cell,
                    quoted: true,
                });
                match bytes.get(i) {
                    None | Some(b',') | Some(b'\n') => {}
                    Some(b'\r') if bytes.get(i + 1) == Some(&b'\n') => {}
                    Some(_) => {
                        return Err(CsvError {
                            line,
                            message: "text after the closing quote of a cell".into(),
                        });
                    }
                }
            } else {
                let start = i;
                while let Some(&b) = bytes.get(i) {
                    if b == b',' || b == b'\n' || (b == b'\r' && bytes.get(i + 1) == Some(&b'\n')) {
                        break;
                    }
                    if b == b'"' {
                        return Err(CsvError {
                            line,
                            message: "a quote inside an unquoted cell (quote the whole cell and double the quote)".into(),
                        });
                    }
                    i += 1;
                }
                cells.push(Cell {
                    text: text[start..i].to_string(),
                    quoted: false,
                });
            }
            match bytes.get(i) {
                Some(b',') => i += 1,
                Some(b'\r') => {
                    i += 2;
                    line += 1;
                    break;
                }
                Some(b'\n') => {
                    i += 1;
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        records.push(Record {
            line: start_line,
            cells,
        });
    }
    Ok(records)
}

/// Whether `text` must be quoted to be read back as one cell with this text.
pub fn needs_quotes(text: &str) -> bool {
    text.is_empty()
        || text
            .bytes()
            .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
}

/// Appends one cell (quoted when `quote` or when CSV needs it), after a `,` unless it is
/// the first of its record.
pub fn push_cell(out: &mut String, first: bool, text: &str, quote: bool) {
    if !first {
        out.push(',');
    }
    if quote || needs_quotes(text) {
        out.push('"');
        for c in text.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// Appends an unquoted empty cell (NULL).
pub fn push_null(out: &mut String, first: bool) {
    if !first {
        out.push(',');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(t: &str, q: bool) -> Cell {
        Cell {
            text: t.into(),
            quoted: q,
        }
    }

    #[test]
    fn quotes_commas_newlines_and_empty_cells() {
        let text = "id,a,b\r\n1,\"x, \"\"y\"\"\",\n\n2,\"two\nlines\",\"\"\n";
        let records = read(text).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[1].line, 2);
        assert_eq!(
            records[1].cells,
            vec![cell("1", false), cell("x, \"y\"", true), cell("", false)]
        );
        assert_eq!(records[2].line, 4);
        assert_eq!(
            records[2].cells,
            vec![cell("2", false), cell("two\nlines", true), cell("", true)]
        );
    }

    #[test]
    fn malformed_cells_name_their_line() {
        assert_eq!(read("a\n\"open").unwrap_err().line, 2);
        assert_eq!(read("a\nx\"y\n").unwrap_err().line, 2);
        assert_eq!(read("a\n\"x\"y\n").unwrap_err().line, 2);
    }

    #[test]
    fn written_cells_read_back() {
        let mut out = String::new();
        for (i, t) in ["plain", "a,b", "q\"q", "two\nlines", ""]
            .iter()
            .enumerate()
        {
            push_cell(&mut out, i == 0, t, false);
        }
        push_null(&mut out, false);
        let records = read(&out).unwrap();
        let texts: Vec<(&str, bool)> = records[0]
            .cells
            .iter()
            .map(|c| (c.text.as_str(), c.quoted))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("plain", false),
                ("a,b", true),
                ("q\"q", true),
                ("two\nlines", true),
                ("", true),
                ("", false)
            ]
        );
    }
}
