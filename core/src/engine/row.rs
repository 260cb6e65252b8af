//! Rows: how a record becomes a line of CSV or JSON for the file and stdout sinks.
//!
//! A [`Row`] names its fields and hands each to a [`RowWriter`], which formats it as the
//! sink asks: a CSV line (with a header line of the field names first) or a JSON object
//! per line (JSON lines). Formatting appends to a buffer the sink owns and reuses, so a
//! row costs no allocation once the buffer has grown to the longest line.
//!
//! ```text
//! csv        = header "\n" (line "\n")*      header = name ("," name)*
//! line       = field ("," field)*            field  = number | text (quoted if it holds , " or \n)
//! json lines = ("{" "\"" name "\":" value ("," "\"" name "\":" value)* "}" "\n")*
//! ```

use super::generator::Event;
use super::item::Stamped;
use super::window::WindowResult;
use std::io::Write;

/// The output formats of the row sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// Comma-separated values, with a header line.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

/// A record the row sinks can write.
pub trait Row {
    /// Passes every field, in order, to `out`.
    fn write_row(&self, out: &mut RowWriter<'_>);
}

/// One value of a row.
pub trait Field {
    /// Appends the value: `json` chooses JSON syntax (strings quoted and escaped).
    fn write_field(&self, buffer: &mut Vec<u8>, json: bool);
}

/// Formats the fields of one row into a buffer.
pub struct RowWriter<'a> {
    buffer: &'a mut Vec<u8>,
    mode: Mode,
    fields: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Header,
    Csv,
    Json,
}

impl RowWriter<'_> {
    /// Writes the field `name` with `value`.
    pub fn field(&mut self, name: &str, value: &dyn Field) {
        let separator = if self.fields == 0 { "" } else { "," };
        self.buffer.extend_from_slice(separator.as_bytes());
        match self.mode {
            Mode::Header => self.buffer.extend_from_slice(name.as_bytes()),
            Mode::Csv => value.write_field(self.buffer, false),
            Mode::Json => {
                write!(self.buffer, "\"{name}\":").expect("writing to a Vec");
                value.write_field(self.buffer, true);
            }
        }
        self.fields += 1;
    }
}

/// Appends `row` as one line in `format`; with `header`, a CSV header line first.
pub fn format_row<R: Row + ?Sized>(row: &R, format: RowFormat, header: bool, buffer: &mut Vec<u8>) {
    if header && format == RowFormat::Csv {
        row.write_row(&mut RowWriter { buffer, mode: Mode::Header, fields: 0 });
        buffer.push(b'\n');
    }
    match format {
        RowFormat::Csv => row.write_row(&mut RowWriter { buffer, mode: Mode::Csv, fields: 0 }),
        RowFormat::JsonLines => {
            buffer.push(b'{');
            row.write_row(&mut RowWriter { buffer, mode: Mode::Json, fields: 0 });
            buffer.push(b'}');
        }
    }
    buffer.push(b'\n');
}

macro_rules! number_field {
    ($($type:ty),*) => {$(
        impl Field for $type {
            fn write_field(&self, buffer: &mut Vec<u8>, _json: bool) {
                write!(buffer, "{self}").expect("writing to a Vec");
            }
        }
    )*};
}

number_field!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, bool);

impl Field for f64 {
    fn write_field(&self, buffer: &mut Vec<u8>, json: bool) {
        if json && !self.is_finite() {
            buffer.extend_from_slice(b"null");
        } else {
            write!(buffer, "{self}").expect("writing to a Vec");
        }
    }
}

impl Field for str {
    fn write_field(&self, buffer: &mut Vec<u8>, json: bool) {
        if json {
            buffer.push(b'"');
            for character in self.chars() {
                match character {
                    '"' => buffer.extend_from_slice(b"\\\""),
                    '\\' => buffer.extend_from_slice(b"\\\\"),
                    '\n' => buffer.extend_from_slice(b"\\n"),
                    '\r' => buffer.extend_from_slice(b"\\r"),
                    '\t' => buffer.extend_from_slice(b"\\t"),
                    c if (c as u32) < 0x20 => {
                        write!(buffer, "\\u{:04x}", c as u32).expect("writing to a Vec")
                    }
                    c => buffer.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
            buffer.push(b'"');
        } else if self.contains([',', '"', '\n', '\r']) {
            buffer.push(b'"');
            buffer.extend_from_slice(self.replace('"', "\"\"").as_bytes());
            buffer.push(b'"');
        } else {
            buffer.extend_from_slice(self.as_bytes());
        }
    }
}

impl Field for &str {
    fn write_field(&self, buffer: &mut Vec<u8>, json: bool) {
        (**self).write_field(buffer, json);
    }
}

impl Field for String {
    fn write_field(&self, buffer: &mut Vec<u8>, json: bool) {
        self.as_str().write_field(buffer, json);
    }
}

impl Row for Event {
    fn write_row(&self, out: &mut RowWriter<'_>) {
        out.field("key", &self.key);
        out.field("value", &self.value);
    }
}

impl Row for &str {
    fn write_row(&self, out: &mut RowWriter<'_>) {
        out.field("line", self);
    }
}

impl Row for u64 {
    fn write_row(&self, out: &mut RowWriter<'_>) {
        out.field("value", self);
    }
}

impl<T: Row> Row for Stamped<T> {
    fn write_row(&self, out: &mut RowWriter<'_>) {
        out.field("timestamp", &self.timestamp);
        self.record.write_row(out);
    }
}

impl<K: Field, V: Field> Row for WindowResult<K, V> {
    fn write_row(&self, out: &mut RowWriter<'_>) {
        out.field("key", &self.key);
        out.field("window_start", &self.window_start);
        out.field("window_end", &self.window_end);
        out.field("value", &self.value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_format_as_csv_with_a_header_and_as_json_lines() {
        let result = WindowResult { key: 7u64, window_start: 0, window_end: 10, value: 2.5f64 };
        let mut buffer = Vec::new();
        format_row(&result, RowFormat::Csv, true, &mut buffer);
        format_row(&result, RowFormat::Csv, false, &mut buffer);
        assert_eq!(buffer, b"key,window_start,window_end,value\n7,0,10,2.5\n7,0,10,2.5\n");
        buffer.clear();
        let line = Stamped { timestamp: 3, record: "a \"quoted\", line" };
        format_row(&line, RowFormat::JsonLines, true, &mut buffer);
        format_row(&line, RowFormat::Csv, false, &mut buffer);
        let expected = "{\"timestamp\":3,\"line\":\"a \\\"quoted\\\", line\"}\n\
                        3,\"a \"\"quoted\"\", line\"\n";
        assert_eq!(String::from_utf8(buffer).unwrap(), expected);
    }
}
