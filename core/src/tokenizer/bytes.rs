//! GPT-2's reversible byte-to-character map: byte-level BPE vocabularies spell every byte as
//! a printable character.

use std::sync::OnceLock;

/// Whether byte `b` maps to the character with the same code point.
fn is_printable(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// The character that stands for byte `b` in a byte-level BPE vocabulary: the byte itself
/// for printable Latin-1 (`!`..=`~`, 0xA1..=0xAC, 0xAE..=0xFF), else U+0100 onwards in byte order
/// (so `' '` is `'Ġ'` and `'\n'` is `'Ċ'`).
pub fn byte_to_char(b: u8) -> char {
    byte_table()[b as usize]
}

/// The character that stands for each byte.
fn byte_table() -> &'static [char; 256] {
    static MAP: OnceLock<[char; 256]> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map = ['\0'; 256];
        let mut next = 256u32;
        for b in 0..=255u8 {
            map[b as usize] = if is_printable(b) {
                char::from(b)
            } else {
                let c = char::from_u32(next).unwrap_or('\u{FFFD}');
                next += 1;
                c
            };
        }
        map
    })
}

/// The byte a character stands for, if it is one of the 256 byte characters.
pub(crate) fn char_to_byte(c: char) -> Option<u8> {
    static REV: OnceLock<[Option<u8>; 512]> = OnceLock::new();
    let rev = REV.get_or_init(|| {
        let mut rev = [None; 512];
        for (b, &c) in byte_table().iter().enumerate() {
            rev[c as usize] = Some(b as u8);
        }
        rev
    });
    rev.get(c as usize).copied().flatten()
}

/// The bytes a byte-level token text stands for; `None` if a character is not a byte character.
pub(crate) fn decode_byte_level(text: &str) -> Option<Vec<u8>> {
    text.chars().map(char_to_byte).collect()
}
