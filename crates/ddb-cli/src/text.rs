//! Text of the data made safe and readable on a terminal: [`escape`], the one escaping function
//! that every human-readable printer uses, and columns measured by display width.
//!
//! Anyone can write a message, a handle or a display name (the course app, the AWS console, a
//! script), so a printer cannot trust them: an ESC can clear the screen or, with OSC 52, set the
//! clipboard; a CR or a newline can forge a line of output; a bidi control can reorder what is
//! shown. [`escape`] writes each of them as visible ASCII that says which character it was.

use std::borrow::Cow;
use std::fmt::Write as _;
use unicode_width::UnicodeWidthChar;

/// True for the characters that [`escape`] writes as an escape: the control characters (C0
/// U+0000-U+001F, DEL U+007F, C1 U+0080-U+009F), the bidirectional formatting characters
/// (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069), the line and paragraph separators
/// (U+2028, U+2029), and the invisible format characters that make two texts look the same (a
/// handle `bay` U+200B `ko` beside `bayko`): the soft hyphen U+00AD, U+034F, U+115F, U+1160,
/// U+180E, U+200B-U+200D, U+2060-U+2064, U+206A-U+206F, U+3164, U+FEFF, U+FFA0, U+FFF9-U+FFFB
/// and the tags U+E0000-U+E007F. (An emoji sequence joined by U+200D then shows its joiners: a
/// price paid for handles that cannot pass for others.)
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
        || matches!(
            c,
            '\u{ad}'
                | '\u{34f}'
                | '\u{115f}'
                | '\u{1160}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200d}'
                | '\u{2060}'..='\u{2064}'
                | '\u{206a}'..='\u{206f}'
                | '\u{3164}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{e0000}'..='\u{e007f}'
        )
}

