//! DTMF: digits, RFC 4733 telephone-events, the in-band detector and the tone generator.

pub mod detector;
pub mod rfc4733;
pub mod tone;

use std::fmt;

/// A DTMF digit: 0-9, *, #, A-D.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digit(char);

/// Low-group (row) frequencies in Hz.
pub const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// High-group (column) frequencies in Hz.
pub const COLUMNS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYPAD: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

impl Digit {
    pub fn new(c: char) -> Option<Digit> {
        let c = c.to_ascii_uppercase();
        matches!(c, '0'..='9' | '*' | '#' | 'A'..='D').then_some(Digit(c))
    }

    pub fn as_char(self) -> char {
        self.0
    }

    /// The RFC 4733 event code (0-9, * = 10, # = 11, A-D = 12-15).
    pub fn event(self) -> u8 {
        match self.0 {
            '0'..='9' => self.0 as u8 - b'0',
            '*' => 10,
            '#' => 11,
            c => c as u8 - b'A' + 12,
        }
    }

    pub fn from_event(event: u8) -> Option<Digit> {
        Some(Digit(match event {
            0..=9 => (b'0' + event) as char,
            10 => '*',
            11 => '#',
            12..=15 => (b'A' + event - 12) as char,
            _ => return None,
        }))
    }

    /// (row, column) indices on the keypad.
    pub fn position(self) -> (usize, usize) {
        for (r, row) in KEYPAD.iter().enumerate() {
            if let Some(c) = row.iter().position(|k| *k == self.0) {
                return (r, c);
            }
        }
        (3, 1)
    }

    pub fn from_position(row: usize, column: usize) -> Option<Digit> {
        KEYPAD
            .get(row)
            .and_then(|r| r.get(column))
            .map(|c| Digit(*c))
    }

    /// The two frequencies of the digit's tone.
    pub fn frequencies(self) -> (f32, f32) {
        let (r, c) = self.position();
        (ROWS[r], COLUMNS[c])
    }
}

impl fmt::Display for Digit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
