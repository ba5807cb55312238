//! A single-pass scanner of one JSON object row, for [`super::JsonRowReader`].
//!
//! It walks the bytes once, with no [`serde_json::Value`] tree and no serde visitor: keys are
//! matched to the reader's fields as they are met, values of those fields become
//! [`InputValue`]s with strings borrowed from the text, and values of other keys are checked and
//! skipped. It is strict: whatever it accepts is valid JSON read exactly as serde_json reads it
//! (the rare tokens it does not read itself — strings with escapes, numbers with a fraction, an
//! exponent, many digits or a minus zero — are handed to serde_json one token at a time), and
//! anything else gives `None`, so the caller's general reader decides and says why.

use std::borrow::Cow;

use super::InputValue;

/// Nesting depth past which a skipped value is left to the general reader (serde_json allows
/// 128 levels; the scanner gives up earlier, never later).
const MAX_SKIP_DEPTH: u32 = 64;

/// Most decimal digits of an integer read without serde_json: any 18-digit number fits an
/// `i64`.
const FAST_INT_DIGITS: usize = 18;

/// A position in one row's text.
pub(super) struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `text`.
    pub(super) fn new(text: &'a str) -> Scanner<'a> {
        Scanner {
            text,
            bytes: text.as_bytes(),
            pos: 0,
        }
    }

    /// Skip JSON whitespace.
    #[inline]
    pub(super) fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next byte, not consumed.
    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Consume `c` if it is next.
    #[inline]
    pub(super) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Whether the whole text has been read.
    pub(super) fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    /// A string token (the scanner is at its opening quote): borrowed from the text when it has
    /// no escapes, else decoded by serde_json.
    pub(super) fn string(&mut self) -> Option<Cow<'a, str>> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        let open = self.pos;
        let mut i = special_byte(self.bytes, open + 1);
        match *self.bytes.get(i)? {
            b'"' => {
                self.pos = i + 1;
                // Both ends are ASCII quotes, so they are character boundaries.
                return Some(Cow::Borrowed(&self.text[open + 1..i]));
            }
            b'\\' => {}
            _ => return None,
        }
        // With escapes: find the closing quote, then let serde_json decode (and check) it.
        loop {
            match *self.bytes.get(i)? {
                b'"' => break,
                b'\\' => i += 2,
                0..=0x1f => return None,
                _ => i += 1,
            }
        }
        let token = self.text.get(open..=i)?;
        let s: String = serde_json::from_str(token).ok()?;
        self.pos = i + 1;
        Some(Cow::Owned(s))
    }

    /// Consume the key `"name"` if it is next, for a `name` that needs no escapes in JSON
    /// (see [`plain_key`]): then the key's text is exactly the name's bytes between quotes.
    #[inline]
    pub(super) fn eat_plain_key(&mut self, name: &str) -> bool {
        let start = self.pos + 1;
        let end = start + name.len();
        if self.peek() == Some(b'"')
            && self.bytes.get(start..end) == Some(name.as_bytes())
            && self.bytes.get(end) == Some(&b'"')
        {
            self.pos = end + 1;
            true
        } else {
            false
        }
    }

    /// A number token (the scanner is at its first byte), read as [`InputValue::from_json`]
    /// reads a JSON number: `Long` if it is an integer in range, else `Double`.
    fn number(&mut self) -> Option<InputValue<'a>> {
        let start = self.pos;
        let b = self.bytes;
        let mut i = start;
        let negative = b.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        let int_start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let int_digits = i - int_start;
        let mut plain = true;
        if b.get(i) == Some(&b'.') {
            plain = false;
            i += 1;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        if let Some(b'e' | b'E') = b.get(i) {
            plain = false;
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        self.pos = i;
        let leading_zero = int_digits > 1 && b[int_start] == b'0';
        if plain && int_digits > 0 && int_digits <= FAST_INT_DIGITS && !leading_zero {
            let mut v: i64 = 0;
            for &d in &b[int_start..i] {
                v = v * 10 + i64::from(d - b'0');
            }
            // serde_json reads `-0` as the double -0.0: leave it to serde_json.
            if !(negative && v == 0) {
                return Some(InputValue::Long(if negative { -v } else { v }));
            }
        }
        let n: serde_json::Number = serde_json::from_str(self.text.get(start..i)?).ok()?;
        if let Some(v) = n.as_i64() {
            Some(InputValue::Long(v))
        } else {
            n.as_f64().map(InputValue::Double)
        }
    }

    /// The literal `word` (the scanner is at its first byte).
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Some(())
        } else {
            None
        }
    }

    /// A scalar value: string, number, `true`, `false` or `null`.
    fn scalar(&mut self) -> Option<InputValue<'a>> {
        match self.peek()? {
            b'"' => self.string().map(InputValue::Str),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal(b"true").map(|()| InputValue::Bool(true)),
            b'f' => self.literal(b"false").map(|()| InputValue::Bool(false)),
            b'n' => self.literal(b"null").map(|()| InputValue::Null),
            _ => None,
        }
    }

    /// A field's value: a scalar or a list of scalars (`None` for objects and nested lists,
    /// which the general reader names).
    pub(super) fn field_value(&mut self) -> Option<InputValue<'a>> {
        if !self.eat(b'[') {
            return self.scalar();
        }
        let mut items = Vec::new();
        self.skip_ws();
        if self.eat(b']') {
            return Some(InputValue::List(items));
        }
        loop {
            self.skip_ws();
            items.push(self.scalar()?);
            self.skip_ws();
            if self.eat(b']') {
                return Some(InputValue::List(items));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// Check and skip any JSON value (of a key no field reads).
    pub(super) fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_SKIP_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => {
                self.pos += 1;
                self.skip_ws();
                if self.eat(b'}') {
                    return Some(());
                }
                loop {
                    self.skip_ws();
                    if self.peek() != Some(b'"') {
                        return None;
                    }
                    self.string()?;
                    self.skip_ws();
                    if !self.eat(b':') {
                        return None;
                    }
                    self.skip_ws();
                    self.skip_value(depth + 1)?;
                    self.skip_ws();
                    if self.eat(b'}') {
                        return Some(());
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                self.skip_ws();
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.skip_ws();
                    self.skip_value(depth + 1)?;
                    self.skip_ws();
                    if self.eat(b']') {
                        return Some(());
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            _ => self.scalar().map(|_| ()),
        }
    }
}

/// Whether `name` is written in JSON as its own bytes between quotes (no quote, backslash or
/// control character to escape), so [`Scanner::eat_plain_key`] may match it byte for byte.
pub(super) fn plain_key(name: &str) -> bool {
    !name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
}

/// The index of the first byte at or after `from` that ends a plain run of string content: a
/// quote, a backslash or a control character (`bytes.len()` if none). Eight bytes at a time.
#[inline]
fn special_byte(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    // Per byte: the high bit is set in the lowest byte that is zero (higher bytes may be
    // flagged falsely after a true one, which is why only the lowest flag is used).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let flags = zero(w ^ (ONES * u64::from(b'"')))
            | zero(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGHS);
        if flags != 0 {
            return i + (flags.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}