/// `s` as it may be shown on a terminal: `\n`, `\r` and `\t` for newline, carriage return and
/// tab, `\u{HEX}` (lowercase hex, as Rust writes it) for every other character of
/// [`needs_escape`]: `\u{1b}` for ESC, `\u{7}` for BEL, `\u{0}` for NUL, `\u{202e}` for a
/// right-to-left override. A backslash is written `\\`, so that the escaped text reads back to
/// exactly one original: `a\u{1b}` is what the six characters `a\u{1b}` of a message show as
/// `a\\u{1b}`. Everything else, non-ASCII letters included, is kept.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c == '\\' || needs_escape(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// Appends `c` as [`escape`] writes it.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if needs_escape(c) => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// The display width of `s` on a terminal, in columns: 2 for a CJK character, 0 for a combining
/// mark. Meant for text that [`escape`] made: a control character has no width of its own.
pub fn width(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `s` escaped and padded with spaces to `columns` display columns (longer text is kept whole).
pub fn pad(s: &str, columns: usize) -> String {
    let shown = escape(s);
    let fill = columns.saturating_sub(width(&shown));
    format!("{shown}{}", " ".repeat(fill))
}

/// `s` escaped and cut to at most `columns` display columns, at a character's end: a wide
/// character or an escape that would cross the limit is left out whole.
pub fn cut(s: &str, columns: usize) -> String {
    let (mut out, mut used) = (String::new(), 0);
    let mut one = String::new();
    for c in s.chars() {
        one.clear();
        push_escaped(&mut one, c);
        let w = width(&one);
        if used + w > columns {
            break;
        }
        out.push_str(&one);
        used += w;
    }
    out
}

/// Rows under a header, printed in columns aligned by display width, two spaces apart. Every cell
/// is escaped; the last column is not padded. `N` columns: a row of another length does not
/// compile.
pub struct Table<const N: usize> {
    header: [String; N],
    rows: Vec<[String; N]>,
    limits: [Option<usize>; N],
}

impl<const N: usize> Table<N> {
    /// A table with these column titles.
    pub fn new(header: [&str; N]) -> Self {
        Table { header: header.map(|h| escape(h).into_owned()), rows: Vec::new(), limits: [None; N] }
    }

    /// Cells of `column` are [`cut`] to `columns` display columns.
    pub fn cut(mut self, column: usize, columns: usize) -> Self {
        self.limits[column] = Some(columns);
        self
    }

    /// Adds a row, as text of the data (escaped here).
    pub fn row<S: AsRef<str>>(&mut self, cells: [S; N]) {
        self.rows.push(std::array::from_fn(|i| match self.limits[i] {
            Some(n) => cut(cells[i].as_ref(), n),
            None => escape(cells[i].as_ref()).into_owned(),
        }));
    }

    /// The header and the rows, one line each, without line ends.
    pub fn lines(&self) -> Vec<String> {
        let all = || std::iter::once(&self.header).chain(&self.rows);
        let widths: Vec<usize> = (0..self.header.len()).map(|i| all().map(|r| width(&r[i])).max().unwrap_or(0)).collect();
        all()
            .map(|r| {
                let mut line = String::new();
                for (i, cell) in r.iter().enumerate() {
                    line.push_str(cell);
                    if i + 1 < r.len() {
                        line.push_str(&" ".repeat(widths[i] - width(cell) + 2));
                    }
                }
                line
            })
            .collect()
    }

    /// Prints [`Table::lines`] on stdout.
    pub fn print(&self) -> std::io::Result<()> {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        self.lines().iter().try_for_each(|l| writeln!(out, "{l}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reading that [`escape`] promises: its output back to the original.
    fn unescape(s: &str) -> Option<String> {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next()? {
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let rest: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(rest.strip_prefix('{')?, 16).ok()?)?);
                }
                _ => return None,
            }
        }
        Some(out)
    }

    #[test]
    fn escapes_are_visible_and_say_which_character() {
        assert_eq!(escape("plain 日本語 text"), "plain 日本語 text");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape("a\u{1b}]52;c;aGk=\u{7}b"), "a\\u{1b}]52;c;aGk=\\u{7}b");
        assert_eq!(escape("\0\r\n\t\u{7f}\u{9b}\u{202e}"), "\\u{0}\\r\\n\\t\\u{7f}\\u{9b}\\u{202e}");
        assert_eq!(escape("C:\\dir"), "C:\\\\dir");
        // Invisible characters that would let one handle pass for another.
        assert_eq!(escape("bay\u{200b}ko \u{feff}x\u{ad}\u{e0041}"), "bay\\u{200b}ko \\u{feff}x\\u{ad}\\u{e0041}");
    }

    #[test]
    fn cut_and_pad_count_columns_not_characters() {
        assert_eq!(width("日本"), 4);
        assert_eq!(cut("日本語", 5), "日本", "a wide character is not split");
        assert_eq!(cut("ab\u{1b}c", 8), "ab\\u{1b}", "an escape is kept whole");
        assert_eq!(cut("ab\u{1b}c", 7), "ab", "or left out whole");
        assert_eq!(pad("日本", 6), "日本  ");
        assert_eq!(pad("toolong", 3), "toolong");
    }

    #[test]
    fn tables_align_by_display_width() {
        let mut t = Table::new(["handle", "name", "text"]).cut(2, 6);
        t.row(["日本語", "x", "a long text"]);
        t.row(["b\u{1b}", "yy", "t"]);
        assert_eq!(t.lines(), ["handle   name  text", "日本語   x     a long", "b\\u{1b}  yy    t"]);
    }

    /// Text rich in what matters here: backslashes, the letters of an escape, controls, CJK.
    fn tricky() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            Just('\\'),
            Just('u'),
            Just('{'),
            Just('}'),
            Just('1'),
            Just('b'),
            Just('日'),
            (0u8..0x20).prop_map(char::from),
            any::<char>()
        ];
        prop::collection::vec(c, 0..24).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn escaped_text_holds_no_control_character_and_reads_back(s in prop_oneof![any::<String>(), tricky()]) {
            let e = escape(&s);
            prop_assert!(!e.chars().any(needs_escape), "{e:?}");
            prop_assert_eq!(unescape(&e), Some(s.clone()));
        }

        #[test]
        fn cut_text_fits_and_is_a_prefix_of_the_escaped_text(s in prop_oneof![any::<String>(), tricky()], n in 0usize..60) {
            let c = cut(&s, n);
            prop_assert!(width(&c) <= n);
            prop_assert!(escape(&s).starts_with(&c));
            prop_assert!(!c.chars().any(needs_escape));
        }
    }
}
