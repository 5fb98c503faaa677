//! Reading lines of bounded length from a child's pipe.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One line read from the stream, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// The line was longer than the limit and was dropped; `len` bytes.
    TooLong {
        len: usize,
    },
    /// The line was not UTF-8.
    NotUtf8,
}

/// Splits a byte stream into lines of at most `max` bytes. Cancel-safe: a
/// partially read line is kept in `self` across cancelled calls.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    max: usize,
    buf: Vec<u8>,
    /// Bytes of the current line when it already exceeded `max`.
    overflow: Option<usize>,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        Self {
            inner,
            max,
            buf: Vec::new(),
            overflow: None,
        }
    }

    /// The next line, or `None` at end of stream. A last line without a
    /// newline is returned as a line.
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                if self.buf.is_empty() && self.overflow.is_none() {
                    return Ok(None);
                }
                return Ok(Some(self.finish()));
            }
            let (chunk_len, consumed, complete) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i, i + 1, true),
                None => (available.len(), available.len(), false),
            };
            match self.overflow.as_mut() {
                Some(len) => *len += chunk_len,
                None if self.buf.len() + chunk_len > self.max => {
                    self.overflow = Some(self.buf.len() + chunk_len);
                    self.buf.clear();
                }
                None => self.buf.extend_from_slice(&available[..chunk_len]),
            }
            self.inner.consume(consumed);
            if complete {
                return Ok(Some(self.finish()));
            }
        }
    }

    fn finish(&mut self) -> Line {
        if let Some(len) = self.overflow.take() {
            self.buf.clear();
            return Line::TooLong { len };
        }
        let bytes = std::mem::take(&mut self.buf);
        match String::from_utf8(bytes) {
            Ok(mut text) => {
                if text.ends_with('\r') {
                    text.pop();
                }
                Line::Text(text)
            }
            Err(_) => Line::NotUtf8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8], max: usize) -> Vec<Line> {
        // A tiny buffer makes lines span several reads.
        let reader = tokio::io::BufReader::with_capacity(4, input);
        let mut lines = LineReader::new(reader, max);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            out.push(line);
        }
        out
    }

    #[tokio::test]
    async fn splits_and_bounds() {
        let lines = all(b"short\nthis one is too long\nok\n\xff\xfe\nlast", 10).await;
        assert_eq!(
            lines,
            vec![
                Line::Text("short".into()),
                Line::TooLong { len: 20 },
                Line::Text("ok".into()),
                Line::NotUtf8,
                Line::Text("last".into()),
            ]
        );
    }

    #[tokio::test]
    async fn exact_limit_and_empty_lines() {
        let lines = all(b"0123456789\n\n", 10).await;
        assert_eq!(
            lines,
            vec![Line::Text("0123456789".into()), Line::Text(String::new())]
        );
        assert!(all(b"", 10).await.is_empty());
        assert_eq!(
            all(b"01234567890", 10).await,
            vec![Line::TooLong { len: 11 }]
        );
    }
}
